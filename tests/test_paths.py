"""Tests for the normalisation of ``PresignFilesOperator`` arguments in ``fxiaoke_provider.paths``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fxiaoke_provider.api.crm import parse_file_value
from fxiaoke_provider.paths import (
    MAX_EXPIRE_HOURS,
    MAX_NESTING_DEPTH,
    MAX_PATH_LENGTH,
    PATH_KEYS,
    NormalizedPaths,
    check_bool,
    first_value,
    normalize_paths,
    short_repr,
    validate_expire_hours,
)

ATTACHMENT = {"filename": "a.pdf", "ext": "pdf", "path": "N_202410_22_0a1b2c.pdf", "size": 123}


class LazySequence:
    """Stand-in for Airflow's ``LazyXComSequence``: iterable and indexable, but not a list."""

    def __init__(self, items: list[object]) -> None:
        self._items = items
        self.iterations = 0

    def __iter__(self) -> Iterator[object]:
        self.iterations += 1
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> object:
        return self._items[index]


class TestNormalizePaths:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(["a.pdf", "b.pdf"], ["a.pdf", "b.pdf"], id="flat-list"),
            pytest.param(("a.pdf", "b.pdf"), ["a.pdf", "b.pdf"], id="tuple"),
            pytest.param("a.pdf", ["a.pdf"], id="single-string"),
            pytest.param([], [], id="empty-list"),
            pytest.param([["a.pdf"], ["b.pdf", ["c.pdf"]]], ["a.pdf", "b.pdf", "c.pdf"], id="nested-lists"),
            pytest.param((p for p in ["a.pdf", "b.pdf"]), ["a.pdf", "b.pdf"], id="generator"),
            pytest.param({"x.pdf": 1, "y.pdf": 2}.keys(), ["x.pdf", "y.pdf"], id="dict-keys-view"),
            pytest.param([ATTACHMENT], ["N_202410_22_0a1b2c.pdf"], id="attachment-dict"),
            pytest.param([{"npath": "N_1.pdf"}], ["N_1.pdf"], id="npath-key"),
            pytest.param([{"Path": "N_1.pdf"}], ["N_1.pdf"], id="capital-path-key"),
            pytest.param([{"nPath": "N_1.pdf"}], ["N_1.pdf"], id="camel-npath-key"),
            pytest.param([{"npath": "N_2.pdf", "path": "N_1.pdf"}], ["N_1.pdf"], id="path-key-first"),
            pytest.param({"path": "N_1.pdf"}, ["N_1.pdf"], id="top-level-dict"),
            pytest.param(["  a.pdf\n", "\tb.pdf "], ["a.pdf", "b.pdf"], id="stripped"),
            pytest.param([{"path": " N_1.pdf "}], ["N_1.pdf"], id="dict-value-stripped"),
            pytest.param(["文件.pdf"], ["文件.pdf"], id="non-ascii"),
            pytest.param(["文件\u3000副本.pdf"], ["文件\u3000副本.pdf"], id="ideographic-space-inside"),
            pytest.param([{"path": None, "npath": "N_1.pdf"}], ["N_1.pdf"], id="none-path-gives-way"),
            pytest.param([{"path": "  ", "nPath": "N_1.pdf"}], ["N_1.pdf"], id="blank-path-gives-way"),
            pytest.param(["N_" + "a" * 1022], ["N_" + "a" * 1022], id="longest-path"),
            pytest.param([" N_" + "a" * 1022 + " "], ["N_" + "a" * 1022], id="longest-path-stripped"),
        ],
    )
    def test_accepted_shape(self, value: object, expected: list[str]) -> None:
        assert normalize_paths(value).paths == expected

    def test_lazy_sequence(self) -> None:
        lazy = LazySequence([["a.pdf", "b.pdf"], None, ["c.pdf"]])

        result = normalize_paths(lazy)

        assert result.paths == ["a.pdf", "b.pdf", "c.pdf"]
        assert result.dropped_none == 1
        assert lazy.iterations == 1

    def test_none_counted(self) -> None:
        result = normalize_paths([None, "a.pdf", [None, None], ("b.pdf", None)])

        assert result.paths == ["a.pdf", "b.pdf"]
        assert result.dropped_none == 4
        assert result.duplicates == 0

    def test_top_level_none(self) -> None:
        assert normalize_paths(None) == NormalizedPaths(paths=[], dropped_none=0, duplicates=0)

    def test_dedupe_first_wins(self) -> None:
        value = ["b.pdf", "a.pdf", " b.pdf", ["a.pdf", "c.pdf"], {"path": "c.pdf"}, "b.pdf"]

        result = normalize_paths(value)

        assert result.paths == ["b.pdf", "a.pdf", "c.pdf"]
        assert result.duplicates == 4

    def test_result_frozen(self) -> None:
        result = normalize_paths(["a.pdf"])

        with pytest.raises(AttributeError):
            result.paths = []  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param('["a.pdf", "b.pdf"]', ["a.pdf", "b.pdf"], id="json-list"),
            pytest.param(str(["a.pdf", "b.pdf"]), ["a.pdf", "b.pdf"], id="python-repr-list"),
            pytest.param(str(("a.pdf", "b.pdf")), ["a.pdf", "b.pdf"], id="python-repr-tuple"),
            pytest.param("  [ 'a.pdf' ]\n", ["a.pdf"], id="surrounding-whitespace"),
            pytest.param("[]", [], id="empty-list-string"),
            pytest.param(str([["a.pdf"], ["b.pdf"]]), ["a.pdf", "b.pdf"], id="nested-list-string"),
            pytest.param(str([ATTACHMENT]), ["N_202410_22_0a1b2c.pdf"], id="python-dicts-in-list"),
            pytest.param(json.dumps([ATTACHMENT]), ["N_202410_22_0a1b2c.pdf"], id="json-dicts-in-list"),
            pytest.param('["a.pdf", null]', ["a.pdf"], id="json-null"),
            pytest.param(["x.pdf", '["a.pdf", "x.pdf"]'], ["x.pdf", "a.pdf"], id="list-string-in-list"),
            pytest.param(json.dumps(ATTACHMENT), ["N_202410_22_0a1b2c.pdf"], id="json-dict"),
            pytest.param(str(ATTACHMENT), ["N_202410_22_0a1b2c.pdf"], id="python-repr-dict"),
        ],
    )
    def test_literal_string(self, value: str, expected: list[str]) -> None:
        assert normalize_paths(value).paths == expected

    def test_literal_string_counts(self) -> None:
        result = normalize_paths('["a.pdf", null, "a.pdf"]')

        assert result.paths == ["a.pdf"]
        assert result.dropped_none == 1
        assert result.duplicates == 1

    @pytest.mark.parametrize(
        ("value", "error", "match"),
        [
            pytest.param([1], TypeError, r"^paths\[0\] is 1 \(int\); expected a file path string", id="int"),
            pytest.param(["a.pdf", 2.5], TypeError, r"^paths\[1\] is 2\.5 \(float\)", id="float"),
            pytest.param(["a.pdf", True], TypeError, r"^paths\[1\] is True \(bool\)", id="bool"),
            pytest.param([b"a.pdf"], TypeError, r"^paths\[0\] is b'a\.pdf' \(bytes\)", id="bytes"),
            pytest.param(
                bytearray(b"a"), TypeError, r"^paths is bytearray\(b'a'\) \(bytearray\)", id="bytearray"
            ),
            pytest.param(42, TypeError, r"^paths is 42 \(int\)", id="top-level-int"),
            pytest.param(
                [object()], TypeError, r"^paths\[0\] is <object object at .*> \(object\)", id="object"
            ),
            pytest.param(
                ["a.pdf", ["b.pdf", 7]], TypeError, r"^paths\[1\]\[1\] is 7 \(int\)", id="nested-position"
            ),
            pytest.param(
                [{"filename": "a.pdf"}],
                ValueError,
                r"^paths\[0\] is \{'filename': 'a\.pdf'\} \(dict\), which has none of the keys path, npath",
                id="dict-without-path",
            ),
            pytest.param(
                [{"path": None}],
                ValueError,
                r"^paths\[0\] is \{'path': None\} \(dict\), whose path keys \(path, npath, Path, nPath\) contain "
                r"only None or blank text",
                id="dict-path-none",
            ),
            pytest.param(
                [{"npath": ["a.pdf"]}],
                TypeError,
                r"^paths\[0\]\['npath'\] is \['a\.pdf'\] \(list\)",
                id="dict-path-list",
            ),
            pytest.param(
                ["a.pdf", "   "], ValueError, r"^paths\[1\] is '   ' \(str\), which is blank", id="blank"
            ),
            pytest.param("", ValueError, r"^paths is '' \(str\), which is blank", id="empty-string"),
            pytest.param(
                [{"path": "", "npath": "  "}],
                ValueError,
                r"^paths\[0\] is .* \(dict\), whose path keys .* contain only None or blank text",
                id="blank-in-dict",
            ),
            pytest.param(
                [{"path": 5, "npath": "N_1.pdf"}],
                TypeError,
                r"^paths\[0\]\['path'\] is 5 \(int\)",
                id="dict-path-int-not-skipped",
            ),
            pytest.param(
                ["a\nb.pdf"],
                ValueError,
                r"^paths\[0\] is 'a\\nb\.pdf' \(str\), which contains the control character '\\n' "
                r"\(U\+000A\) at offset 1",
                id="newline",
            ),
            pytest.param(
                ["ok.pdf", "a\tb.pdf"], ValueError, r"^paths\[1\] is 'a\\tb\.pdf' \(str\).*'\\t'", id="tab"
            ),
            pytest.param(
                ["a\x00b.pdf"], ValueError, r"^paths\[0\] is 'a\\x00b\.pdf' \(str\).*'\\x00'", id="nul"
            ),
            pytest.param(
                ["a\x7fb.pdf"], ValueError, r"^paths\[0\] is 'a\\x7fb\.pdf' \(str\).*'\\x7f'", id="del"
            ),
            pytest.param(
                ["a\u200bb.pdf"],
                ValueError,
                r"^paths\[0\] is 'a\\u200bb\.pdf' \(str\), which contains the format character '\\u200b' "
                r"\(U\+200B ZERO WIDTH SPACE\) at offset 1",
                id="zero-width-space",
            ),
            pytest.param(
                ["ok.pdf", "\u202efdp.exe"],
                ValueError,
                r"^paths\[1\] .* format character '\\u202e' \(U\+202E RIGHT-TO-LEFT OVERRIDE\) at offset 0",
                id="bidi-override",
            ),
            pytest.param(
                ["\ufeffN_1.pdf"], ValueError, r"^paths\[0\] .* format character .*U\+FEFF", id="bom"
            ),
            pytest.param(
                ["N_\ud800.pdf"], ValueError, r"^paths\[0\] .* lone surrogate .*U\+D800", id="lone-surrogate"
            ),
            pytest.param(
                ["N_a\u2028b"], ValueError, r"^paths\[0\] .* line separator .*U\+2028", id="line-separator"
            ),
            pytest.param(
                ["N_a\u2029b"],
                ValueError,
                r"^paths\[0\] .* paragraph separator .*U\+2029",
                id="paragraph-separator",
            ),
            pytest.param(
                [{"npath": "N_\u2066x"}],
                ValueError,
                r"^paths\[0\]\['npath'\] .* format character .*U\+2066",
                id="bidi-isolate-in-dict",
            ),
            pytest.param(
                ["N_" + "a" * 1023],
                ValueError,
                r"^paths\[0\] is 'N_a{58}'\.\.\. \(1025 characters\) \(str\), which is 1025 characters long "
                r"after stripping, more than the maximum of 1024",
                id="too-long",
            ),
            pytest.param(
                [{"path": "a\rb"}],
                ValueError,
                r"^paths\[0\]\['path'\] is 'a\\rb' \(str\).*'\\r'",
                id="cr-in-dict",
            ),
        ],
    )
    def test_invalid_item(self, value: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            normalize_paths(value)

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            pytest.param(
                "[a.pdf, b.pdf]",
                r"^paths is '\[a\.pdf, b\.pdf\]' \(str\), which starts with '\[' but is neither a JSON nor "
                r"a Python list literal",
                id="unquoted-items",
            ),
            pytest.param(
                ["a.pdf", "['a.pdf'"],
                r"^paths\[1\] is \"\['a\.pdf'\" \(str\), which starts with '\['",
                id="unclosed",
            ),
            pytest.param(
                "[N_1.pdf", r"^paths is '\[N_1\.pdf' \(str\), which starts with '\['", id="bracket-path"
            ),
            pytest.param(
                "(a.pdf)", r"^paths is '\(a\.pdf\)' \(str\), which starts with '\('", id="parenthesis"
            ),
            pytest.param(
                "('a.pdf')", r"^paths is \"\('a\.pdf'\)\" \(str\), which parses to str", id="not-a-tuple"
            ),
            pytest.param("{a.pdf}", r"^paths is '\{a\.pdf\}' \(str\), .* Python dict literal", id="brace"),
            pytest.param(
                "{'a.pdf'}", r"^paths is \"\{'a\.pdf'\}\" \(str\), which parses to set", id="set-literal"
            ),
            pytest.param(
                '{"filename": "a.pdf"}',
                r"^paths is .*\(dict\), which has none of the keys",
                id="json-dict-no-path",
            ),
            pytest.param("[1, 2]", r"^paths\[0\] is 1 \(int\)", id="list-of-ints"),
        ],
    )
    def test_invalid_literal_string(self, value: object, match: str) -> None:
        with pytest.raises((TypeError, ValueError), match=match):
            normalize_paths(value)

    def test_malformed_list_string_is_value_error(self) -> None:
        with pytest.raises(ValueError, match=r"render it with Jinja's tojson filter"):
            normalize_paths("[a.pdf]")

    def test_literal_string_never_evaluated(self) -> None:
        with pytest.raises(ValueError, match=r"neither a JSON nor a Python list literal"):
            normalize_paths("[__import__('os').getcwd()]")

    def test_argument_name_in_message(self) -> None:
        with pytest.raises(TypeError, match=r"^files\[0\]\[2\] is 3 \(int\)"):
            normalize_paths([["a.pdf", "b.pdf", 3]], argument="files")

    def test_long_item_truncated(self) -> None:
        with pytest.raises(
            ValueError, match=r"^paths\[0\] is '\[x{59}'\.\.\. \(501 characters\) \(str\)"
        ) as excinfo:
            normalize_paths(["[" + "x" * 500])

        assert len(str(excinfo.value)) < 400

    def test_huge_path_message_short(self) -> None:
        with pytest.raises(ValueError, match=r"\(1000002 characters\)") as excinfo:
            normalize_paths(["N_" + "a" * 1_000_000])

        assert len(str(excinfo.value)) < 400

    def test_huge_dict_path_message_short(self) -> None:
        with pytest.raises(ValueError, match=r"^paths\[0\]\['path'\] is 'N_a") as excinfo:
            normalize_paths([{"path": "N_" + "a" * 1_000_000}])

        assert len(str(excinfo.value)) < 400

    def test_max_path_length_value(self) -> None:
        assert MAX_PATH_LENGTH == 1024

    def test_empty_list_strings_counted(self) -> None:
        result = normalize_paths(["a.pdf", "[]", " () ", ["[]"]])

        assert result.paths == ["a.pdf"]
        assert result.empty_list_strings == 3

    def test_top_level_empty_list_string_counted(self) -> None:
        assert normalize_paths("[]") == NormalizedPaths(
            paths=[], dropped_none=0, duplicates=0, empty_list_strings=1
        )

    def test_empty_list_not_counted(self) -> None:
        assert normalize_paths(["a.pdf", []]).empty_list_strings == 0

    def test_huge_item_position(self) -> None:
        huge = [[f"N_{index}.pdf" for index in range(100_000)] + [None, 5]]

        with pytest.raises(TypeError, match=r"^paths\[0\]\[100001\] is 5 \(int\)"):
            normalize_paths(huge)

    def test_huge_container_message_short(self) -> None:
        huge: list[object] = [f"N_{index}.pdf" for index in range(100_000)]
        huge.append(huge)

        with pytest.raises(
            ValueError, match=r"^paths\[100000\] is \['N_0\.pdf', .*\(list\), which contains itself"
        ) as excinfo:
            normalize_paths(huge)

        assert len(str(excinfo.value)) < 300

    def test_depth_limit(self) -> None:
        allowed: object = "a.pdf"
        for _ in range(MAX_NESTING_DEPTH):
            allowed = [allowed]
        too_deep = [allowed]

        assert normalize_paths(allowed).paths == ["a.pdf"]
        with pytest.raises(
            ValueError, match=rf"^paths(\[0\]){{{MAX_NESTING_DEPTH}}} is .*\(list\), which is nested"
        ):
            normalize_paths(too_deep)

    def test_depth_limit_list_strings(self) -> None:
        value = "a.pdf"
        for _ in range(MAX_NESTING_DEPTH + 1):
            value = json.dumps([value])

        with pytest.raises(ValueError, match=rf"nested deeper than {MAX_NESTING_DEPTH} levels"):
            normalize_paths(value)

    def test_cycle(self) -> None:
        cyclic: list[object] = ["a.pdf"]
        cyclic.append([cyclic])

        with pytest.raises(
            ValueError,
            match=r"^paths\[1\]\[0\] is \['a\.pdf', \[\[\.\.\.\]\]\] \(list\), which contains itself",
        ):
            normalize_paths(cyclic)

    def test_shared_sublist_not_cycle(self) -> None:
        shared = ["a.pdf", "b.pdf"]

        result = normalize_paths([shared, shared])

        assert result.paths == ["a.pdf", "b.pdf"]
        assert result.duplicates == 2

    def test_many_paths(self) -> None:
        count = 200_000
        paths = [f"N_202410_22_{index:08x}.pdf" for index in range(count)]

        result = normalize_paths(paths + paths[:1000])

        assert len(result.paths) == count
        assert result.paths[0] == paths[0]
        assert result.paths[-1] == paths[-1]
        assert result.duplicates == 1000

    def test_many_paths_string(self) -> None:
        paths = [f"N_{index}.pdf" for index in range(200_000)]

        assert normalize_paths(json.dumps(paths)).paths == paths


