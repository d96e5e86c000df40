"""Client configuration read and validated from an Airflow connection's fields."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fxiaoke_provider.exceptions import FxiaokeConfigError

#: The vendor's default cloud (Fxiaoke Cloud); the tenant's own cloud domain goes in the connection's host.
DEFAULT_BASE_URL = "https://open.fxiaoke.com"

#: The vendor's app IDs look like ``FSAID_`` followed by letters and digits.
APP_ID_PATTERN = re.compile(r"^FSAID_[A-Za-z0-9_-]+$")

#: Header-style Employee IDs are integers shown on the CRM's Personnel page (``-10000`` is the system user).
USER_ID_PATTERN = re.compile(r"^-?[0-9]{1,18}$")

#: A host name: labels of ASCII letters, digits and inner hyphens, joined by dots.
HOST_NAME_PATTERN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")

AuthStyle = Literal["header", "legacy"]
TokenStoreKind = Literal["memory", "file", "airflow"]


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _check_host_name(host: str | None, hostname: str) -> None:
    """Reject a host that is neither an IP address nor a well-formed host name."""
    try:
        ipaddress.ip_address(hostname)
        return
    except ValueError:
        pass
    problem = None
    if hostname.endswith("."):
        problem = "it ends with a dot; remove the trailing dot"
    elif not hostname.isascii():
        try:
            ascii_name = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_name = None
        problem = (
            f"it has non-ASCII letters; write the name in its ASCII (punycode) form, {ascii_name}"
            if ascii_name
            else "it has non-ASCII letters that no ASCII (punycode) form represents"
        )
    elif len(hostname) > 253 or not HOST_NAME_PATTERN.match(hostname):
        problem = (
            "a host name is letters, digits and hyphens in parts joined by dots, such as open.fxiaoke.com"
        )
    elif re.fullmatch(r"[0-9.]+", hostname):
        problem = "it looks like an IPv4 address but is not one"
    if problem:
        raise FxiaokeConfigError("host", f"{host!r} is not a valid host name or IP address: {problem}")


def _bare_ipv6_error(host: str | None) -> FxiaokeConfigError:
    return FxiaokeConfigError(
        "host",
        f"{host!r} is a bare IPv6 address or has more than one ':'; write an IPv6 address in brackets, "
        "with any port after the closing bracket, such as [::1]:8099 or https://[2001:db8::1]:8443",
    )


def _without_userinfo(host: str | None) -> str | None:
    """Return the host with anything before an ``@`` in its authority replaced by ``***``."""
    if host is None or "@" not in host:
        return host
    scheme, separator, rest = host.partition("://")
    if not separator:
        scheme, rest = "", host
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return host
    hidden = "***@" + authority.rpartition("@")[2] + slash + tail
    return f"{scheme}://{hidden}" if separator else hidden


def normalize_base_url(host: str | None, port: int | None = None) -> str:
    """
    Turn the connection's host (a cloud domain or a full base URL) into a base URL.

    :param host: ``open.fxiaoke.com``-style domain, ``https://...`` URL, or ``http://`` URL of a loopback host.
        A bare loopback host such as ``127.0.0.1`` or ``::1`` means ``http://``. Any other IPv6 address
        goes in brackets.
    :param port: the connection's port, if set.
    :raises FxiaokeConfigError: when the host is malformed or uses plain ``http://`` off loopback.
    """
    raw = (host or "").strip()
    if not raw:
        raw = DEFAULT_BASE_URL
    # Messages quote the host, so a user name and password written into it are replaced first.
    host = _without_userinfo(host)
    if "://" not in raw:
        if raw.count(":") > 1 and not raw.startswith("["):
            # Without brackets, a port cannot be distinguished from the address, so only ::1 itself is accepted.
            if not _is_loopback(raw):
                raise _bare_ipv6_error(host)
            raw = f"[{raw}]"
        # A bare loopback host is the local emulator, which speaks plain HTTP; every other host gets TLS.
        try:
            bare_host = urlsplit(f"//{raw}").hostname or ""
        except ValueError:
            bare_host = ""
        raw = f"{'http' if _is_loopback(bare_host) else 'https'}://{raw}"
    try:
        parts = urlsplit(raw)
    except ValueError as err:
        raise FxiaokeConfigError("host", f"{host!r} is not a valid URL ({err})") from None
    if parts.netloc.count(":") > 1 and "[" not in parts.netloc:
        raise _bare_ipv6_error(host)
    if parts.scheme not in ("http", "https"):
        raise FxiaokeConfigError(
            "host",
            f"{host!r} has scheme {parts.scheme!r}; use a domain such as open.fxiaoke.com or an https:// URL",
        )
    hostname = parts.hostname or ""
    if not hostname:
        raise FxiaokeConfigError("host", f"{host!r} names no host; use a domain such as open.fxiaoke.com")
    _check_host_name(host, hostname)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise FxiaokeConfigError(
            "host",
            f"{host!r} must be a bare domain or scheme://domain[:port], with no path, query or credentials",
        )
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise FxiaokeConfigError(
            "host",
            f"{host!r} uses plain http:// for a host that is not loopback, which would send the app secret "
            "and tokens unencrypted; use https://",
        )
    try:
        url_port = parts.port
    except ValueError as err:
        raise FxiaokeConfigError("host", f"{host!r} has an invalid port") from err
    if port == 0:
        # Airflow's connection form sends 0 for an empty port field.
        port = None
    if url_port is not None and port is not None and url_port != port:
        raise FxiaokeConfigError("port", f"{port!r} contradicts the port {url_port} in host {host!r}")
    chosen_port = url_port if url_port is not None else port
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if chosen_port is not None:
        if not 0 < chosen_port < 65536:
            raise FxiaokeConfigError("port", f"{chosen_port!r} is not a TCP port (1-65535)")
        netloc = f"{netloc}:{chosen_port}"
    return f"{parts.scheme}://{netloc}"


def _text(extra: Mapping[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FxiaokeConfigError(f"extra.{key}", f"expected a string, got {type(value).__name__}")
    return str(value).strip()


def _number(
    extra: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float,
    maximum: float,
    integer: bool = False,
) -> Any:
    value = extra.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    what = "a whole number" if integer else "a number"
    expected = f"expected {what} from {minimum:g} to {maximum:g}"
    if isinstance(value, bool):
        raise FxiaokeConfigError(f"extra.{key}", f"{value!r} is a boolean; {expected}")
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):
        raise FxiaokeConfigError(f"extra.{key}", f"{value!r} is not {what}; {expected}") from None
    if integer and isinstance(value, float) and not value.is_integer():
        raise FxiaokeConfigError(f"extra.{key}", f"{value!r} is not {what}; {expected}")
    # NaN fails every comparison, so the range test alone would let it through.
    if not math.isfinite(number) or not minimum <= number <= maximum:
        raise FxiaokeConfigError(f"extra.{key}", f"{value!r} is out of range; {expected}")
    return number


def _cache_dir(extra: Mapping[str, Any]) -> str | None:
    value = _text(extra, "cache_dir")
    if value is None:
        return None
    # "~" is the home folder of the user running the process that reads the connection.
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        raise FxiaokeConfigError(
            "extra.cache_dir",
            f"{value!r} is not an absolute path, so each process would resolve it against its own working "
            "directory; give a full path such as /var/cache/fxiaoke or ~/fxiaoke-cache, or leave it empty",
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise FxiaokeConfigError(
            "extra.cache_dir",
            f"{value!r} is an existing file, not a folder; give a folder path or leave it empty",
        )
    return path


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs to reach one tenant; secrets are left out of the repr."""

    base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    permanent_code: str = field(repr=False)
    auth_style: AuthStyle = "header"
    #: The acting employee's Employee ID, sent as ``x-fs-userid`` (header style).
    user_id: str | None = None
    #: The acting user's ``FSUID_...`` open user ID, sent as ``currentOpenUserId`` (legacy style).
    open_user_id: str | None = None
    #: Seconds to wait for a TCP connection.
    connect_timeout: float = 10.0
    #: Seconds to wait for a response once connected.
    read_timeout: float = 60.0
    #: Retries after the first attempt for transient errors, rate limits and transport faults.
    max_retries: int = 5
    #: Upper bound, in seconds, of one exponential back-off wait.
    max_retry_wait: float = 30.0
    #: Where access tokens are shared: ``file`` (every process of this host), ``airflow`` (every host,
    #: through Airflow Variables, with the hook) or ``memory`` (this process).
    token_store: TokenStoreKind = "file"
    #: Absolute folder of the file token store and of the shared rate-limit state, with ``~`` expanded;
    #: empty means the user's cache folder.
    cache_dir: str | None = None
    #: Calls allowed per endpoint per window; the Open API allows 100 calls per 20 s per interface.
    rate_limit_calls: int = 100
    #: Length of the rate-limit window in seconds.
    rate_limit_window: float = 20.0

    @property
    def timeout(self) -> tuple[float, float]:
        """Connect and read timeouts as ``requests`` takes them."""
        return (self.connect_timeout, self.read_timeout)


