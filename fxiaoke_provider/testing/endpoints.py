"""Open API protocol rules: trace IDs, token endpoints, both authentication styles, rate limits and file URLs."""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Callable, Mapping
from urllib.parse import quote, unquote

from fxiaoke_provider.testing.clock import EmulatorClock
from fxiaoke_provider.testing.envelope import ApiError, ApiReply, show_value
from fxiaoke_provider.testing.objects import ObjectStore, QueryRules
from fxiaoke_provider.testing.settings import EmulatorSettings
from fxiaoke_provider.testing.state import EmulatorState, IssuedToken, TokenStyle

TOKEN_PATH = "/oauth2.0/token"
LEGACY_TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
PRESIGN_PATH = "/cgi/crm/v2/file/getPresignedUrl"
LARGE_FILE_URL_PATH = "/cgi/crm/v2/generateDownloadSignatureUrlByAuth"
QUERY_PATH = "/cgi/crm/v2/data/query"
CUSTOM_QUERY_PATH = "/cgi/crm/custom/v2/data/query"
PREVIEW_PATH = "/cgi/crm/v2/generatorPreviewUrl"
#: Path prefixes a preview accepts, its longest path and name, and the extensions it can show (vendor).
PREVIEW_PREFIXES = ("N_", "TN_", "C_", "TC_")
PREVIEW_MAX_PATH = 48
PREVIEW_MAX_FILENAME = 120
PREVIEW_EXTENSIONS = frozenset(
    {
        "png",
        "webp",
        "jpeg",
        "jpg",
        "bmp",
        "gif",
        "txt",
        "sql",
        "js",
        "css",
        "csv",
        "json",
        "md",
        "xml",
        "py",
        "java",
    }
)
#: Prefix of the emulator's own download URLs; the rest of the path is the URL-quoted npath.
DOWNLOAD_PREFIX = "/emulator/files/"

TOKEN_PATHS = frozenset({TOKEN_PATH, LEGACY_TOKEN_PATH})
API_PATHS = frozenset({PRESIGN_PATH, LARGE_FILE_URL_PATH, QUERY_PATH, CUSTOM_QUERY_PATH, PREVIEW_PATH})
KNOWN_POST_PATHS = TOKEN_PATHS | API_PATHS

# The hyphenated form of an RFC 4122 UUID: version digit 4, variant bits 10.
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.IGNORECASE)
_SAFE_TRACE_PART = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _same_secret(sent: str, stored: str) -> bool:
    return hmac.compare_digest(sent.encode(), stored.encode())


