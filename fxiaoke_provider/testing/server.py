"""HTTP transport of the emulator: a threading HTTP/1.1 server that applies faults and frames every response."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from fxiaoke_provider.testing.clock import EmulatorClock
from fxiaoke_provider.testing.endpoints import DOWNLOAD_PREFIX, KNOWN_POST_PATHS, OpenApiProtocol
from fxiaoke_provider.testing.envelope import ApiError, ApiReply, build_envelope, parse_json_body
from fxiaoke_provider.testing.faults import FaultQueue
from fxiaoke_provider.testing.settings import EmulatorSettings
from fxiaoke_provider.testing.state import EmulatorState, RecordedRequest

log = logging.getLogger("fxiaoke_provider.testing")

HEALTH_PATH = "/emulator/health"
_JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
_TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
# Longest accepted chunk-size line of a chunked request body, in bytes.
_MAX_CHUNK_LINE = 1024


class _BadRequestBody(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ServerContext:
    """Shared objects of the request handlers: the emulator's clock, state, faults, protocol and settings."""

    clock: EmulatorClock
    state: EmulatorState
    faults: FaultQueue
    protocol: OpenApiProtocol
    get_settings: Callable[[], EmulatorSettings]
    #: Set by ``stop()``; injected delays wait on it, so they end early when the server stops.
    stop_event: threading.Event


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes
    error_code: int | None = None
    #: Send only the first half of the body, then close the connection.
    truncate: bool = False


