"""Tenant credentials and every behaviour switch of the emulator, with defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PresignResponseShape = Literal["list", "map", "nested"]
UnknownPathMode = Literal["error", "omit"]


@dataclass(frozen=True)
class TenantCredentials:
    """
    Identity of the one tenant and self-built app that the emulator serves.

    The secret fields are left out of ``repr`` so that they do not end up in test output.
    """

    #: App ID, the connection's login.
    app_id: str
    #: App secret, the connection's password.
    app_secret: str = field(repr=False)
    #: Permanent authorization code, the connection's ``permanent_code`` extra.
    permanent_code: str = field(repr=False)
    #: Enterprise account, sent in the ``x-fs-ea`` header and returned as ``ea`` by ``/oauth2.0/token``.
    ea: str
    #: Open corp ID, the legacy ``corpId`` body field.
    corp_id: str
    #: Employee ID of the acting user, the ``x-fs-userid`` header.
    user_id: str
    #: Open user ID of the acting user, the legacy ``currentOpenUserId`` body field.
    open_user_id: str


#: Fake credentials of the demo tenant. The secrets are longer than 5 characters, so Airflow masks them in logs.
DEMO_CREDENTIALS = TenantCredentials(
    app_id="FSAID_demo0001",
    app_secret="demo-app-secret-not-real-0001",
    permanent_code="demo-permanent-code-not-real-0001",
    ea="fktest188",
    corp_id="FSCID_demo0001",
    user_id="1000",
    open_user_id="FSUID_DE700000000000000000000000000001",
)


@dataclass
class EmulatorSettings:
    """
    Behaviour switches of :class:`~fxiaoke_provider.testing.FxiaokeEmulator`.

    The emulator reads these fields on every request, so a test may change them while the server runs.
    Fields marked "assumption" cover behaviour that the vendor does not document; their defaults are
    a best guess and each of them can be changed.
    """

    #: The tenant and app that the token endpoints accept.
    credentials: TenantCredentials = DEMO_CREDENTIALS
    #: Employee IDs accepted in ``x-fs-userid``. Left empty at construction, it becomes ``{credentials.user_id}``.
    user_ids: set[str] = field(default_factory=set)
    #: Open user IDs accepted in ``currentOpenUserId``. Left empty at construction, it becomes
    #: ``{credentials.open_user_id}``.
    open_user_ids: set[str] = field(default_factory=set)

    #: Seconds a token stays valid after it is issued (vendor: 7200).
    token_lifetime_seconds: float = 7200.0
    #: Seconds after issue during which a token call returns the same token (vendor: 6600, or 6650 on one page).
    token_reuse_seconds: float = 6600.0
    #: Token calls allowed per rolling 60 s, counting calls that passed this check (vendor: 10).
    token_calls_per_minute: int = 10
    #: Assumption: the vendor documents no code for breaking the token-call limits.
    token_limit_error_code: int = 14001
    #: Real seconds a token call stays in flight before the response, to let tests provoke overlap.
    token_latency_seconds: float = 0.0
    #: Enforce the token-call limits: the calls per minute and the ban on concurrent calls.
    enforce_token_limits: bool = True

    #: Reject a request whose ``thirdTraceId`` query parameter is missing or not a UUID version 4.
    require_trace_id: bool = True
    #: Reject a ``thirdTraceId`` that an earlier request already used (only while ``require_trace_id`` is on).
    reject_duplicate_trace_id: bool = True
    #: Assumption: the vendor documents neither whether nor with which code a bad ``thirdTraceId`` is rejected.
    trace_id_error_code: int = 15002
    #: How many recent ``thirdTraceId`` values the duplicate check remembers.
    trace_id_memory: int = 1_000_000

    #: Enforce the per-interface limit on authenticated API calls.
    enforce_rate_limit: bool = True
    #: Calls allowed per app and path within one sliding window (vendor: 100).
    rate_limit_calls: int = 100
    #: Length of the sliding window, in seconds of emulator time (vendor: 20).
    rate_limit_window_seconds: float = 20.0
    #: Assumption: the vendor does not document whether the per-interface limit returns 14001 or 30004.
    rate_limit_error_code: int = 14001

    #: Whether the tenant is a file-dedicated enterprise, which ``getPresignedUrl`` requires.
    file_dedicated: bool = True
    #: Assumption: the vendor documents no code for a tenant that is not file-dedicated.
    not_file_dedicated_error_code: int = 15003
    #: Assumption: the vendor documents no maximum number of paths per ``getPresignedUrl`` call.
    max_paths_per_call: int = 100
    #: Assumption: the vendor documents no maximum ``expire``; 168 h (7 days) matches its preview-link cap.
    max_expire_hours: int = 168
    #: What ``getPresignedUrl`` does with a path that is not in the file store: fail the call with 15002
    #: ("error") or leave the path out of the response ("omit").
    unknown_path_mode: UnknownPathMode = "error"
    #: Assumption: the vendor documents no ``data`` for ``getPresignedUrl``. "list" returns
    #: ``[{"path", "url"}]`` in request order, "map" returns ``{path: url}``, "nested" returns ``{"data": [...]}``.
    presign_response_shape: PresignResponseShape = "list"
    #: Lifetime of a ``generateDownloadSignatureUrlByAuth`` URL, in seconds (vendor: 3600).
    large_file_url_seconds: int = 3600

    #: Largest ``search_query_info.limit`` of an object query (vendor: 100).
    max_query_limit: int = 100
    #: Largest ``search_query_info.offset`` of an object query (vendor: 10000).
    max_query_offset: int = 10_000
    #: Code for an offset above ``max_query_offset`` (vendor: 10013, with "offset out of range 10000").
    query_offset_error_code: int = 10013
    #: Shortest and longest ``expireTime`` of a preview link, in seconds (vendor: 60 and 604800).
    min_preview_seconds: int = 60
    max_preview_seconds: int = 604_800

    #: Seed of the random generator behind fault probabilities; it is read at start and by ``reset()``.
    random_seed: int = 0
    #: Maximum number of entries in the request log; it is read at start and by ``reset()``.
    request_log_size: int = 100_000
    #: Largest accepted request body, in bytes; a larger one gets HTTP 413.
    max_body_bytes: int = 16 * 1024 * 1024
    #: Size of each write when a file download is sent, in bytes.
    download_chunk_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not self.user_ids:
            self.user_ids = {self.credentials.user_id}
        if not self.open_user_ids:
            self.open_user_ids = {self.credentials.open_user_id}
