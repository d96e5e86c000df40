"""
Stores that keep access tokens between calls, processes and tasks.

A token is valid for 7200 s and the token endpoint allows only 10 calls a minute and never two at once,
so every process that talks to one tenant should share one token. :class:`FileTokenStore` shares it
between the processes of one host through an owner-only file guarded by a lock; :class:`MemoryTokenStore`
shares it between the threads of one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

#: Seconds before a token's expiry at which it is replaced. The vendor returns the same token for
#: 6600 s after issue and a new one from then until 7200 s, so a 600 s margin refreshes at 6600 s.
REFRESH_MARGIN_SECONDS = 600.0


@dataclass(frozen=True)
class Token:
    """An access token with the tenant identifier that goes with it; the value is left out of the repr."""

    value: str = field(repr=False)
    #: ``ea`` (header style) or ``corpId`` (legacy style).
    tenant: str
    #: Epoch seconds when this process received the token.
    obtained_at: float
    #: Epoch seconds when the server stops accepting the token.
    expires_at: float

    def is_fresh(self, now: float, margin: float = REFRESH_MARGIN_SECONDS) -> bool:
        """
        Tell whether the token can still be used without fetching a new one.

        :param now: the current epoch time.
        :param margin: seconds before expiry from which the token counts as stale.
        """
        return now < self.expires_at - margin


class TokenStore(ABC):
    """A place where tokens are kept under a key, with a lock that serialises token fetches for that key."""

    @abstractmethod
    def get(self, key: str) -> Token | None:
        """
        Read the token stored under a key.

        :param key: the store key of one tenant and app.
        """

    @abstractmethod
    def put(self, key: str, token: Token) -> None:
        """
        Store a token under a key, replacing any previous one.

        :param key: the store key of one tenant and app.
        :param token: the token to store.
        """

    @abstractmethod
    def discard(self, key: str, value: str) -> None:
        """
        Drop the token stored under a key if its value is ``value``; a newer token is kept.

        :param key: the store key of one tenant and app.
        :param value: the rejected token value.
        """

    @abstractmethod
    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """
        Return a lock held while one caller fetches a token for the key, so the others wait and reuse it.

        :param key: the store key of one tenant and app.
        """


class MemoryTokenStore(TokenStore):
    """Tokens shared by every client of this process."""

    _tokens: dict[str, Token] = {}
    _locks: dict[str, threading.Lock] = {}
    _guard = threading.Lock()

    def get(self, key: str) -> Token | None:
        """Read the token stored under a key."""
        return self._tokens.get(key)

    def put(self, key: str, token: Token) -> None:
        """Store a token under a key."""
        self._tokens[key] = token

    def discard(self, key: str, value: str) -> None:
        """Drop the token stored under a key if its value is ``value``."""
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.value == value:
                del self._tokens[key]

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """Return the process-wide lock of a key."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @classmethod
    def clear(cls) -> None:
        """Forget every token of this process."""
        with cls._guard:
            cls._tokens.clear()


def default_cache_dir() -> Path:
    """Return the per-user folder for shared state: ``$XDG_CACHE_HOME`` or ``~/.cache``, then our name."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fxiaoke-airflow-provider"


def prepare_private_dir(path: Path) -> Path:
    """
    Create a folder readable only by its owner, or check that an existing one is.

    :param path: the folder.
    :raises PermissionError: when the folder belongs to another user or others may write to it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(
            f"Cache folder {str(path)!r} belongs to another user; set extra.cache_dir to your own"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f"Cache folder {str(path)!r} is writable by other users; run chmod 700 on it or set extra.cache_dir"
        )
    return path


class FileTokenStore(TokenStore):
    """
    Tokens shared by every process of this host through owner-only files.

    Each key has a JSON file (mode 0600) and a lock file beside it. The lock comes from ``filelock``,
    which uses ``fcntl.flock`` on POSIX, so a process that dies while holding it releases it.

    :param directory: the folder for the files; created with mode 0700 when missing.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = prepare_private_dir(Path(directory) if directory else default_cache_dir())
        self._locks: dict[str, FileLock] = {}
        self._guard = threading.Lock()
        # The last token read per key, with the file's identity (inode, size, change and modification
        # times in ns) at that read. Every API call reads the token, and a stat costs far less than
        # reading and parsing the file.
        self._read_cache: dict[str, tuple[tuple[int, int, int, int], Token]] = {}

    def _path(self, key: str) -> Path:
        return self.directory / f"token-{key}.json"

    def get(self, key: str) -> Token | None:
        """Read the token stored under a key; a missing or unreadable file means no token."""
        path = self._path(key)
        try:
            info = os.stat(path)
        except OSError:
            return None
        identity = (info.st_ino, info.st_size, info.st_ctime_ns, info.st_mtime_ns)
        cached = self._read_cache.get(key)
        if cached is not None and cached[0] == identity:
            return cached[1]
        try:
            token = Token(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        self._read_cache[key] = (identity, token)
        return token

    def put(self, key: str, token: Token) -> None:
        """Write a token under a key atomically, readable only by the owner."""
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".token-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(asdict(token), stream)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def discard(self, key: str, value: str) -> None:
        """Delete the token file of a key if it still contains ``value``."""
        with self.lock(key):
            current = self.get(key)
            if current is not None and current.value == value:
                with contextlib.suppress(FileNotFoundError):
                    self._path(key).unlink()

    def lock(self, key: str) -> contextlib.AbstractContextManager[object]:
        """Return the cross-process lock of a key."""
        with self._guard:
            if key not in self._locks:
                self._locks[key] = FileLock(str(self.directory / f"token-{key}.lock"), mode=0o600)
            return self._locks[key]


def store_key(base_url: str, app_id: str, auth_style: str, app_secret: str, permanent_code: str) -> str:
    """
    Build the store key of one app's authorization in one tenant.

    One app can be authorized by several tenants, each with its own permanent code, so the code takes
    part in the key; so does the secret, so that a changed secret is checked by a fresh token call.
    Only a hash goes into file names.

    :param base_url: the API base URL.
    :param app_id: the app ID.
    :param auth_style: ``header`` or ``legacy``; the two styles get different tokens.
    :param app_secret: the app secret.
    :param permanent_code: the tenant's permanent code.
    """
    material = "\n".join((base_url, app_id, auth_style, app_secret, permanent_code))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