class EmulatorHTTPServer(ThreadingHTTPServer):
    """
    Threading HTTP server that tracks its open connections so that ``stop()`` can close idle keep-alive ones.

    The standard library server is used instead of an ASGI or WSGI framework for two reasons. It gives
    full control over the socket, which fault injection needs to drop a connection or delay a response.
    It also runs no event loop that could interfere with the threads of the tests that drive it.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: ServerContext) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorRequestHandler)

    def server_bind(self) -> None:
        """Bind the socket; unlike ``HTTPServer.server_bind`` this skips the reverse DNS lookup of the host."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """
        Track the connection, then serve it on a new thread.

        :param request: the accepted socket.
        :param client_address: the peer address.
        """
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """
        Stop tracking the connection, then close it.

        :param request: the socket to close.
        """
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Shut down every tracked connection, so that no handler thread waits on an idle keep-alive socket."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """
        Log an error that escaped a handler at DEBUG, instead of printing a traceback to stderr.

        :param request: the socket being served.
        :param client_address: the peer address.
        """
        log.debug("Error while serving %s", client_address, exc_info=sys.exc_info())


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Request handler that reads a request, applies a queued fault or the protocol, records it and responds."""

    # HTTP/1.1 keeps connections alive, so every response carries Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes. With Nagle's algorithm on, the body write would wait
    # for the client's delayed ACK, which costs about 40 ms per keep-alive call on Linux.
    disable_nagle_algorithm = True
    server_version = "FxiaokeEmulator"

    def version_string(self) -> str:
        """Return the ``Server`` header value, without the Python version the base class appends."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the standard library's access log on stderr; requests are logged at DEBUG instead."""

    @property
    def _context(self) -> ServerContext:
        return cast(EmulatorHTTPServer, self.server).context

    def do_POST(self) -> None:
        """Serve a POST to an Open API endpoint."""
        self._serve("POST")

    def do_GET(self) -> None:
        """Serve a GET of a download URL or of the health path."""
        self._serve("GET")

    def _serve(self, method: str) -> None:
        context = self._context
        settings = context.get_settings()
        arrived_at = context.clock.now()
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        body: object | None = None
        try:
            raw_body = self._read_body(settings.max_body_bytes)
        except _BadRequestBody as exc:
            self.close_connection = True
            response: _Response | None = _Response(exc.status, _TEXT_CONTENT_TYPE, exc.reason.encode())
        else:
            body_error: ApiError | None = None
            if method == "POST":
                body, body_error = parse_json_body(raw_body)
            try:
                response = self._respond(method, url.path, query, headers, body, body_error)
            except Exception:
                # A bug in the emulator, not bad client input: report it instead of dropping the connection.
                log.exception("Emulator failed to handle %s %s", method, url.path)
                response = _Response(500, _TEXT_CONTENT_TYPE, b"emulator internal error, see its log")

        # Record before responding, so a client that has its response always finds the request in the log.
        context.state.record(
            RecordedRequest(
                method=method,
                path=url.path,
                query=query,
                headers=headers,
                body=body,
                error_code=None if response is None else response.error_code,
                http_status=0 if response is None else response.status,
                at=arrived_at,
            )
        )
        if response is None:
            log.debug("%s %s -> connection dropped by an injected fault", method, url.path)
            self.close_connection = True
            return
        log.debug("%s %s -> HTTP %d, errorCode %s", method, url.path, response.status, response.error_code)
        try:
            self._send(response, settings.download_chunk_bytes)
        except OSError as exc:
            # The client gave up first, e.g. its read timeout ran out during an injected delay.
            log.debug(
                "%s %s -> client closed the connection before the response was sent: %s",
                method,
                url.path,
                exc,
            )
            self.close_connection = True

    def _read_body(self, max_bytes: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body(max_bytes)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0:
            raise _BadRequestBody(400, f"Content-Length {length_text!r} is not a non-negative integer")
        if length > max_bytes:
            raise _BadRequestBody(
                413, f"request body of {length} bytes is larger than the {max_bytes} allowed"
            )
        return self.rfile.read(length)

    def _read_chunked_body(self, max_bytes: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequestBody(400, f"invalid chunk size line {line[:40]!r}") from None
            if size == 0:
                # Skip any trailer fields up to the blank line that ends the body.
                while self.rfile.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > max_bytes:
                raise _BadRequestBody(
                    413, f"chunked request body is larger than the {max_bytes} bytes allowed"
                )
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_CHUNK_LINE)

    def _respond(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: object | None,
        body_error: ApiError | None,
    ) -> _Response | None:
        """Return the response to send, or None to close the connection without one."""
        context = self._context
        known_endpoint = method == "POST" and path in KNOWN_POST_PATHS
        fault = context.faults.take(method, path, known_endpoint)
        if fault is not None:
            if fault.delay_seconds > 0:
                context.stop_event.wait(fault.delay_seconds)
            if fault.drop:
                return None
            if fault.raw_response:
                return _Response(fault.http_status or 200, fault.content_type, fault.body or b"")
            if fault.error_code is not None:
                return self._json_response(ApiReply(fault.error_code, fault.error_message))

        response = self._regular_response(method, path, query, headers, body, body_error)
        response.truncate = fault is not None and fault.truncate
        return response

    def _regular_response(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: object | None,
        body_error: ApiError | None,
    ) -> _Response:
        """Return the response of a request that no fault replaced."""
        context = self._context
        if method == "POST":
            return self._json_response(context.protocol.handle_post(path, query, headers, body, body_error))
        if path.startswith(DOWNLOAD_PREFIX):
            status, reason, content = context.protocol.check_download(path, query)
            if content is None:
                return _Response(status, _TEXT_CONTENT_TYPE, reason.encode())
            return _Response(status, "application/octet-stream", content)
        if path == HEALTH_PATH:
            return _Response(200, _JSON_CONTENT_TYPE, b'{"status": "ok"}')
        return _Response(404, _TEXT_CONTENT_TYPE, f"no such path: {path}".encode())

    def _json_response(self, reply: ApiReply) -> _Response:
        envelope = build_envelope(reply, self._context.get_settings().credentials.ea, secrets.token_hex(8))
        encoded = json.dumps(envelope, ensure_ascii=False).encode()
        return _Response(200, _JSON_CONTENT_TYPE, encoded, reply.error_code)

    def _send(self, response: _Response, chunk_bytes: int) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        # Write a large file in slices of one view, so no extra copy of its bytes is made.
        view = memoryview(response.body)
        if response.truncate:
            # Content-Length announced the whole body, so the client sees the connection break mid-body.
            view = view[: len(view) // 2]
            self.close_connection = True
        chunk = max(chunk_bytes, 1024)
        for start in range(0, len(view), chunk):
            self.wfile.write(view[start : start + chunk])
