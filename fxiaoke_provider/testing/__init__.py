"""Local emulator of the Fxiaoke Open API, for DAG tests and demos; it imports nothing from Airflow."""

from __future__ import annotations

from fxiaoke_provider.testing.clock import EmulatorClock
from fxiaoke_provider.testing.emulator import FxiaokeEmulator
from fxiaoke_provider.testing.endpoints import (
    DOWNLOAD_PREFIX,
    LARGE_FILE_URL_PATH,
    LEGACY_TOKEN_PATH,
    PRESIGN_PATH,
    TOKEN_PATH,
)
from fxiaoke_provider.testing.faults import TRANSIENT_ERROR_CODES, Fault
from fxiaoke_provider.testing.seed import DEMO_FILES, DEMO_PATHS, make_npath
from fxiaoke_provider.testing.settings import DEMO_CREDENTIALS, EmulatorSettings, TenantCredentials
from fxiaoke_provider.testing.state import RecordedRequest

__all__ = [
    "DEMO_CREDENTIALS",
    "DEMO_FILES",
    "DEMO_PATHS",
    "DOWNLOAD_PREFIX",
    "LARGE_FILE_URL_PATH",
    "LEGACY_TOKEN_PATH",
    "PRESIGN_PATH",
    "TOKEN_PATH",
    "TRANSIENT_ERROR_CODES",
    "EmulatorClock",
    "EmulatorSettings",
    "Fault",
    "FxiaokeEmulator",
    "RecordedRequest",
    "TenantCredentials",
    "make_npath",
]