#: Connection extras this provider reads; any other key is rejected as a likely typo.
KNOWN_EXTRAS = frozenset(
    {
        "permanent_code",
        "auth_style",
        "user_id",
        "open_user_id",
        "connect_timeout",
        "read_timeout",
        "max_retries",
        "max_retry_wait",
        "cache_backend",
        "cache_dir",
        "rate_limit_calls",
        "rate_limit_window",
    }
)


def config_from_connection(
    *, host: str | None, login: str | None, password: str | None, port: int | None, extra: Mapping[str, Any]
) -> ClientConfig:
    """
    Validate an Airflow connection's fields and build a :class:`ClientConfig`.

    :param host: the tenant's cloud domain or a base URL; empty means ``https://open.fxiaoke.com``.
    :param login: the app ID (``FSAID_...``).
    :param password: the app secret; whitespace at either end is rejected, not stripped.
    :param port: the connection's port, if any.
    :param extra: the connection's extras, already parsed from JSON.
    :raises FxiaokeConfigError: naming the first field that is missing or malformed.
    """
    if not isinstance(extra, Mapping):
        raise FxiaokeConfigError("extra", f"expected a JSON object, got {type(extra).__name__}")
    unknown = sorted(key for key in extra if key not in KNOWN_EXTRAS)
    if unknown:
        raise FxiaokeConfigError(
            f"extra.{unknown[0]}",
            f"unknown key(s) {', '.join(map(repr, unknown))}; known keys are {', '.join(sorted(KNOWN_EXTRAS))}",
        )
    base_url = normalize_base_url(host, port)

    app_id = (login or "").strip()
    if not app_id:
        raise FxiaokeConfigError(
            "login", "missing; set it to the app ID (FSAID_...) from the developer console"
        )
    if not APP_ID_PATTERN.match(app_id):
        raise FxiaokeConfigError(
            "login", f"{app_id!r} is not an app ID; expected FSAID_ followed by letters and digits"
        )
    if not password:
        raise FxiaokeConfigError("password", "missing; set it to the app secret from the developer console")
    # The value is a secret: the messages below describe it and never quote it.
    if not password.strip():
        raise FxiaokeConfigError(
            "password",
            "is blank (only spaces or line breaks); set it to the app secret from the developer console",
        )
    if password != password.strip():
        raise FxiaokeConfigError(
            "password",
            "starts or ends with a space, tab or line break, which the app secret never has and which the "
            "token endpoint would reject with 20006; remove it from the stored value",
        )
    permanent_code = _text(extra, "permanent_code")
    if not permanent_code:
        raise FxiaokeConfigError(
            "extra.permanent_code", "missing; set it to the tenant's permanent authorization code"
        )

    auth_style = (_text(extra, "auth_style") or "header").lower()
    if auth_style not in ("header", "legacy"):
        raise FxiaokeConfigError("extra.auth_style", f"{auth_style!r} is not 'header' or 'legacy'")
    user_id = _text(extra, "user_id")
    open_user_id = _text(extra, "open_user_id")
    if auth_style == "header":
        if not user_id:
            raise FxiaokeConfigError(
                "extra.user_id",
                "missing; header style needs the acting employee's Employee ID (CRM > Personnel > the person's "
                "account information), for example 1000",
            )
        if not USER_ID_PATTERN.match(user_id):
            raise FxiaokeConfigError(
                "extra.user_id", f"{user_id!r} is not an Employee ID; expected digits such as 1000"
            )
    else:
        if not open_user_id:
            raise FxiaokeConfigError(
                "extra.open_user_id", "missing; legacy style needs the acting user's open user ID (FSUID_...)"
            )
        if not open_user_id.startswith("FSUID_"):
            raise FxiaokeConfigError(
                "extra.open_user_id", f"{open_user_id!r} is not an open user ID; expected FSUID_..."
            )

    # Not named after tokens: Airflow masks every extra whose name contains "token" and saves it as ***.
    token_store = (_text(extra, "cache_backend") or "file").lower()
    if token_store not in ("memory", "file", "airflow"):
        raise FxiaokeConfigError(
            "extra.cache_backend", f"{token_store!r} is not 'file', 'airflow' or 'memory'"
        )

    return ClientConfig(
        base_url=base_url,
        app_id=app_id,
        app_secret=password,
        permanent_code=permanent_code,
        auth_style=auth_style,  # type: ignore[arg-type]
        user_id=user_id,
        open_user_id=open_user_id,
        connect_timeout=_number(extra, "connect_timeout", 10.0, minimum=0.001, maximum=3600),
        read_timeout=_number(extra, "read_timeout", 60.0, minimum=0.001, maximum=3600),
        max_retries=_number(extra, "max_retries", 5, minimum=0, maximum=100, integer=True),
        max_retry_wait=_number(extra, "max_retry_wait", 30.0, minimum=0, maximum=3600),
        token_store=token_store,  # type: ignore[arg-type]
        cache_dir=_cache_dir(extra),
        rate_limit_calls=_number(extra, "rate_limit_calls", 100, minimum=1, maximum=100_000, integer=True),
        rate_limit_window=_number(extra, "rate_limit_window", 20.0, minimum=0.001, maximum=86_400),
    )