class OpenApiProtocol:
    """Handling of POST requests and checks of download URLs, shared by every connection of one emulator."""

    def __init__(
        self,
        state: EmulatorState,
        clock: EmulatorClock,
        get_settings: Callable[[], EmulatorSettings],
        get_url_base: Callable[[], str],
        stop_event: threading.Event,
    ) -> None:
        self._state = state
        self._clock = clock
        self._get_settings = get_settings
        self._get_url_base = get_url_base
        self._stop_event = stop_event
        #: Records of the CRM objects that the query endpoints serve.
        self.objects = ObjectStore()

    def handle_post(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: object | None,
        body_error: ApiError | None,
    ) -> ApiReply:
        """
        Apply the protocol rules to one POST and return the reply; rejections become non-zero codes.

        :param path: URL path.
        :param query: query parameters.
        :param headers: headers with lower-cased names.
        :param body: the parsed JSON body.
        :param body_error: the error from :func:`parse_json_body`, if any.
        """
        if path not in KNOWN_POST_PATHS:
            return ApiReply(10006, f"the request uri=[{path}] is not exists")
        trace_user = "0"
        try:
            if path in TOKEN_PATHS:
                return self._token_call(path, query, body, body_error)
            trace_user = self._trace_user(headers)
            reply = self._api_call(path, query, headers, body, body_error)
            reply.trace_user = trace_user
            return reply
        except ApiError as exc:
            return ApiReply(exc.error_code, exc.message, trace_user=trace_user)

    @staticmethod
    def _trace_user(headers: Mapping[str, str]) -> str:
        user_id = headers.get("x-fs-userid", "")
        return user_id if _SAFE_TRACE_PART.fullmatch(user_id) else "0"

    def _check_trace_id(self, query: Mapping[str, str], settings: EmulatorSettings) -> None:
        if not settings.require_trace_id:
            return
        code = settings.trace_id_error_code
        trace_id = query.get("thirdTraceId")
        if not trace_id:
            raise ApiError(
                code, "thirdTraceId query parameter is missing: send a new UUID version 4 per request"
            )
        if not _UUID4.fullmatch(trace_id):
            raise ApiError(code, f"thirdTraceId {show_value(trace_id)} is not a UUID version 4")
        if settings.reject_duplicate_trace_id and not self._state.trace_ids.remember(
            trace_id, settings.trace_id_memory
        ):
            raise ApiError(
                code, f"thirdTraceId {show_value(trace_id)} was already used by an earlier request"
            )

    @staticmethod
    def _require_object(body: object | None, body_error: ApiError | None) -> dict[str, object]:
        if body_error is not None:
            raise body_error
        if not isinstance(body, dict):
            raise ApiError(15002, "request body must be a JSON object")
        return body

    # Token endpoints

    def _token_call(
        self, path: str, query: Mapping[str, str], body: object | None, body_error: ApiError | None
    ) -> ApiReply:
        settings = self._get_settings()
        with self._state.token_call() as overlapping:
            self._check_trace_id(query, settings)
            request = self._require_object(body, body_error)
            if settings.enforce_token_limits:
                self._check_token_limits(overlapping, settings)
            if settings.token_latency_seconds > 0:
                self._stop_event.wait(settings.token_latency_seconds)
            return self._issue_token(path, request, settings)

    def _check_token_limits(self, overlapping: bool, settings: EmulatorSettings) -> None:
        code = settings.token_limit_error_code
        if overlapping:
            raise ApiError(
                code,
                "token call rejected: another token call is in flight and concurrent calls are not allowed",
            )
        limit = settings.token_calls_per_minute
        if not self._state.token_windows.try_acquire("token", self._clock.now(), limit, 60.0):
            raise ApiError(
                code,
                f"token call rejected: more than {limit} token calls within 60 s; cache the token between calls",
            )

    @staticmethod
    def _required_string(request: Mapping[str, object], name: str, missing_code: int) -> str:
        value = request.get(name)
        if value is None or value == "":
            raise ApiError(missing_code, f"{name} is missing from the request body")
        if not isinstance(value, str):
            raise ApiError(15002, f"{name} must be a string, got {type(value).__name__}")
        return value

    def _issue_token(self, path: str, request: Mapping[str, object], settings: EmulatorSettings) -> ApiReply:
        if path == TOKEN_PATH:
            grant_type = request.get("grantType")
            if grant_type is None:
                raise ApiError(15002, "grantType is missing: send grantType 'app_secret'")
            if grant_type != "app_secret":
                raise ApiError(
                    15002, f"grantType {show_value(grant_type)} is not supported: send 'app_secret'"
                )
        app_id = self._required_string(request, "appId", 10001)
        app_secret = self._required_string(request, "appSecret", 10002)
        permanent_code = self._required_string(request, "permanentCode", 10012)
        credentials = settings.credentials
        if app_id != credentials.app_id or not _same_secret(app_secret, credentials.app_secret):
            raise ApiError(20006, f"appId {show_value(app_id)} is unknown or its appSecret is wrong")
        if not _same_secret(permanent_code, credentials.permanent_code):
            raise ApiError(20015, f"permanentCode is wrong for appId {show_value(app_id)}")

        style: TokenStyle = "header" if path == TOKEN_PATH else "legacy"
        now = self._clock.now()
        token = self._state.tokens.issue_or_reuse(style, app_id, now, settings.token_reuse_seconds)
        expires_in = max(0, round(settings.token_lifetime_seconds - token.age(now)))
        if style == "header":
            fields: dict[str, object] = {
                "accessToken": token.value,
                "expiresIn": expires_in,
                "appId": app_id,
                "ea": credentials.ea,
                # The vendor's example carries the open corp ID (FSCID_...) in this field.
                "openUserId": credentials.corp_id,
            }
        else:
            fields = {"corpAccessToken": token.value, "corpId": credentials.corp_id, "expiresIn": expires_in}
        return ApiReply(0, "OK", fields)

    # Authenticated API endpoints

    def _api_call(
        self,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: object | None,
        body_error: ApiError | None,
    ) -> ApiReply:
        settings = self._get_settings()
        self._check_trace_id(query, settings)
        request = self._require_object(body, body_error)
        # The header style is chosen by any of its headers, so that x-fs-* headers without an
        # authorization header get 20005 rather than a complaint about legacy body fields.
        if any(name in headers for name in ("authorization", "x-fs-ea", "x-fs-userid")):
            token = self._authenticate_header(headers, settings)
        else:
            token = self._authenticate_legacy(request, settings)
        if settings.enforce_rate_limit:
            self._check_rate_limit(token.app_id, path, settings)
        if path == PRESIGN_PATH:
            data: object = self._presign(request, settings)
        elif path in (QUERY_PATH, CUSTOM_QUERY_PATH):
            rules = QueryRules(
                settings.max_query_limit, settings.max_query_offset, settings.query_offset_error_code
            )
            query_data = self._data_object(request, "dataObjectApiName and search_query_info")
            data = self.objects.query(query_data, custom_endpoint=path == CUSTOM_QUERY_PATH, rules=rules)
        elif path == PREVIEW_PATH:
            data = self._preview_url(request, settings)
        else:
            data = self._large_file_url(request, settings)
        return ApiReply(0, "OK", {"data": data})

    def _valid_token(
        self, value: str, style: TokenStyle, unknown_code: int, settings: EmulatorSettings
    ) -> IssuedToken:
        name = "accessToken" if style == "header" else "corpAccessToken"
        source = TOKEN_PATH if style == "header" else LEGACY_TOKEN_PATH
        token = self._state.tokens.lookup(value, style)
        if token is None:
            raise ApiError(unknown_code, f"{name} is invalid: fetch a new one from {source}")
        if not token.is_valid(self._clock.now(), settings.token_lifetime_seconds):
            raise ApiError(20016, f"{name} has expired: fetch a new one from {source}")
        return token

    def _authenticate_header(self, headers: Mapping[str, str], settings: EmulatorSettings) -> IssuedToken:
        authorization = headers.get("authorization")
        if authorization is None:
            raise ApiError(20005, "authorization header is missing: send 'Bearer <accessToken>'")
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(20005, "authorization header must be 'Bearer <accessToken>'")
        token = self._valid_token(value.strip(), "header", 20005, settings)
        ea = headers.get("x-fs-ea")
        if ea != settings.credentials.ea:
            problem = (
                "is missing" if ea is None else f"{show_value(ea)} is not the enterprise account of this app"
            )
            raise ApiError(20017, f"x-fs-ea header {problem}")
        user_id = headers.get("x-fs-userid")
        if user_id not in settings.user_ids:
            problem = (
                "is missing" if user_id is None else f"{show_value(user_id)} is not an existing Employee ID"
            )
            raise ApiError(30027, f"x-fs-userid header {problem}")
        return token

    def _authenticate_legacy(self, request: Mapping[str, object], settings: EmulatorSettings) -> IssuedToken:
        value = self._required_string(request, "corpAccessToken", 10013)
        token = self._valid_token(value, "legacy", 11014, settings)
        corp_id = self._required_string(request, "corpId", 10014)
        if corp_id != settings.credentials.corp_id:
            raise ApiError(11015, f"corpId {show_value(corp_id)} does not match the app's enterprise")
        open_user_id = self._required_string(request, "currentOpenUserId", 10010)
        if open_user_id not in settings.open_user_ids:
            raise ApiError(20012, f"currentOpenUserId {show_value(open_user_id)} not found")
        return token

    def _check_rate_limit(self, app_id: str, path: str, settings: EmulatorSettings) -> None:
        limit = settings.rate_limit_calls
        window = settings.rate_limit_window_seconds
        if not self._state.rate_windows.try_acquire((app_id, path), self._clock.now(), limit, window):
            self._state.count_rate_limit_error()
            raise ApiError(
                settings.rate_limit_error_code,
                f"interface call limit exceeded on {path}: more than {limit} calls within {window:g} s",
            )

    # File service

    @staticmethod
    def _data_object(request: Mapping[str, object], fields: str) -> Mapping[str, object]:
        data = request.get("data")
        if not isinstance(data, dict):
            raise ApiError(15002, f"data must be an object with {fields}")
        return data

    def _presign(self, request: Mapping[str, object], settings: EmulatorSettings) -> object:
        if not settings.file_dedicated:
            raise ApiError(
                settings.not_file_dedicated_error_code,
                "getPresignedUrl is only available to file-dedicated enterprises, and this tenant is not one",
            )
        data = self._data_object(request, "paths and expire")
        paths = data.get("paths")
        if not isinstance(paths, list) or not paths:
            raise ApiError(15002, "data.paths must be a non-empty list of file paths")
        if len(paths) > settings.max_paths_per_call:
            raise ApiError(
                15002,
                f"data.paths has {len(paths)} items, more than the {settings.max_paths_per_call} allowed per call",
            )
        for index, path in enumerate(paths):
            if not isinstance(path, str) or not path:
                raise ApiError(
                    15002, f"data.paths[{index}] must be a non-empty string, got {show_value(path)}"
                )
        expire = data.get("expire")
        if isinstance(expire, bool) or not isinstance(expire, int):
            raise ApiError(15002, f"data.expire must be a whole number of hours, got {show_value(expire)}")
        if not 1 <= expire <= settings.max_expire_hours:
            raise ApiError(
                15002, f"data.expire must be between 1 and {settings.max_expire_hours} hours, got {expire}"
            )

        missing = [path for path in paths if not self._state.files.contains(path)]
        if missing and settings.unknown_path_mode == "error":
            raise ApiError(
                15002,
                f"{len(missing)} of {len(paths)} paths not found, the first is {show_value(missing[0])}",
            )
        expires = int(self._clock.now() + expire * 3600)
        absent = set(missing)
        entries = [
            {"path": path, "url": self.signed_url(path, expires)} for path in paths if path not in absent
        ]
        if settings.presign_response_shape == "map":
            return {entry["path"]: entry["url"] for entry in entries}
        if settings.presign_response_shape == "nested":
            return {"data": entries}
        return entries

    def _large_file_url(self, request: Mapping[str, object], settings: EmulatorSettings) -> dict[str, str]:
        data = self._data_object(request, "a path")
        path = data.get("path")
        if not isinstance(path, str) or not path:
            raise ApiError(15002, f"data.path must be a non-empty string, got {show_value(path)}")
        if not self._state.files.contains(path):
            raise ApiError(15002, f"path {show_value(path)} not found")
        expires = int(self._clock.now() + settings.large_file_url_seconds)
        return {"url": self.signed_url(path, expires)}

    def _preview_url(self, request: Mapping[str, object], settings: EmulatorSettings) -> dict[str, str]:
        data = self._data_object(request, "fileInfo and expireTime")
        info = data.get("fileInfo")
        if not isinstance(info, dict):
            raise ApiError(15002, "data.fileInfo must be an object with path, filename and extension")
        values = {}
        for name in ("path", "filename", "extension"):
            value = info.get(name)
            if not isinstance(value, str) or not value:
                raise ApiError(
                    15002, f"data.fileInfo.{name} must be a non-empty string, got {show_value(value)}"
                )
            values[name] = value
        path, filename, extension = values["path"], values["filename"], values["extension"]
        if not path.startswith(PREVIEW_PREFIXES) or len(path) > PREVIEW_MAX_PATH:
            raise ApiError(
                15002,
                f"data.fileInfo.path {show_value(path)} must start with N_, TN_, C_ or TC_ and have at most "
                f"{PREVIEW_MAX_PATH} characters",
            )
        if len(filename) > PREVIEW_MAX_FILENAME:
            raise ApiError(15002, f"data.fileInfo.filename has more than {PREVIEW_MAX_FILENAME} characters")
        if extension not in PREVIEW_EXTENSIONS:
            raise ApiError(
                15002,
                f"data.fileInfo.extension {show_value(extension)} cannot be previewed (no dot, lower case)",
            )
        seconds = data.get("expireTime")
        low, high = settings.min_preview_seconds, settings.max_preview_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
            raise ApiError(
                15002,
                f"data.expireTime must be whole seconds from {low} to {high}, got {show_value(seconds)}",
            )
        acceleration = data.get("globalAcceleration", False)
        if not isinstance(acceleration, bool):
            raise ApiError(
                15002, f"data.globalAcceleration must be a boolean, got {show_value(acceleration)}"
            )
        if not self._state.files.contains(path):
            raise ApiError(15002, f"path {show_value(path)} not found")
        return {"url": self.signed_url(path, int(self._clock.now() + seconds))}

    def signed_url(self, path: str, expires: int) -> str:
        """
        Return the emulator's download URL for a path, valid until ``expires``.

        :param path: the npath.
        :param expires: expiry in epoch seconds.
        """
        signature = self._state.files.sign(path, expires)
        base = f"{self._get_url_base()}{DOWNLOAD_PREFIX}{quote(path, safe='')}"
        return f"{base}?Expires={expires}&Signature={signature}"

    def check_download(self, raw_path: str, query: Mapping[str, str]) -> tuple[int, str, bytes | None]:
        """
        Check a download URL; return the HTTP status, a reason, and the file content when the status is 200.

        :param raw_path: URL path starting with :data:`DOWNLOAD_PREFIX`, still percent-encoded.
        :param query: query parameters.
        """
        path = unquote(raw_path[len(DOWNLOAD_PREFIX) :])
        expires_text = query.get("Expires", "")
        signature = query.get("Signature", "")
        if not expires_text or not signature:
            return 403, "download URL is missing its Expires or Signature parameter", None
        try:
            expires = int(expires_text)
        except ValueError:
            return 403, f"Expires {show_value(expires_text)} is not an integer", None
        if not self._state.files.verify(path, expires, signature):
            return 403, "download URL signature does not match", None
        if expires < self._clock.now():
            return 403, f"download URL expired at {expires}", None
        content = self._state.files.get(path)
        if content is None:
            return 404, f"file {show_value(path)} not found", None
        return 200, "OK", content
