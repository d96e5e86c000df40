"""JSON framing of every response (the errorCode envelope and the traceId) and parsing of request bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Paraphrased meanings of the codes the emulator sends, returned as ``errorDescription``.
_DESCRIPTIONS: dict[int, str] = {
    -2: "system error",
    -1: "system busy",
    0: "success",
    10001: "appId missing",
    10002: "appSecret missing",
    10006: "unknown request path",
    10010: "openUserId missing",
    10012: "permanentCode missing",
    10013: "corpAccessToken missing",
    10014: "corpId missing",
    11014: "corpAccessToken invalid",
    11015: "corpId invalid",
    12004: "POST body empty",
    14001: "interface call limit exceeded",
    15002: "parameter invalid",
    15003: "app has no access permission",
    20005: "accessToken absent or expired",
    20006: "appId or appSecret wrong",
    20012: "openUserId not found",
    20015: "permanent code wrong",
    20016: "corpAccessToken absent or expired",
    20017: "corpId not found",
    30002: "daily call quota exhausted",
    30003: "tenant has bought no Open API quota",
    30004: "per-second frequency limit exceeded",
    30027: "employee does not exist",
    50009: "service exception",
}


class ApiError(Exception):
    """A request that the Open API rejects with a non-zero ``errorCode``."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass
class ApiReply:
    """The parts of a JSON response that vary. :func:`build_envelope` adds the rest."""

    error_code: int
    error_message: str
    #: Top-level fields next to the envelope, e.g. ``accessToken`` or ``data``.
    fields: dict[str, object] = field(default_factory=dict)
    #: User part of the ``traceId``: the acting Employee ID, or "0" for token calls and the legacy style.
    trace_user: str = "0"


def describe_error_code(code: int) -> str:
    """
    Return the ``errorDescription`` for a code.

    :param code: the ``errorCode``.
    """
    return _DESCRIPTIONS.get(code, "error")


def build_envelope(reply: ApiReply, ea: str, trace_hex: str) -> dict[str, object]:
    """
    Build the JSON object of a response: ``errorCode``, ``errorMessage``, ``errorDescription``, ``traceId``, fields.

    :param reply: the outcome of the request.
    :param ea: enterprise account, the middle part of the ``traceId``.
    :param trace_hex: 16 hex digits that end the ``traceId``.
    """
    envelope: dict[str, object] = {
        "errorCode": reply.error_code,
        "errorMessage": reply.error_message,
        "errorDescription": describe_error_code(reply.error_code),
        "traceId": f"E-O.{ea}.{reply.trace_user}-{trace_hex}",
    }
    envelope.update(reply.fields)
    return envelope


def parse_json_body(raw: bytes) -> tuple[object | None, ApiError | None]:
    """
    Parse a request body and return the value and None, or None and the error to respond with.

    :param raw: the request body as received.
    """
    if not raw.strip():
        return None, ApiError(12004, "request body is empty: send a JSON object")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, ApiError(15002, f"request body is not valid JSON: {exc}")
    if not isinstance(value, dict):
        return value, ApiError(
            15002, f"request body must be a JSON object, got a JSON {type(value).__name__}"
        )
    return value, None


def show_value(value: object, limit: int = 80) -> str:
    """
    Return ``repr(value)`` cut to ``limit`` characters, for error messages.

    :param value: the value to show.
    :param limit: maximum length of the result.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
