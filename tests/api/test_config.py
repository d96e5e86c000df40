"""Tests of reading and validating connection fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fxiaoke_provider.api.config import config_from_connection, normalize_base_url
from fxiaoke_provider.exceptions import FxiaokeConfigError

GOOD: dict[str, Any] = {
    "host": "open.fxiaoke.com",
    "login": "FSAID_abc123",
    "password": "app-secret-value",
    "port": None,
    "extra": {"permanent_code": "permanent-code-value", "user_id": "1000"},
}


def _with(**changes: Any) -> dict[str, Any]:
    fields = {**GOOD, "extra": dict(GOOD["extra"])}
    for key, value in changes.items():
        if key.startswith("extra_"):
            name = key.removeprefix("extra_")
            if value is None:
                fields["extra"].pop(name, None)
            else:
                fields["extra"][name] = value
        else:
            fields[key] = value
    return fields


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("host", "port", "expected"),
        [
            pytest.param("", None, "https://open.fxiaoke.com", id="empty"),
            pytest.param(None, None, "https://open.fxiaoke.com", id="none"),
            pytest.param("open-hwcloud.fxiaoke.com", None, "https://open-hwcloud.fxiaoke.com", id="domain"),
            pytest.param("https://open-ale.fxiaoke.com/", None, "https://open-ale.fxiaoke.com", id="url"),
            pytest.param("http://127.0.0.1:8099", None, "http://127.0.0.1:8099", id="loopback-http"),
            pytest.param("http://localhost", 8099, "http://localhost:8099", id="port-field"),
            pytest.param("http://[::1]:8099", None, "http://[::1]:8099", id="ipv6-loopback"),
            pytest.param(" open-na.sharecrm.com ", None, "https://open-na.sharecrm.com", id="spaces"),
            pytest.param("127.0.0.1", 8099, "http://127.0.0.1:8099", id="bare-loopback"),
            pytest.param("open.fxiaoke.com", 0, "https://open.fxiaoke.com", id="form-empty-port"),
            pytest.param("127.0.0.1:8099", None, "http://127.0.0.1:8099", id="bare-loopback-port"),
            pytest.param("::1", None, "http://[::1]", id="bare-ipv6-loopback"),
            pytest.param("::1", 8099, "http://[::1]:8099", id="bare-ipv6-loopback-port-field"),
            pytest.param("[::1]:8099", None, "http://[::1]:8099", id="bracketed-ipv6-loopback-port"),
            pytest.param("https://[2001:db8::1]:8443", None, "https://[2001:db8::1]:8443", id="ipv6-url"),
            pytest.param("OPEN-NA.sharecrm.com", None, "https://open-na.sharecrm.com", id="upper-case"),
            pytest.param("emulator:8099", None, "https://emulator:8099", id="one-label"),
        ],
    )
    def test_accepted(self, host: str | None, port: int | None, expected: str) -> None:
        assert normalize_base_url(host, port) == expected

    @pytest.mark.parametrize(
        ("host", "port", "fragment"),
        [
            pytest.param("http://open.fxiaoke.com", None, "not loopback", id="plain-http"),
            pytest.param("http://10.0.0.5:8080", None, "not loopback", id="private-http"),
            pytest.param("ftp://open.fxiaoke.com", None, "scheme", id="ftp"),
            pytest.param("https://open.fxiaoke.com/cgi", None, "no path", id="path"),
            pytest.param("https://user:pw@open.fxiaoke.com", None, "credentials", id="userinfo"),
            pytest.param("https://open.fxiaoke.com:99999", None, "port", id="bad-port"),
            pytest.param("open.fxiaoke.com.", None, "trailing dot", id="trailing-dot"),
            pytest.param("http://localhost.:8099", None, "trailing dot", id="loopback-trailing-dot"),
            pytest.param("开放.fxiaoke.com", None, "xn--h0tw2l.fxiaoke.com", id="idn-suggests-punycode"),
            pytest.param("https://open.fxiaoke.com:443", 8443, "contradicts", id="two-ports"),
            pytest.param("https://", None, "names no host", id="no-host"),
            pytest.param("open fxiaoke com", None, "not a valid host name", id="spaces-inside"),
            pytest.param("https://open fxiaoke.com", None, "not a valid host name", id="url-with-space"),
            pytest.param("open_crm.fxiaoke.com", None, "not a valid host name", id="underscore"),
            pytest.param("-open.fxiaoke.com", None, "not a valid host name", id="leading-hyphen"),
            pytest.param("open..fxiaoke.com", None, "not a valid host name", id="empty-label"),
            pytest.param("10.0.0", None, "not one", id="short-ipv4"),
            pytest.param("2001:db8::1", None, "in brackets", id="bare-ipv6"),
            pytest.param("::1:8099", None, "in brackets", id="bare-ipv6-with-port"),
            pytest.param("http://::1:8099", None, "in brackets", id="url-bare-ipv6"),
            pytest.param("[::1", None, "not a valid URL", id="open-bracket"),
        ],
    )
    def test_rejected(self, host: str, port: int | None, fragment: str) -> None:
        with pytest.raises(FxiaokeConfigError, match=fragment):
            normalize_base_url(host, port)

    @pytest.mark.parametrize(
        "host",
        [
            "https://user:userinfo-secret@open.fxiaoke.com",
            "user:userinfo-secret@open.fxiaoke.com",
            "https://user:userinfo-secret@open.fxiaoke.com/cgi?x=1",
        ],
    )
    def test_message_hides_userinfo(self, host: str) -> None:
        with pytest.raises(FxiaokeConfigError) as caught:
            normalize_base_url(host)
        assert "userinfo-secret" not in str(caught.value)
        assert "***@open.fxiaoke.com" in str(caught.value)


class TestConfigFromConnection:
    def test_defaults(self) -> None:
        config = config_from_connection(**GOOD)
        assert config.base_url == "https://open.fxiaoke.com"
        assert config.auth_style == "header"
        assert config.timeout == (10.0, 60.0)
        assert config.max_retries == 5
        assert config.token_store == "file"

    def test_repr_hides_secrets(self) -> None:
        text = repr(config_from_connection(**GOOD))
        assert "app-secret-value" not in text
        assert "permanent-code-value" not in text

    def test_legacy(self) -> None:
        config = config_from_connection(
            **_with(extra_auth_style="legacy", extra_user_id=None, extra_open_user_id="FSUID_ABC")
        )
        assert config.auth_style == "legacy"
        assert config.open_user_id == "FSUID_ABC"

    def test_numbers_from_strings(self) -> None:
        config = config_from_connection(**_with(extra_read_timeout="2.5", extra_max_retries="3"))
        assert config.read_timeout == 2.5
        assert config.max_retries == 3

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            pytest.param({"login": ""}, "login", id="login-missing"),
            pytest.param({"login": "abc"}, "login", id="login-malformed"),
            pytest.param({"password": ""}, "password", id="password-missing"),
            pytest.param({"password": None}, "password", id="password-none"),
            pytest.param({"password": "   "}, "password", id="password-spaces"),
            pytest.param({"password": "\n"}, "password", id="password-newline"),
            pytest.param({"password": "app-secret-value "}, "password", id="password-trailing-space"),
            pytest.param({"password": "app-secret-value\n"}, "password", id="password-trailing-newline"),
            pytest.param({"password": "\tapp-secret-value"}, "password", id="password-leading-tab"),
            pytest.param({"host": "open fxiaoke com"}, "host", id="host-with-spaces"),
            pytest.param({"extra_cache_dir": "fx-cache"}, "extra.cache_dir", id="cache-dir-relative"),
            pytest.param({"extra_cache_dir": "./cache"}, "extra.cache_dir", id="cache-dir-dot"),
            pytest.param({"extra_permanent_code": None}, "extra.permanent_code", id="permanent-code-missing"),
            pytest.param({"extra_permanent_code": "  "}, "extra.permanent_code", id="permanent-code-blank"),
            pytest.param({"extra_permanent_code": ["x"]}, "extra.permanent_code", id="permanent-code-list"),
            pytest.param({"extra_user_id": None}, "extra.user_id", id="user-id-missing"),
            pytest.param({"extra_user_id": "FSUID_X"}, "extra.user_id", id="user-id-malformed"),
            pytest.param({"extra_auth_style": "oauth"}, "extra.auth_style", id="auth-style-unknown"),
            pytest.param({"extra_auth_style": "legacy"}, "extra.open_user_id", id="open-user-id-missing"),
            pytest.param(
                {"extra_auth_style": "legacy", "extra_open_user_id": "1000"},
                "extra.open_user_id",
                id="open-user-id-malformed",
            ),
            pytest.param({"extra_read_timeout": "soon"}, "extra.read_timeout", id="timeout-text"),
            pytest.param({"extra_read_timeout": 0}, "extra.read_timeout", id="timeout-zero"),
            pytest.param({"extra_connect_timeout": True}, "extra.connect_timeout", id="timeout-bool"),
            pytest.param({"extra_max_retries": -1}, "extra.max_retries", id="retries-negative"),
            pytest.param({"extra_max_retries": 1.5}, "extra.max_retries", id="retries-fraction"),
            pytest.param({"extra_rate_limit_calls": 0}, "extra.rate_limit_calls", id="rate-zero"),
            pytest.param({"extra_connect_timeout": "nan"}, "extra.connect_timeout", id="timeout-nan"),
            pytest.param({"extra_read_timeout": "inf"}, "extra.read_timeout", id="timeout-inf"),
            pytest.param({"extra_read_timeout": 3601}, "extra.read_timeout", id="timeout-hour-plus"),
            pytest.param({"extra_rate_limit_window": "1e9"}, "extra.rate_limit_window", id="window-huge"),
            pytest.param({"extra_max_retry_wait": "nan"}, "extra.max_retry_wait", id="wait-nan"),
            pytest.param({"extra_max_retries": 10**30}, "extra.max_retries", id="retries-huge"),
            pytest.param({"extra_max_retries": "inf"}, "extra.max_retries", id="retries-inf"),
            pytest.param({"extra_cache_backend": "redis"}, "extra.cache_backend", id="store-unknown"),
            pytest.param({"extra_permanent_cdoe": "x"}, "extra.permanent_cdoe", id="unknown-key"),
            pytest.param({"host": "http://example.com"}, "host", id="plain-http"),
            pytest.param({"extra": ["x"]}, "extra", id="extra-list"),
        ],
    )
    def test_rejected_names_field(self, changes: dict[str, Any], field: str) -> None:
        with pytest.raises(FxiaokeConfigError) as caught:
            config_from_connection(**_with(**changes))
        assert caught.value.field == field
        assert field in str(caught.value)
        assert "app-secret-value" not in str(caught.value)
        assert "permanent-code-value" not in str(caught.value)


class TestPassword:
    @pytest.mark.parametrize("value", ["   ", "\n", " \t\r\n"])
    def test_blank_rejected(self, value: str) -> None:
        with pytest.raises(FxiaokeConfigError, match="password: is blank") as caught:
            config_from_connection(**_with(password=value))
        assert repr(value) not in str(caught.value)

    @pytest.mark.parametrize("value", ["secret-with-space ", "\nsecret-with-space", "secret-with-space\r\n"])
    def test_padded_rejected(self, value: str) -> None:
        with pytest.raises(FxiaokeConfigError, match="starts or ends with a space") as caught:
            config_from_connection(**_with(password=value))
        assert "secret-with-space" not in str(caught.value)

    def test_inner_space_kept(self) -> None:
        assert config_from_connection(**_with(password="two words")).app_secret == "two words"


class TestCacheDir:
    def test_home_expanded(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        config = config_from_connection(**_with(extra_cache_dir="~/fx-cache"))
        assert config.cache_dir == str(tmp_path / "fx-cache")

    def test_absolute_kept(self, tmp_path: Path) -> None:
        assert config_from_connection(**_with(extra_cache_dir=str(tmp_path))).cache_dir == str(tmp_path)

    def test_empty_means_default(self) -> None:
        assert config_from_connection(**_with(extra_cache_dir="")).cache_dir is None

    @pytest.mark.parametrize("value", ["fx-cache", "./fx-cache", "cache/fxiaoke", "~no-such-user-4f1c/fx"])
    def test_relative_rejected(self, value: str) -> None:
        with pytest.raises(FxiaokeConfigError, match="not an absolute path") as caught:
            config_from_connection(**_with(extra_cache_dir=value))
        assert caught.value.field == "extra.cache_dir"
        assert repr(value) in str(caught.value)

    def test_file_rejected(self, tmp_path: Path) -> None:
        target = tmp_path / "a-file"
        target.write_text("")
        with pytest.raises(FxiaokeConfigError, match="is an existing file") as caught:
            config_from_connection(**_with(extra_cache_dir=str(target)))
        assert caught.value.field == "extra.cache_dir"
        assert str(target) in str(caught.value)
