"""Preview links of CRM files through ``generatorPreviewUrl``, with the vendor's checks made before the call."""

from __future__ import annotations

from collections.abc import Mapping

from fxiaoke_provider.api.client import FxiaokeClient, response_trace_id
from fxiaoke_provider.exceptions import FxiaokeResponseError

PREVIEW_ENDPOINT = "/cgi/crm/v2/generatorPreviewUrl"
#: Path prefixes the preview accepts: permanent and temporary files and their CDN forms.
PREVIEW_PREFIXES = ("N_", "TN_", "C_", "TC_")
#: Longest path and file name the preview accepts.
MAX_PREVIEW_PATH = 48
MAX_PREVIEW_FILENAME = 120
#: Shortest and longest link lifetime, in seconds (7 days).
MIN_PREVIEW_SECONDS = 60
MAX_PREVIEW_SECONDS = 604_800
#: Extensions the preview can show, without the dot.
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


def preview_request(
    path: str, filename: str, *, extension: str | None, expire_seconds: int, global_acceleration: bool
) -> dict[str, object]:
    """
    Check a preview request and return its ``data``.

    :param path: the npath, starting with ``N_``, ``TN_``, ``C_`` or ``TC_``, at most 48 characters.
    :param filename: the name shown, at most 120 characters.
    :param extension: the file type without the dot; None takes it from ``filename``.
    :param expire_seconds: the link's lifetime, 60 to 604800 seconds.
    :param global_acceleration: serve the link through the global acceleration network.
    :raises ValueError: naming the argument that breaks a rule.
    """
    if not isinstance(path, str) or not path.startswith(PREVIEW_PREFIXES) or len(path) > MAX_PREVIEW_PATH:
        raise ValueError(
            f"path={path!r} cannot be previewed: it must start with N_, TN_, C_ or TC_ and have at most "
            f"{MAX_PREVIEW_PATH} characters (large ALIOSS_ files have no preview)"
        )
    if not isinstance(filename, str) or not filename.strip() or len(filename) > MAX_PREVIEW_FILENAME:
        raise ValueError(
            f"filename={filename!r} must be a non-blank name of at most {MAX_PREVIEW_FILENAME} characters"
        )
    if extension is None:
        extension = filename.rpartition(".")[2] if "." in filename else ""
    extension = extension.lower().removeprefix(".")
    if extension not in PREVIEW_EXTENSIONS:
        raise ValueError(
            f"extension={extension!r} cannot be previewed; use one of {', '.join(sorted(PREVIEW_EXTENSIONS))}"
        )
    if (
        isinstance(expire_seconds, bool)
        or not isinstance(expire_seconds, int)
        or not MIN_PREVIEW_SECONDS <= expire_seconds <= MAX_PREVIEW_SECONDS
    ):
        raise ValueError(
            f"expire_seconds={expire_seconds!r} must be whole seconds from {MIN_PREVIEW_SECONDS} to {MAX_PREVIEW_SECONDS}"
        )
    if not isinstance(global_acceleration, bool):
        raise ValueError(f"global_acceleration={global_acceleration!r} must be True or False")
    return {
        "fileInfo": {"path": path, "filename": filename, "extension": extension},
        "expireTime": expire_seconds,
        "globalAcceleration": global_acceleration,
    }


def get_preview_url(
    client: FxiaokeClient,
    path: str,
    filename: str,
    *,
    extension: str | None = None,
    expire_seconds: int = 3600,
    global_acceleration: bool = False,
) -> str:
    """
    Get a link that shows a file in the browser; the arguments are those of :func:`preview_request`.

    The vendor documents no ``data`` for the response. The link is read from ``data.url``, or from
    ``data`` itself when it is a string, as for the large-file download link.

    :param client: the API client.
    :raises FxiaokeResponseError: when the response carries no http(s) link.
    """
    data = preview_request(
        path,
        filename,
        extension=extension,
        expire_seconds=expire_seconds,
        global_acceleration=global_acceleration,
    )
    body = client.call(PREVIEW_ENDPOINT, data)
    answer = body.get("data")
    url = answer.get("url") if isinstance(answer, Mapping) else answer
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise FxiaokeResponseError(
            PREVIEW_ENDPOINT, response_trace_id(body), "data.url is missing or not an http(s) URL"
        )
    return url
