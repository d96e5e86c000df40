"""Normalise the ``paths`` and ``expire_hours`` arguments of ``PresignFilesOperator``, without Airflow."""

from __future__ import annotations

import ast
import json
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# NOTE: assumed limit, because the vendor documents none for this API. Its preview API caps links at 7 days.
MAX_EXPIRE_HOURS = 168

#: Deepest nesting of lists (and list strings) that ``normalize_paths`` accepts.
MAX_NESTING_DEPTH = 20

#: Keys read from a file-attachment dict, in order of precedence.
PATH_KEYS = ("path", "npath", "Path", "nPath")

_EXPECTED_PATHS = "expected a file path string, a dict with a 'path' key, a list of those, or None"
_EXPECTED_PATH_STRING = "expected a file path string such as 'N_202410_22_0123abcd.pdf'"
_REPR_LIMIT = 80
# Abbreviates containers, so that describing a list of a million paths in an error stays cheap.
_CONTAINER_REPR = reprlib.Repr()
_CONTAINER_REPR.maxlevel = 2
_CONTAINER_REPR.maxlist = _CONTAINER_REPR.maxtuple = _CONTAINER_REPR.maxdict = 4
_CONTAINER_REPR.maxstring = _CONTAINER_REPR.maxother = 40
# C0 controls, DEL and C1 controls, which make up the Unicode category Cc.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LIST_OPENERS = ("[", "(")
_BYTES_TYPES = (bytes, bytearray, memoryview)
_DIGITS = re.compile(r"[0-9]+")

_Location = tuple[int | str, ...]


@dataclass(frozen=True)
class NormalizedPaths:
    """Result of :func:`normalize_paths`."""

    #: Distinct stripped paths, in order of first appearance.
    paths: list[str]
    #: Number of ``None`` items dropped, not counting a top-level ``None``.
    dropped_none: int
    #: Number of repeated paths removed.
    duplicates: int


def normalize_paths(value: object, *, argument: str = "paths") -> NormalizedPaths:
    """
    Flatten the shapes that upstream tasks hand over into a list of distinct file paths.

    Accepted shapes, nested in any combination up to :data:`MAX_NESTING_DEPTH` levels:

    * A path string, which is stripped of surrounding whitespace.
    * A list, tuple or any other iterable that is not ``str``, ``bytes`` or a mapping, such as the
      ``LazyXComSequence`` that Airflow passes on from a mapped upstream task.
    * A mapping with a ``path`` key, as a CRM file-attachment field value looks. The keys ``npath``,
      ``Path`` and ``nPath`` are read too, in that order after ``path``, and other keys are ignored.
    * A string that starts with ``[`` or ``(`` and is a JSON or Python list or tuple literal, because Jinja
      renders a list as text unless the DAG renders native objects. A string that starts with ``{`` must
      likewise be a JSON or Python dict literal.
    * ``None`` items, which are dropped and counted.

    A top-level ``None`` means that there are no paths: the result is empty and ``dropped_none`` is 0,
    because no item was dropped. The first appearance of a path wins and later repeats are counted in
    ``duplicates``. Literal strings are parsed with :func:`json.loads`, then with
    :func:`ast.literal_eval`, and never with :func:`eval`.

    :param value: the rendered ``paths`` argument.
    :param argument: name of the argument, used as the root of positions in error messages.
    :return: the distinct paths and the counts of dropped ``None`` items and removed duplicates.
    :raises TypeError: if an item, or the value under a dict's path key, is of a type that is not accepted.
    :raises ValueError: if a path is blank or contains a control character, a dict has no path key, a
        string that starts with ``[``, ``(`` or ``{`` is not a literal of the matching kind, the nesting
        is deeper than :data:`MAX_NESTING_DEPTH` levels, or a list contains itself.
    """
    if value is None:
        return NormalizedPaths(paths=[], dropped_none=0, duplicates=0)
    collector = _PathCollector(argument)
    collector.collect_value(value, (), 0)
    return NormalizedPaths(
        paths=list(collector.seen),
        dropped_none=collector.dropped_none,
        duplicates=collector.duplicates,
    )


def validate_expire_hours(
    value: object, *, argument: str = "expire_hours", maximum: int = MAX_EXPIRE_HOURS
) -> int:
    """
    Check that ``value`` is a whole number of hours from 1 to ``maximum`` and return it as an ``int``.

    An ``int`` is accepted, and so is a string of ASCII decimal digits with optional surrounding
    whitespace, because a templated value renders as a string. A ``bool``, a ``float`` (even ``2.0``) and
    a string with a sign or a decimal point are rejected.

    :param value: the rendered ``expire_hours`` argument.
    :param argument: name of the argument, used in error messages.
    :param maximum: largest number of hours accepted.
    :return: the number of hours.
    :raises TypeError: if ``value`` is neither an ``int`` nor a string.
    :raises ValueError: if ``value`` is a string that is not a whole number, or the number is below 1 or
        above ``maximum``, or ``maximum`` itself is below 1.
    """
    if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 1:
        raise ValueError(f"maximum is {maximum!r}; expected an int of at least 1")

    expected = (
        f"expected a whole number of hours from 1 to {maximum}, as an int or a string of digits such as '24'"
    )
    described = f"{argument} is {_short_repr(value)} ({type(value).__name__})"

    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{described}; {expected}")

    if isinstance(value, str):
        digits = value.strip()
        if _DIGITS.fullmatch(digits) is None:
            raise ValueError(f"{described}, which is not a whole number; {expected}")
        # Compare lengths first, because int() rejects strings of more than 4300 digits by default
        # (Python 3.11 and later).
        significant = digits.lstrip("0") or "0"
        if len(significant) > len(str(maximum)):
            raise ValueError(f"{described}, which is above the maximum of {maximum} hours; {expected}")
        hours = int(significant)
    else:
        hours = value

    if hours < 1:
        raise ValueError(f"{described}, which is below 1 hour; {expected}")
    if hours > maximum:
        raise ValueError(f"{described}, which is above the maximum of {maximum} hours; {expected}")
    return hours


