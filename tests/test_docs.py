"""Check the user docs against the code they describe: error codes, connection fields and links."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import pytest

from fxiaoke_provider.api.codes import ERROR_CODES
from fxiaoke_provider.api.config import KNOWN_EXTRAS, ClientConfig, config_from_connection
from fxiaoke_provider.exceptions import FxiaokeConfigError
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PAGES = ["connection.md", "operators.md", "emulator.md", "troubleshooting.md", "security.md"]
CLOUD_DOMAINS = [
    "open.fxiaoke.com",
    "open-hwcloud.fxiaoke.com",
    "open-ale.fxiaoke.com",
    "open-hws.fxiaoke.com",
    "open-ksc.sharecrm.com",
    "open-na.sharecrm.com",
]
_RANGE = re.compile(r"^(?P<integer>whole number, )?(?P<low>[0-9.]+) to (?P<high>[0-9.]+)$")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_DEFAULTS = {item.name: item.default for item in fields(ClientConfig)}


def _rows(page: str) -> list[list[str]]:
    """Return the cells of every table row of a docs page, header and separator rows excluded."""
    rows = []
    for line in (DOCS / page).read_text().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _code_rows() -> dict[int, list[str]]:
    return {int(row[0]): row for row in _rows("troubleshooting.md") if re.fullmatch(r"-?[0-9]+", row[0])}


def _field_rows() -> dict[str, list[str]]:
    return {
        row[0].strip("`"): row for row in _rows("connection.md") if row[0].startswith("`") and len(row) == 5
    }


def _numeric_fields() -> list[str]:
    return sorted(key for key, row in _field_rows().items() if _RANGE.match(row[2]))


def _config(**extra: Any) -> ClientConfig:
    return config_from_connection(
        host="open.fxiaoke.com",
        login="FSAID_docs0001",
        password="docs-app-secret",
        port=None,
        extra={"permanent_code": "docs-permanent-code", "user_id": "1000", **extra},
    )


def _bounds(key: str) -> tuple[float, float, bool]:
    match = _RANGE.match(_field_rows()[key][2])
    assert match is not None, f"no range for {key} in connection.md"
    return float(match["low"]), float(match["high"]), bool(match["integer"])


class TestErrorCodes:
    def test_every_code_listed(self) -> None:
        assert sorted(_code_rows()) == sorted(ERROR_CODES)

    @pytest.mark.parametrize("code", sorted(ERROR_CODES))
    def test_meaning(self, code: int) -> None:
        assert _code_rows()[code][1] == ERROR_CODES[code].meaning

    @pytest.mark.parametrize("code", sorted(ERROR_CODES))
    def test_advice(self, code: int) -> None:
        assert _code_rows()[code][3] == ERROR_CODES[code].advice


class TestConnectionFields:
    def test_every_extra_listed(self) -> None:
        assert set(_field_rows()) == set(KNOWN_EXTRAS)

    @pytest.mark.parametrize("domain", CLOUD_DOMAINS)
    def test_cloud_domain(self, domain: str) -> None:
        assert f"| `{domain}` |" in (DOCS / "connection.md").read_text()

    def test_numeric_fields_found(self) -> None:
        assert len(_numeric_fields()) == 6

    @pytest.mark.parametrize("key", _numeric_fields())
    def test_default(self, key: str) -> None:
        assert float(_field_rows()[key][3]) == _DEFAULTS[key]

    @pytest.mark.parametrize("key", _numeric_fields())
    def test_low_accepted(self, key: str) -> None:
        low, _, integer = _bounds(key)
        value = int(low) if integer else low
        assert getattr(_config(**{key: value}), key) == value

    @pytest.mark.parametrize("key", _numeric_fields())
    def test_high_accepted(self, key: str) -> None:
        _, high, integer = _bounds(key)
        value = int(high) if integer else high
        assert getattr(_config(**{key: value}), key) == value

    @pytest.mark.parametrize("key", _numeric_fields())
    def test_below_rejected(self, key: str) -> None:
        low, _, integer = _bounds(key)
        value = int(low) - 1 if integer else (low / 2 if low > 0 else -0.001)
        with pytest.raises(FxiaokeConfigError, match=f"extra.{key}"):
            _config(**{key: value})

    @pytest.mark.parametrize("key", _numeric_fields())
    def test_above_rejected(self, key: str) -> None:
        _, high, integer = _bounds(key)
        value = int(high) + 1 if integer else high + 0.001
        with pytest.raises(FxiaokeConfigError, match=f"extra.{key}"):
            _config(**{key: value})


class TestLinks:
    @pytest.mark.parametrize("page", PAGES)
    def test_readme_links_page(self, page: str) -> None:
        assert f"(docs/{page})" in (REPO_ROOT / "README.md").read_text()

    @pytest.mark.parametrize("page", sorted(path.name for path in DOCS.glob("*.md")))
    def test_relative_links_resolve(self, page: str) -> None:
        targets = [link for link in _LINK.findall((DOCS / page).read_text()) if "://" not in link]
        missing = [link for link in targets if not (DOCS / link).exists()]
        assert missing == []

    def test_form_screenshot_png(self) -> None:
        assert (DOCS / "img" / "connection-form.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
