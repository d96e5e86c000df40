"""Tests of the client-side rate limiter: damaged or future state, capped waits and logged waits."""

from __future__ import annotations

import logging
import math
from array import array
from pathlib import Path
from typing import Any

import pytest

from fxiaoke_provider.api.rate_limit import WINDOW_SLACK, RateLimiter
from fxiaoke_provider.testing import DEMO_PATHS, PRESIGN_PATH, FxiaokeEmulator
from tests.conftest import make_client

ENDPOINT = "/cgi/crm/v2/data/query"
WINDOW = 20.0
#: The window the limiter keeps, with its slack.
SLACKED = WINDOW * (1 + WINDOW_SLACK)
NOW = 1_800_000_000.0


class FakeTime:
    """A clock that only the fake sleep moves, so that no test waits."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        # time.sleep raises ValueError for NaN and OverflowError for huge values; so does this.
        if math.isnan(seconds):
            raise ValueError("Invalid value NaN (not a number)")
        if seconds > 1e9:
            raise OverflowError("timestamp too large to convert to C _PyTime_t")
        self.sleeps.append(seconds)
        self.now += seconds


class ListLogger:
    """Records the lines logged, formatted, with their level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(("info", msg % args))

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(("warning", msg % args))


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def _limiter(fake: FakeTime, directory: Path | None, calls: int = 3, **kwargs: Any) -> RateLimiter:
    return RateLimiter(
        calls, WINDOW, key="tenant", directory=directory, clock=fake.clock, sleep=fake.sleep, **kwargs
    )


def _state_file(limiter: RateLimiter, directory: Path) -> Path:
    limiter.acquire(ENDPOINT)
    (path,) = directory.glob("rate-*.f64")
    return path


def _stamps(path: Path) -> list[float]:
    stamps = array("d")
    stamps.frombytes(path.read_bytes())
    return list(stamps)