class TestValidateExpireHours:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(1, 1, id="minimum"),
            pytest.param(24, 24, id="int"),
            pytest.param(MAX_EXPIRE_HOURS, MAX_EXPIRE_HOURS, id="maximum"),
            pytest.param("2", 2, id="digits"),
            pytest.param(" 24 ", 24, id="digits-whitespace"),
            pytest.param("24\n", 24, id="digits-newline"),
            pytest.param("0168", 168, id="leading-zero"),
        ],
    )
    def test_accepted(self, value: object, expected: int) -> None:
        hours = validate_expire_hours(value)

        assert hours == expected
        assert type(hours) is int

    @pytest.mark.parametrize(
        ("value", "error", "match"),
        [
            pytest.param(
                True, TypeError, r"^expire_hours is True \(bool\); expected a whole number", id="bool"
            ),
            pytest.param(2.0, TypeError, r"^expire_hours is 2\.0 \(float\)", id="float-whole"),
            pytest.param(2.5, TypeError, r"^expire_hours is 2\.5 \(float\)", id="float"),
            pytest.param(None, TypeError, r"^expire_hours is None \(NoneType\)", id="none"),
            pytest.param(b"2", TypeError, r"^expire_hours is b'2' \(bytes\)", id="bytes"),
            pytest.param([2], TypeError, r"^expire_hours is \[2\] \(list\)", id="list"),
            pytest.param(0, ValueError, r"^expire_hours is 0 \(int\), which is below 1 hour", id="zero"),
            pytest.param(
                -3, ValueError, r"^expire_hours is -3 \(int\), which is below 1 hour", id="negative"
            ),
            pytest.param(
                "0", ValueError, r"^expire_hours is '0' \(str\), which is below 1 hour", id="zero-string"
            ),
            pytest.param(
                "-3", ValueError, r"^expire_hours is '-3' \(str\), which is not a whole number", id="neg-str"
            ),
            pytest.param(
                "+3", ValueError, r"^expire_hours is '\+3' \(str\), which is not a whole", id="plus-sign"
            ),
            pytest.param(
                "2.5", ValueError, r"^expire_hours is '2\.5' \(str\), which is not a whole", id="decimal"
            ),
            pytest.param(
                "two", ValueError, r"^expire_hours is 'two' \(str\), which is not a whole", id="word"
            ),
            pytest.param("", ValueError, r"^expire_hours is '' \(str\), which is not a whole", id="empty"),
            pytest.param(
                "  ", ValueError, r"^expire_hours is '  ' \(str\), which is not a whole", id="blank"
            ),
            pytest.param(
                "²", ValueError, r"^expire_hours is '²' \(str\), which is not a whole", id="superscript"
            ),
            pytest.param(
                "２", ValueError, r"^expire_hours is '２' \(str\), which is not a whole", id="fullwidth-digit"
            ),
            pytest.param(
                MAX_EXPIRE_HOURS + 1,
                ValueError,
                r"^expire_hours is 169 \(int\), which is above the maximum of 168",
                id="above",
            ),
            pytest.param(
                "169",
                ValueError,
                r"^expire_hours is '169' \(str\), which is above the maximum",
                id="above-str",
            ),
            pytest.param(
                "9" * 5000,
                ValueError,
                r"^expire_hours is '9{60}'\.\.\. \(\d+ characters\) \(str\), which is above",
                id="huge-str",
            ),
        ],
    )
    def test_rejected(self, value: object, error: type[Exception], match: str) -> None:
        with pytest.raises(error, match=match):
            validate_expire_hours(value)

    def test_message_names_accepted_values(self) -> None:
        with pytest.raises(
            ValueError, match=r"expected a whole number of hours from 1 to 168, as an int or a string"
        ):
            validate_expire_hours(0)

    def test_custom_maximum(self) -> None:
        assert validate_expire_hours("720", maximum=720) == 720
        with pytest.raises(
            ValueError, match=r"^expire_hours is 721 \(int\), which is above the maximum of 720"
        ):
            validate_expire_hours(721, maximum=720)

    def test_custom_argument(self) -> None:
        with pytest.raises(TypeError, match=r"^hours is 1\.0 \(float\)"):
            validate_expire_hours(1.0, argument="hours")

    @pytest.mark.parametrize(
        "maximum",
        [pytest.param(0, id="zero"), pytest.param(True, id="bool"), pytest.param(2.0, id="float")],
    )
    def test_invalid_maximum(self, maximum: object) -> None:
        with pytest.raises(ValueError, match=r"^maximum is .*; expected an int of at least 1"):
            validate_expire_hours(1, maximum=maximum)  # type: ignore[arg-type]


