"""Adjustable wall clock that lets tests move the emulator's time forward without sleeping."""

from __future__ import annotations

import math
import threading
import time


class EmulatorClock:
    """
    Wall clock with an offset that only moves forward.

    Token lifetimes, rate-limit windows and presigned-URL expiry all read this clock, so a test can
    jump past a deadline with :meth:`advance` instead of waiting for it.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds added to the system clock so far."""
        with self._lock:
            return self._offset

    def now(self) -> float:
        """Return the emulator's time in epoch seconds: the system time plus the offset."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """
        Move the clock forward and return the new time.

        :param seconds: how far to move, in seconds; must not be negative.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"cannot move the emulator clock by seconds={seconds!r}; pass a finite number >= 0"
            )
        with self._lock:
            self._offset += seconds
            return time.time() + self._offset