class TestFutureStamps:
    def test_stamps_beyond_one_window_dropped(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        # The window was full when the clock stepped back an hour.
        path.write_bytes(array("d", [NOW + 3600.0] * 3).tobytes())

        assert limiter.try_acquire(ENDPOINT) == 0.0
        assert _stamps(path) == [NOW]

    def test_stamps_within_one_window_count_as_now(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(array("d", [NOW + 15.0] * 3).tobytes())

        limiter.acquire(ENDPOINT)

        assert fake.sleeps == [pytest.approx(SLACKED)]
        assert fake.now == pytest.approx(NOW + SLACKED)

    def test_future_stamp_not_moved_later_by_each_read(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(array("d", [NOW + 15.0] * 3).tobytes())

        first = limiter.try_acquire(ENDPOINT)
        fake.now += 10.0
        second = limiter.try_acquire(ENDPOINT)

        assert (first, second) == (pytest.approx(SLACKED), pytest.approx(SLACKED - 10.0))


class TestDamagedState:
    @pytest.mark.parametrize(
        "stamps",
        [
            pytest.param([math.nan] * 3, id="nan"),
            pytest.param([math.inf] * 3, id="inf"),
            pytest.param([-math.inf, math.nan, math.inf], id="mixed"),
            pytest.param([1e300] * 3, id="huge"),
        ],
    )
    def test_impossible_stamps_dropped(
        self, fake: FakeTime, tmp_path: Path, stamps: list[float], caplog: pytest.LogCaptureFixture
    ) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(array("d", stamps).tobytes())

        with caplog.at_level(logging.WARNING, logger="fxiaoke_provider.api.rate_limit"):
            limiter.acquire(ENDPOINT)

        assert fake.sleeps == []
        assert _stamps(path) == [NOW]
        assert f"impossible time stamp(s) from the rate limit state file {path}" in caplog.text

    def test_random_bytes(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(b"\xff" * 24 + b"\x7f\xf0" + b"\x00" * 6 + b"\x01\x02\x03")

        for _ in range(3):
            limiter.acquire(ENDPOINT)

        assert fake.sleeps == []

    def test_unreadable_file_counts_as_empty(self, fake: FakeTime, tmp_path: Path) -> None:
        log = ListLogger()
        limiter = _limiter(fake, tmp_path, calls=2, logger=log)
        path = _state_file(limiter, tmp_path)
        path.unlink()
        # A folder in the file's place cannot be read or written as a file.
        path.mkdir()

        for _ in range(3):
            limiter.acquire(ENDPOINT)

        warnings = [line for level, line in log.lines if level == "warning"]
        assert len(warnings) == 2
        assert warnings[0].startswith(f"Cannot read the rate limit state file {path} (")
        assert warnings[0].endswith("); counting it as empty")
        assert warnings[1].startswith(f"Cannot write the rate limit state file {path} (")
        # The process keeps pacing its own calls: the third call of two per window waited.
        assert fake.sleeps == [pytest.approx(SLACKED)]

    def test_unreadable_file_warned_once(self, fake: FakeTime, tmp_path: Path) -> None:
        log = ListLogger()
        limiter = _limiter(fake, tmp_path, calls=100, logger=log)
        path = _state_file(limiter, tmp_path)
        path.unlink()
        path.mkdir()

        for _ in range(50):
            limiter.acquire(ENDPOINT)

        assert len([line for level, line in log.lines if level == "warning"]) == 2


class TestWaits:
    def test_wait_never_longer_than_window(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(array("d", [NOW + SLACKED - 0.001] * 3).tobytes())

        assert limiter.try_acquire(ENDPOINT) <= SLACKED

    def test_unsorted_stamps_wait_for_oldest(self, fake: FakeTime, tmp_path: Path) -> None:
        limiter = _limiter(fake, tmp_path)
        path = _state_file(limiter, tmp_path)
        path.write_bytes(array("d", [NOW - 1.0, NOW - 5.0, NOW - 3.0]).tobytes())

        assert limiter.try_acquire(ENDPOINT) == pytest.approx(SLACKED - 5.0)

    def test_in_memory_state(self, fake: FakeTime) -> None:
        limiter = _limiter(fake, None, calls=2)

        for _ in range(5):
            limiter.acquire(ENDPOINT)

        assert fake.sleeps == [pytest.approx(SLACKED), pytest.approx(SLACKED)]


class TestWaitLog:
    def test_long_wait_logged_once_with_endpoint(self, fake: FakeTime, tmp_path: Path) -> None:
        log = ListLogger()
        limiter = _limiter(fake, tmp_path, calls=1, logger=log)

        limiter.acquire(ENDPOINT)
        limiter.acquire(ENDPOINT)

        assert log.lines == [
            (
                "info",
                f"Waiting {SLACKED:.1f} s for the client-side rate limit of 1 call(s) per 20 s on {ENDPOINT}",
            )
        ]

    def test_short_wait_not_logged(self, fake: FakeTime, tmp_path: Path) -> None:
        log = ListLogger()
        limiter = _limiter(fake, tmp_path, calls=1, logger=log)
        limiter.acquire(ENDPOINT)
        fake.now += SLACKED - 0.5

        limiter.acquire(ENDPOINT)

        assert fake.sleeps == [pytest.approx(0.5)]
        assert log.lines == []

    def test_module_logger_by_default(
        self, fake: FakeTime, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        limiter = _limiter(fake, tmp_path, calls=1)

        with caplog.at_level(logging.INFO, logger="fxiaoke_provider.api.rate_limit"):
            limiter.acquire(ENDPOINT)
            limiter.acquire(ENDPOINT)

        (record,) = caplog.records
        assert record.levelno == logging.INFO
        assert record.name == "fxiaoke_provider.api.rate_limit"
        assert record.args == (pytest.approx(SLACKED), 1, WINDOW, ENDPOINT)


class ClientLogger(ListLogger):
    """A ListLogger that also takes the client's debug lines."""

    def debug(self, msg: str, *args: Any) -> None:
        self.lines.append(("debug", msg % args))


class TestClientLogsWaits:
    def test_wait_reaches_client_logger(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        log = ClientLogger()
        client = make_client(emulator, tmp_path, logger=log, rate_limit_calls=1, rate_limit_window=5)
        try:
            for _ in range(2):
                client.call(PRESIGN_PATH, {"paths": DEMO_PATHS[:1], "expire": 1})
        finally:
            client.close()
        waits = [text for level, text in log.lines if level == "info" and PRESIGN_PATH in text]
        assert len(waits) == 1, log.lines
