"""The public emulator object: starts and stops the server and exposes its state to tests."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from fxiaoke_provider.testing.clock import EmulatorClock
from fxiaoke_provider.testing.endpoints import OpenApiProtocol
from fxiaoke_provider.testing.faults import TRANSIENT_ERROR_CODES, Fault, FaultQueue, build_random_faults
from fxiaoke_provider.testing.objects import demo_records, generate_records
from fxiaoke_provider.testing.seed import DEMO_FILES
from fxiaoke_provider.testing.server import EmulatorHTTPServer, ServerContext
from fxiaoke_provider.testing.settings import EmulatorSettings
from fxiaoke_provider.testing.state import EmulatorState, RecordedRequest

log = logging.getLogger("fxiaoke_provider.testing")

AuthStyle = Literal["header", "legacy"]


def is_loopback_host(host: str) -> bool:
    """
    Return whether a host name or address refers to the loopback interface only.

    :param host: a host name or IP address.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_public_url(url: str) -> None:
    """
    Check that a public URL is a bare base URL, as the provider's connection accepts it.

    :raises ValueError: naming the URL and the expected form.
    """
    expected = "give scheme://host[:port], such as http://127.0.0.1:8099"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"public_url {url!r} is not a valid URL ({err}); {expected}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public_url {url!r} must be an http:// or https:// URL with a host; {expected}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"public_url {url!r} has a path, query, fragment or user name, which the API's base URL "
            f"cannot have; {expected}"
        )
    if port == 0:
        raise ValueError(f"public_url {url!r} has port 0; {expected}")