class TestFirstValue:
    @pytest.mark.parametrize(
        ("mapping", "expected"),
        [
            pytest.param({"path": "N_1"}, ("path", "N_1"), id="path"),
            pytest.param({"path": None, "npath": "N_2"}, ("npath", "N_2"), id="none-gives-way"),
            pytest.param({"path": " \t", "Path": "N_3"}, ("Path", "N_3"), id="blank-gives-way"),
            pytest.param({"path": 0, "npath": "N_4"}, ("path", 0), id="zero-kept"),
            pytest.param({"path": None, "npath": ""}, None, id="nothing"),
            pytest.param({}, None, id="empty"),
        ],
    )
    def test_first_value(self, mapping: dict[str, object], expected: object) -> None:
        assert first_value(mapping, PATH_KEYS) == expected

    @pytest.mark.parametrize(
        "item",
        [
            pytest.param({"path": None, "npath": "N_x"}, id="none-path"),
            pytest.param({"path": "", "nPath": "N_x"}, id="blank-path"),
            pytest.param({"Path": "N_x", "nPath": "N_y"}, id="precedence"),
            pytest.param({"path": "N_x", "npath": "N_y"}, id="path-first"),
        ],
    )
    def test_listing_and_presign_read_the_same_path(self, item: dict[str, object]) -> None:
        (ref,), _unreadable = parse_file_value(item)
        assert normalize_paths([item]).paths == [ref.path]


class TestCheckBool:
    @pytest.mark.parametrize("value", [True, False])
    def test_accepted(self, value: bool) -> None:
        assert check_bool(value, argument="skip_on_empty") is value

    @pytest.mark.parametrize("value", ["no", "False", "", 0, 1, None])
    def test_rejected(self, value: object) -> None:
        with pytest.raises(TypeError, match=r"^skip_on_empty is .*; expected True or False"):
            check_bool(value, argument="skip_on_empty")


class TestShortRepr:
    def test_short_string_whole(self) -> None:
        assert short_repr("N_1.pdf") == "'N_1.pdf'"

    def test_long_string_head_and_length(self) -> None:
        assert short_repr("x" * 500) == repr("x" * 60) + "... (500 characters)"

    def test_huge_int(self) -> None:
        assert short_repr(10**5000) == "<int too large to show>"
