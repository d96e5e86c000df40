"""
Collect every secret the emulator hands out and every text the test suite produces, to check them later.

The pytest plugin in ``conftest.py`` records each test's captured output and log records, and each
``FxiaokeError`` message as it is built. The secrets are the demo app secret and permanent code, every
token the emulator issues and every download-URL signature it makes. ``test_zz_secret_scan.py`` runs
last and checks that no text contains a secret.
"""

from __future__ import annotations

import threading
from typing import Any

from fxiaoke_provider.exceptions import FxiaokeError
from fxiaoke_provider.testing import DEMO_CREDENTIALS
from fxiaoke_provider.testing.state import FileStore, TokenRegistry

_lock = threading.Lock()
#: Values that must never appear in output.
SECRETS: set[str] = {DEMO_CREDENTIALS.app_secret, DEMO_CREDENTIALS.permanent_code}
#: Texts produced by the suite: captured output, log records and error messages.
TEXTS: list[str] = []


def add_secret(value: str) -> None:
    """Register a value that must not appear in any output."""
    with _lock:
        SECRETS.add(value)


def add_text(text: str) -> None:
    """Register a text produced by the suite, such as a subprocess's output."""
    if text:
        with _lock:
            TEXTS.append(text)


def install() -> None:
    """Wrap the emulator's token and signature factories and the provider's error constructor."""
    issue = TokenRegistry.issue_or_reuse
    sign = FileStore.sign
    error_init = FxiaokeError.__init__

    def recording_issue(self: TokenRegistry, *args: Any, **kwargs: Any) -> Any:
        token = issue(self, *args, **kwargs)
        add_secret(token.value)
        return token

    def recording_sign(self: FileStore, *args: Any, **kwargs: Any) -> str:
        signature = sign(self, *args, **kwargs)
        add_secret(signature)
        return signature

    def recording_init(self: FxiaokeError, *args: object) -> None:
        error_init(self, *args)
        add_text(str(self))

    TokenRegistry.issue_or_reuse = recording_issue  # type: ignore[method-assign]
    FileStore.sign = recording_sign  # type: ignore[method-assign]
    FxiaokeError.__init__ = recording_init  # type: ignore[method-assign]