class FxiaokeEmulator:
    """
    Local HTTP server that emulates the Fxiaoke Open API for tests and demos.

    It serves the two token endpoints, ``getPresignedUrl``, ``generateDownloadSignatureUrlByAuth``,
    ``generatorPreviewUrl``, the two CRM object query endpoints, and downloads of the signed URLs they
    return. It enforces ``thirdTraceId``, both authentication
    styles and the rate limits, and can inject faults.

    .. code-block:: python

        with FxiaokeEmulator() as emulator:
            emulator.seed_demo_files()
            monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", emulator.connection_json())

    :param host: address to bind; keep the loopback default unless a container must reach it.
    :param port: port to bind; 0 picks a free one, see :attr:`port` after :meth:`start`.
    :param settings: behaviour switches; None uses the defaults and the demo tenant.
    :param public_url: base URL that clients use to reach the emulator, put into signed URLs and
        connection JSON; None uses :attr:`base_url`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: EmulatorSettings | None = None,
        public_url: str | None = None,
    ) -> None:
        if public_url is not None:
            _check_public_url(public_url)
        self.host = host
        self.requested_port = port
        self.settings = settings if settings is not None else EmulatorSettings()
        self.public_url = public_url.rstrip("/") if public_url is not None else None
        self.clock = EmulatorClock()
        self._state = EmulatorState(self.settings.request_log_size)
        self._faults = FaultQueue(self.settings.random_seed)
        self._stop_event = threading.Event()
        self._protocol = OpenApiProtocol(
            self._state, self.clock, lambda: self.settings, lambda: self.advertised_url, self._stop_event
        )
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FxiaokeEmulator:
        """Bind the port and serve requests on a background thread; return the emulator itself."""
        if self._server is not None:
            raise RuntimeError(f"emulator is already running at {self.base_url}")
        self._stop_event.clear()
        context = ServerContext(
            clock=self.clock,
            state=self._state,
            faults=self._faults,
            protocol=self._protocol,
            get_settings=lambda: self.settings,
            stop_event=self._stop_event,
        )
        self._server = EmulatorHTTPServer((self.host, self.requested_port), context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # stop() waits up to one poll interval for the loop to notice; a short one keeps test teardown fast.
            kwargs={"poll_interval": 0.02},
            name=f"fxiaoke-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("Fxiaoke emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, end injected delays early and close open connections; do nothing if not running."""
        server, thread = self._server, self._thread
        if server is None:
            return
        url = self.base_url
        self._stop_event.set()
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None
        log.info("Fxiaoke emulator at %s stopped", url)

    def __enter__(self) -> FxiaokeEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is bound and serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """URL of the running server, e.g. ``http://127.0.0.1:8099``; a wildcard bind shows as loopback."""
        if self._server is None:
            raise RuntimeError("emulator is not running: call start() first")
        host = str(self._server.server_address[0])
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def advertised_url(self) -> str:
        """Base URL put into signed URLs and connection JSON: ``public_url`` if set, else :attr:`base_url`."""
        return self.public_url if self.public_url is not None else self.base_url

    # Files

    def add_file(self, path: str, data: bytes) -> None:
        """
        Store a file that the file endpoints can sign and serve.

        :param path: the npath, e.g. from :func:`~fxiaoke_provider.testing.make_npath`.
        :param data: the file content.
        """
        self._state.files.add(path, data)

    def remove_file(self, path: str) -> bool:
        """
        Delete a stored file and return whether it existed. Its signed URLs then return HTTP 404.

        :param path: the npath.
        """
        return self._state.files.remove(path)

    @property
    def files(self) -> dict[str, bytes]:
        """Copy of the stored files by npath."""
        return self._state.files.snapshot()

    def seed_demo_files(self) -> list[str]:
        """Store :data:`~fxiaoke_provider.testing.DEMO_FILES` and return their npaths."""
        for path, data in DEMO_FILES.items():
            self._state.files.add(path, data)
        return list(DEMO_FILES)

    def download_url(self, path: str, expires_in: float = 3600) -> str:
        """
        Return a signed download URL for a stored file without calling the API.

        :param path: the npath.
        :param expires_in: seconds of emulator time until the URL expires.
        """
        return self._protocol.signed_url(path, int(self.clock.now() + expires_in))

    # CRM objects

    def add_records(self, object_api_name: str, records: Iterable[Mapping[str, Any]]) -> int:
        """
        Store CRM records that the query endpoints serve, replacing records with the same ``_id``.

        :param object_api_name: for example ``AccountObj``, or ``Contract__c`` for a custom object.
        :param records: dicts, each with a string ``_id``; other fields are returned as they are.
        :return: the number of records added or replaced.
        """
        return self._protocol.objects.add(object_api_name, records)

    def records(self, object_api_name: str) -> list[dict[str, Any]]:
        """
        Return copies of an object's records, sorted by ``_id``.

        :param object_api_name: the object's API name.
        """
        return self._protocol.objects.snapshot(object_api_name)

    def seed_crm_objects(self) -> dict[str, list[dict[str, Any]]]:
        """
        Store the demo files and CRM records that reference them, modified within the last day.

        ``AccountObj`` gets an ``attachments`` file field and a ``logo`` image field; the custom object
        ``Contract__c`` gets ``contract_file__c`` and ``scan_images__c``. Some records have no file.

        :return: the stored records by object API name.
        """
        self.seed_demo_files()
        now_ms = int(self.clock.now() * 1000)
        seeded = demo_records(now_ms)
        for name, records in seeded.items():
            self._protocol.objects.add(name, records)
        return seeded

    def seed_records(
        self,
        object_api_name: str,
        count: int,
        *,
        file_field: str = "attachments",
        every: int = 1,
        seed: int = 7,
    ) -> dict[str, bytes]:
        """
        Store ``count`` generated records with a small file on every ``every``-th one, and those files.

        The records' ``last_modified_time`` values are one second apart, starting one day before the
        emulator's clock. Generating 10,000 records takes well under a second.

        :param object_api_name: the object's API name.
        :param count: how many records.
        :param file_field: name of the file field.
        :param every: put a file on every ``every``-th record.
        :param seed: seed of the IDs, paths and contents.
        :return: the generated files' contents by npath.
        """
        start_ms = int((self.clock.now() - 86_400) * 1000)
        records, files = generate_records(
            count, file_field=file_field, every=every, modified_ms=start_ms, seed=seed
        )
        for path, data in files.items():
            self._state.files.add(path, data)
        self._protocol.objects.add(object_api_name, records)
        return files

    # Airflow connection

    def connection_extra(self, auth_style: AuthStyle = "header") -> dict[str, str]:
        """
        Return the ``extra`` of an Airflow connection to this emulator.

        :param auth_style: "header" for the ``authorization``/``x-fs-*`` headers with an Employee ID,
            "legacy" for body credentials with an open user ID.
        """
        credentials = self.settings.credentials
        if auth_style == "header":
            return {
                "permanent_code": credentials.permanent_code,
                "user_id": credentials.user_id,
                "auth_style": "header",
            }
        if auth_style == "legacy":
            return {
                "permanent_code": credentials.permanent_code,
                "open_user_id": credentials.open_user_id,
                "auth_style": "legacy",
            }
        raise ValueError(f"auth_style must be 'header' or 'legacy', got {auth_style!r}")

    def connection_json(self, auth_style: AuthStyle = "header") -> str:
        """
        Return the JSON of an ``AIRFLOW_CONN_*`` variable for a connection to this emulator.

        :param auth_style: "header" or "legacy", as in :meth:`connection_extra`.
        """
        credentials = self.settings.credentials
        connection = {
            "conn_type": "fxiaoke",
            "host": self.advertised_url,
            "login": credentials.app_id,
            "password": credentials.app_secret,
            "extra": self.connection_extra(auth_style),
        }
        return json.dumps(connection)

    # Faults

    def inject(self, fault: Fault) -> None:
        """
        Queue a fault for later requests.

        :param fault: the fault and the requests it matches.
        """
        self._faults.add(fault)

    def inject_random_faults(
        self,
        rate: float = 0.2,
        endpoint: str | None = None,
        codes: Sequence[int] = TRANSIENT_ERROR_CODES,
        drop_share: float = 0.0,
        delay_share: float = 0.0,
        delay_seconds: float = 0.05,
    ) -> list[Fault]:
        """
        Fail a random ``rate`` share of matching requests, with no end, and return the queued faults.

        A failure drops the connection with chance ``drop_share``, delays the response with chance
        ``delay_share``, and otherwise returns one of ``codes``, each equally likely. The draws come from a
        generator seeded with ``settings.random_seed``, so runs repeat.

        :param rate: share of matching requests that fail, between 0 and 1.
        :param endpoint: path to match, as in :attr:`Fault.endpoint`; None matches every known POST endpoint.
        :param codes: error codes to return. The default is the Open API's transient codes.
        :param drop_share: share of the failures that close the connection without a response.
        :param delay_share: share of the failures that only delay the response.
        :param delay_seconds: real seconds of each delay.
        """
        faults = build_random_faults(rate, endpoint, codes, drop_share, delay_share, delay_seconds)
        for fault in faults:
            self._faults.add(fault)
        return faults

    @property
    def faults(self) -> list[Fault]:
        """Faults still queued, in injection order."""
        return self._faults.pending

    def clear_faults(self) -> None:
        """Drop every queued fault and reseed the fault generator from ``settings.random_seed``."""
        self._faults.clear(self.settings.random_seed)

    # Observations

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copy of the request log, oldest first."""
        return self._state.requests

    @property
    def token_calls(self) -> int:
        """Calls to either token endpoint that got past injected faults, accepted or rejected."""
        return self._state.counters["token_calls"]

    @property
    def max_concurrent_token_calls(self) -> int:
        """Largest number of token calls in flight at the same time."""
        return self._state.counters["max_concurrent_token_calls"]

    @property
    def rate_limit_errors(self) -> int:
        """Calls rejected by the per-interface rate limit."""
        return self._state.counters["rate_limit_errors"]

    def expire_tokens(self) -> None:
        """Expire every issued token now, so using one returns 20016 and the next token call issues a new one."""
        self._state.tokens.expire_all()

    def reset(self) -> None:
        """
        Clear the request log, counters, faults, tokens, seen trace IDs and rate windows.

        Files, settings and the clock stay as they are. The fault generator is reseeded and the log is
        rebuilt with the current ``random_seed`` and ``request_log_size``.
        """
        self._state.reset(self.settings.request_log_size)
        self._faults.clear(self.settings.random_seed)
