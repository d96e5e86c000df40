"""
Registry of the Fxiaoke Open API's global error codes.

The gateway returns HTTP 200 for every business, auth and quota failure and reports it in the body's
``errorCode``. The vendor states that ``errorMessage`` may change and must not drive logic, so every
decision in this package branches on the code alone. Meanings follow the vendor's global return-code
page (``https://developer.fxiaoke.com/openapi_v2/start/guide/codes.html``), paraphrased.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorClass(enum.Enum):
    """Reaction a client should take to an error code."""

    #: A passing fault: back off and send again.
    TRANSIENT = "transient"
    #: A rate limit: back off long enough for the limit's window to move, then send again.
    RATE_LIMITED = "rate_limited"
    #: The access token is missing, expired or rejected: fetch a new token once, then send again.
    TOKEN = "token"
    #: Retrying cannot help: fail at once.
    PERMANENT = "permanent"


@dataclass(frozen=True)
class ErrorCode:
    """One entry of the registry: the code, what it means, how to react and what the user can do."""

    code: int
    meaning: str
    error_class: ErrorClass
    advice: str


_CHECK_CONNECTION = (
    "Check the fxiaoke connection's fields against the app's page in the Fxiaoke developer console."
)
_CONTACT_ADMIN = "Ask the tenant's Fxiaoke administrator to grant the app the missing permission."

_ENTRIES: tuple[ErrorCode, ...] = (
    ErrorCode(-2, "system error", ErrorClass.TRANSIENT, "Retry later; report the traceId if it persists."),
    ErrorCode(-1, "system busy", ErrorClass.TRANSIENT, "Retry later."),
    ErrorCode(10001, "appId missing", ErrorClass.PERMANENT, "Set the connection's login to the app ID."),
    ErrorCode(10002, "appSecret missing", ErrorClass.PERMANENT, "Set the connection's password."),
    ErrorCode(10003, "appAccessToken missing", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(
        10006, "unknown request path or scope missing", ErrorClass.PERMANENT, "Check the endpoint path."
    ),
    ErrorCode(10010, "openUserId missing", ErrorClass.PERMANENT, "Set extra.open_user_id."),
    ErrorCode(10012, "permanentCode missing", ErrorClass.PERMANENT, "Set extra.permanent_code."),
    ErrorCode(
        10013,
        "corpAccessToken missing, or query offset beyond 10000",
        ErrorClass.PERMANENT,
        "For queries, page by _id instead of offset; otherwise check the connection.",
    ),
    ErrorCode(10014, "corpId missing", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(11001, "appId invalid", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(11002, "appSecret invalid", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(11003, "appAccessToken invalid", ErrorClass.TOKEN, _CHECK_CONNECTION),
    ErrorCode(11008, "openUserId invalid", ErrorClass.PERMANENT, "Check extra.open_user_id."),
    ErrorCode(11013, "permanentCode invalid", ErrorClass.PERMANENT, "Check extra.permanent_code."),
    ErrorCode(11014, "corpAccessToken invalid", ErrorClass.TOKEN, _CHECK_CONNECTION),
    ErrorCode(11015, "corpId invalid", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(12002, "login state error", ErrorClass.TOKEN, _CHECK_CONNECTION),
    ErrorCode(12004, "POST body empty", ErrorClass.PERMANENT, "Send a JSON body with a data object."),
    ErrorCode(
        14001,
        "interface call limit exceeded",
        ErrorClass.RATE_LIMITED,
        "Lower the call rate: the Open API allows 100 calls per 20 s per interface.",
    ),
    ErrorCode(15002, "parameter invalid", ErrorClass.PERMANENT, "Check the request's data fields."),
    ErrorCode(15003, "app has no access permission", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(20005, "accessToken absent or expired", ErrorClass.TOKEN, _CHECK_CONNECTION),
    ErrorCode(
        20006, "appId or appSecret wrong", ErrorClass.PERMANENT, "Check the connection's login and password."
    ),
    ErrorCode(20012, "openUserId not found", ErrorClass.PERMANENT, "Check extra.open_user_id."),
    ErrorCode(20014, "app may not read this employee's data", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(20015, "permanent code wrong", ErrorClass.PERMANENT, "Check extra.permanent_code."),
    ErrorCode(20016, "corpAccessToken absent or expired", ErrorClass.TOKEN, _CHECK_CONNECTION),
    ErrorCode(20017, "corpId not found", ErrorClass.PERMANENT, _CHECK_CONNECTION),
    ErrorCode(20020, "app may not read this enterprise's data", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(20021, "app is disabled in this enterprise", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(20022, "enterprise has not authorized this app", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(20023, "app may not access this department", ErrorClass.PERMANENT, _CONTACT_ADMIN),
    ErrorCode(
        30002,
        "daily call quota exhausted",
        ErrorClass.PERMANENT,
        "Wait for the quota to reset at 00:00 (China time) or buy another Open API resource pack.",
    ),
    ErrorCode(
        30003,
        "tenant has bought no Open API quota",
        ErrorClass.PERMANENT,
        "Order an Open API resource pack for the tenant.",
    ),
    ErrorCode(30004, "per-second frequency limit exceeded", ErrorClass.RATE_LIMITED, "Lower the call rate."),
    ErrorCode(
        30027, "employee does not exist", ErrorClass.PERMANENT, "Check extra.user_id (the Employee ID)."
    ),
    ErrorCode(32000, "parameter error", ErrorClass.PERMANENT, "Check the request's data fields."),
    ErrorCode(50009, "service exception, for example a timeout", ErrorClass.TRANSIENT, "Retry later."),
)

#: Every known code, by number.
ERROR_CODES: dict[int, ErrorCode] = {entry.code: entry for entry in _ENTRIES}

#: Codes that mean "retry the whole run later", not "retry this call now".
QUOTA_CODES = frozenset({30002, 30003})


def lookup(code: int) -> ErrorCode:
    """
    Look up an error code; an unknown non-zero code is treated as permanent.

    :param code: the ``errorCode`` of a response.
    """
    entry = ERROR_CODES.get(code)
    if entry is not None:
        return entry
    return ErrorCode(
        code, "unknown error code", ErrorClass.PERMANENT, "Report the traceId to Fxiaoke support."
    )