class _PathCollector:
    """Walk a ``paths`` value depth-first and gather distinct paths and counts."""

    def __init__(self, argument: str) -> None:
        self.argument = argument
        # A dict keeps insertion order and gives constant-time membership tests.
        self.seen: dict[str, None] = {}
        self.dropped_none = 0
        self.duplicates = 0
        # ids of the containers on the current branch, to detect a container that contains itself.
        self._open_containers: set[int] = set()

    def collect_value(self, value: object, location: _Location, depth: int) -> None:
        """Dispatch one item by its type."""
        if value is None:
            self.dropped_none += 1
        elif isinstance(value, str):
            self._collect_string(value, location, depth)
        elif isinstance(value, Mapping):
            self._collect_mapping(value, location)
        elif isinstance(value, _BYTES_TYPES):
            raise TypeError(f"{self._describe(value, location)}; {_EXPECTED_PATHS} (decode bytes first)")
        elif isinstance(value, Iterable):
            self._collect_iterable(value, location, depth + 1)
        else:
            raise TypeError(f"{self._describe(value, location)}; {_EXPECTED_PATHS}")

    def _collect_iterable(self, items: Iterable[object], location: _Location, depth: int) -> None:
        if depth > MAX_NESTING_DEPTH:
            raise ValueError(
                f"{self._describe(items, location)}, which is nested deeper than {MAX_NESTING_DEPTH} levels; "
                "expected a flat list or a list of lists"
            )
        container_id = id(items)
        if container_id in self._open_containers:
            raise ValueError(
                f"{self._describe(items, location)}, which contains itself; expected a list without cycles"
            )
        self._open_containers.add(container_id)

        seen = self.seen
        for index, item in enumerate(items):
            # Fast path for the common case, a plain path string, to keep a flat list of a million
            # paths cheap. Anything unusual falls through to collect_value for the full checks.
            if type(item) is str:
                path = item.strip()
                if path and not path.startswith(("[", "(", "{")) and _CONTROL_CHARACTER.search(path) is None:
                    if path in seen:
                        self.duplicates += 1
                    else:
                        seen[path] = None
                    continue
            self.collect_value(item, (*location, index), depth)

        self._open_containers.discard(container_id)

    def _collect_string(self, text: str, location: _Location, depth: int) -> None:
        stripped = text.strip()
        if stripped.startswith(_LIST_OPENERS):
            parsed = self._parse_literal(text, stripped, location, "list")
            if not isinstance(parsed, list | tuple):
                raise ValueError(
                    f"{self._describe(text, location)}, which parses to {type(parsed).__name__} and not to a "
                    f"list; {_EXPECTED_PATHS}"
                )
            # The parsed list is one more nesting level, so list strings inside it cannot recurse forever.
            self._collect_iterable(parsed, location, depth + 1)
        elif stripped.startswith("{"):
            parsed = self._parse_literal(text, stripped, location, "dict")
            if not isinstance(parsed, dict):
                raise ValueError(
                    f"{self._describe(text, location)}, which parses to {type(parsed).__name__} and not to a "
                    f"dict; {_EXPECTED_PATHS}"
                )
            self._collect_mapping(parsed, location)
        else:
            self._add_path(text, location)

    def _parse_literal(self, text: str, stripped: str, location: _Location, kind: str) -> object:
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            pass
        # ast.literal_eval builds a syntax tree first, so it is several times slower than json.loads.
        try:
            return ast.literal_eval(stripped)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        raise ValueError(
            f"{self._describe(text, location)}, which starts with {stripped[0]!r} but is neither a JSON "
            f"nor a Python {kind} literal; pass the {kind} itself, render it with Jinja's tojson filter, "
            "or set render_template_as_native_obj=True on the DAG"
        )

    def _collect_mapping(self, mapping: Mapping[object, object], location: _Location) -> None:
        for key in PATH_KEYS:
            if key in mapping:
                break
        else:
            raise ValueError(
                f"{self._describe(mapping, location)}, which has none of the keys {', '.join(PATH_KEYS)}; "
                f"{_EXPECTED_PATHS}"
            )
        path = mapping[key]
        path_location = (*location, key)
        if not isinstance(path, str):
            raise TypeError(f"{self._describe(path, path_location)}; {_EXPECTED_PATH_STRING}")
        self._add_path(path, path_location)

    def _add_path(self, text: str, location: _Location) -> None:
        path = text.strip()
        if not path:
            raise ValueError(f"{self._describe(text, location)}, which is blank; {_EXPECTED_PATH_STRING}")
        control = _CONTROL_CHARACTER.search(path)
        if control is not None:
            raise ValueError(
                f"{self._describe(text, location)}, which contains the control character "
                f"{control.group()!r} at offset {control.start()} after stripping; {_EXPECTED_PATH_STRING}"
            )
        if path in self.seen:
            self.duplicates += 1
        else:
            self.seen[path] = None

    def _describe(self, value: object, location: _Location) -> str:
        where = self.argument + "".join(f"[{part!r}]" for part in location)
        return f"{where} is {_short_repr(value)} ({type(value).__name__})"


def _short_repr(value: object) -> str:
    """Return the repr of ``value``, cut to about 80 characters."""
    text = repr(value) if isinstance(value, str) else _CONTAINER_REPR.repr(value)
    if len(text) > _REPR_LIMIT:
        return text[: _REPR_LIMIT - 3] + "..."
    return text
