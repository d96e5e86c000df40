"""Normalise the ``paths`` and ``expire_hours`` arguments of ``PresignFilesOperator``, without Airflow."""

from __future__ import annotations

import ast
import json
import re
import reprlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# NOTE: assumed limit, because the vendor documents none for this API. Its preview API caps links at 7 days.
MAX_EXPIRE_HOURS = 168

#: Deepest nesting of lists (and list strings) that ``normalize_paths`` accepts.
MAX_NESTING_DEPTH = 20

# NOTE: assumed limit, because the vendor documents no maximum length for a file path. Npaths such as
# 'N_202410_22_d0b3bb728c327017b09aa09c93e86e89.pdf' are about 50 characters, so this bound is generous.
#: Maximum length of a path, in characters after stripping, that ``normalize_paths`` accepts.
MAX_PATH_LENGTH = 1024

#: Keys read from a file-attachment dict, in order of precedence.
PATH_KEYS = ("path", "npath", "Path", "nPath")

_EXPECTED_PATHS = "expected a file path string, a dict with a 'path' key, a list of those, or None"
_EXPECTED_PATH_STRING = "expected a file path string such as 'N_202410_22_0123abcd.pdf'"
_REPR_LIMIT = 80
#: Characters of a long string that error messages show, followed by the string's length.
_SHOWN_CHARACTERS = 60
# Abbreviates containers, so that describing a list of a million paths in an error stays cheap.
_CONTAINER_REPR = reprlib.Repr()
_CONTAINER_REPR.maxlevel = 2
_CONTAINER_REPR.maxlist = _CONTAINER_REPR.maxtuple = _CONTAINER_REPR.maxdict = 4
_CONTAINER_REPR.maxstring = _CONTAINER_REPR.maxother = 40
# Unicode categories rejected in a path. Format characters (Cf), such as the zero-width space U+200B and
# the right-to-left override U+202E, hide or reorder text. Lone surrogates (Cs) cannot be encoded at all.
_REJECTED_CATEGORIES = {
    "Cc": "control character",
    "Cf": "format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "lone surrogate",
}
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
    #: Number of list strings, such as ``"[]"``, that parsed to an empty list and so gave no path.
    empty_list_strings: int = 0


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

    A list string that parses to an empty list, such as ``"[]"``, gives no path and is counted in
    ``empty_list_strings``, because a template that pulls an empty upstream result renders as ``"[]"``.
    A dict's path is the value of the first of its path keys whose value is neither ``None`` nor blank
    text, as :func:`first_value` reads it. A path must have at most :data:`MAX_PATH_LENGTH` characters
    after stripping, and no control character (Unicode category Cc) or format character (category Cf,
    such as the zero-width space U+200B or the right-to-left override U+202E).

    A top-level ``None`` means that there are no paths: the result is empty and ``dropped_none`` is 0,
    because no item was dropped. The first appearance of a path wins and later repeats are counted in
    ``duplicates``. Literal strings are parsed with :func:`json.loads`, then with
    :func:`ast.literal_eval`, and never with :func:`eval`.

    :param value: the rendered ``paths`` argument.
    :param argument: name of the argument, used as the root of positions in error messages.
    :return: the distinct paths and the counts of dropped ``None`` items, removed duplicates and empty
        list strings.
    :raises TypeError: if an item, or the value under a dict's path key, is of a type that is not accepted.
    :raises ValueError: if a path is blank, too long or contains a control or format character, a dict
        has no path key with a value, a string that starts with ``[``, ``(`` or ``{`` is not a literal of
        the matching kind, the nesting is deeper than :data:`MAX_NESTING_DEPTH` levels, or a list
        contains itself.
    """
    if value is None:
        return NormalizedPaths(paths=[], dropped_none=0, duplicates=0)
    collector = _PathCollector(argument)
    collector.collect_value(value, (), 0)
    return NormalizedPaths(
        paths=list(collector.seen),
        dropped_none=collector.dropped_none,
        duplicates=collector.duplicates,
        empty_list_strings=collector.empty_list_strings,
    )


def first_value(mapping: Mapping[Any, object], keys: Iterable[str]) -> tuple[str, object] | None:
    """
    Return the first of ``keys`` whose value in ``mapping`` is neither ``None`` nor blank text, with its value.

    ``PresignFilesOperator`` reads a dict item's path this way, and ``FxiaokeListFilesOperator`` reads a
    file field's path, name and size this way, so that both take the same path from the same dict.

    :param mapping: a file-attachment dict, such as ``{"path": None, "npath": "N_1.pdf"}``.
    :param keys: the keys to try, in order of precedence.
    :return: the key and its value, or None when no key has such a value.
    """
    for key in keys:
        value = mapping.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return key, value
    return None


def check_bool(value: object, *, argument: str) -> bool:
    """
    Check that ``value`` is a ``bool`` and return it.

    A string such as ``"no"`` is rejected rather than read by its truth value, under which every
    non-empty string, ``"False"`` included, would count as True.

    :param value: the argument's value.
    :param argument: name of the argument, used in error messages.
    :raises TypeError: if ``value`` is not ``True`` or ``False``.
    """
    if not isinstance(value, bool):
        raise TypeError(
            f"{argument} is {short_repr(value)} ({type(value).__name__}); expected True or False (a bool)"
        )
    return value


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
    described = f"{argument} is {short_repr(value)} ({type(value).__name__})"

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
        self.empty_list_strings = 0
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
                # isprintable() is False for every control and format character, so a printable path
                # needs no further character check.
                if (
                    path
                    and len(path) <= MAX_PATH_LENGTH
                    and path.isprintable()
                    and not path.startswith(("[", "(", "{"))
                ):
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
            if not parsed:
                self.empty_list_strings += 1
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
        found = first_value(mapping, PATH_KEYS)
        if found is None:
            keys = ", ".join(PATH_KEYS)
            if any(key in mapping for key in PATH_KEYS):
                raise ValueError(
                    f"{self._describe(mapping, location)}, whose path keys ({keys}) contain only None or blank text; "
                    f"{_EXPECTED_PATHS}"
                )
            raise ValueError(
                f"{self._describe(mapping, location)}, which has none of the keys {keys}; {_EXPECTED_PATHS}"
            )
        key, path = found
        path_location = (*location, key)
        if not isinstance(path, str):
            raise TypeError(f"{self._describe(path, path_location)}; {_EXPECTED_PATH_STRING}")
        self._add_path(path, path_location)

    def _add_path(self, text: str, location: _Location) -> None:
        path = check_path(text, self._describe(text, location))
        if path in self.seen:
            self.duplicates += 1
        else:
            self.seen[path] = None

    def _describe(self, value: object, location: _Location) -> str:
        where = self.argument + "".join(f"[{part!r}]" for part in location)
        return f"{where} is {short_repr(value)} ({type(value).__name__})"


def check_path(text: str, described: str) -> str:
    """
    Return one path string stripped, after checking that it can be a file path.

    :param text: the path as given.
    :param described: the start of an error message that names the value and where it was found, such
        as ``"paths[3] is 'N_x' (str)"``.
    :raises ValueError: when the path is blank, longer than :data:`MAX_PATH_LENGTH` after stripping, or
        contains a control, format or separator character or a lone surrogate.
    """
    path = text.strip()
    if not path:
        raise ValueError(f"{described}, which is blank; {_EXPECTED_PATH_STRING}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(
            f"{described}, which is {len(path)} characters long after stripping, "
            f"more than the maximum of {MAX_PATH_LENGTH}; {_EXPECTED_PATH_STRING}"
        )
    if not path.isprintable():
        for offset, character in enumerate(path):
            kind = _REJECTED_CATEGORIES.get(unicodedata.category(character))
            if kind is not None:
                code = f"U+{ord(character):04X} {unicodedata.name(character, '')}".rstrip()
                raise ValueError(
                    f"{described}, which contains the {kind} {character!r} "
                    f"({code}) at offset {offset} after stripping; {_EXPECTED_PATH_STRING}"
                )
    return path


def short_repr(value: object) -> str:
    """
    Return the repr of ``value`` for an error message, cut to about 80 characters.

    A string longer than 80 characters is shown by its first 60 characters and its length, such as
    ``'N_aaaa...' (1000002 characters)``, so that a huge value cannot flood a message or a log.

    :param value: the value to show.
    """
    if isinstance(value, str):
        if len(value) <= _REPR_LIMIT:
            return repr(value)
        return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
    try:
        text = _CONTAINER_REPR.repr(value)
    except ValueError:
        # repr() raises ValueError for an int of more than 4300 digits.
        return f"<{type(value).__name__} too large to show>"
    if len(text) > _REPR_LIMIT:
        return text[: _REPR_LIMIT - 3] + "..."
    return text


_short_repr = short_repr
