"""Tests of splitting a rejected presign batch to find the unknown paths in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from fxiaoke_provider.api.files import PRESIGN_ENDPOINT, iter_presigned_batches
from fxiaoke_provider.exceptions import FxiaokeAPIError
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.testing import DEMO_PATHS, Fault, FxiaokeEmulator
from tests.conftest import make_client
from tests.operators.test_files import FakeTaskInstance

UNKNOWN = ["N_202401_01_" + "e" * 32, "N_202401_01_" + "f" * 32]


def _presign_calls(emu: FxiaokeEmulator) -> int:
    return len([r for r in emu.requests if r.path == PRESIGN_ENDPOINT])


class TestSplitRejectedBatch:
    def test_one_unknown_path(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = [*DEMO_PATHS[:3], UNKNOWN[0], *DEMO_PATHS[3:]]
        client = make_client(emulator, tmp_path)
        (batch,) = iter_presigned_batches(client, paths, batch_size=len(paths))
        assert batch.missing == [UNKNOWN[0]]
        assert list(batch.urls) == DEMO_PATHS
        assert _presign_calls(emulator) <= 7

    def test_unknown_paths_in_both_halves(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        paths = [UNKNOWN[0], *DEMO_PATHS, UNKNOWN[1]]
        client = make_client(emulator, tmp_path)
        (batch,) = iter_presigned_batches(client, paths, batch_size=len(paths))
        assert batch.missing == UNKNOWN
        assert list(batch.urls) == DEMO_PATHS

    def test_request_wide_rejection_raises(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        client = make_client(emulator, tmp_path)
        emulator.inject(Fault(endpoint=PRESIGN_ENDPOINT, error_code=15002, times=0))
        with pytest.raises(FxiaokeAPIError, match="15002"):
            list(iter_presigned_batches(client, DEMO_PATHS, batch_size=len(DEMO_PATHS)))
        assert _presign_calls(emulator) <= 10

    def test_single_unknown_path_raises(self, emulator: FxiaokeEmulator, tmp_path: Path) -> None:
        client = make_client(emulator, tmp_path)
        with pytest.raises(FxiaokeAPIError, match="15002"):
            list(iter_presigned_batches(client, UNKNOWN[:1]))
        assert _presign_calls(emulator) == 1

    def test_split_logged(self, emulator: FxiaokeEmulator, tmp_path: Path, log_text: object) -> None:
        client = make_client(emulator, tmp_path)
        list(iter_presigned_batches(client, [*DEMO_PATHS[:2], UNKNOWN[0]], batch_size=3))
        assert "splitting it to find the rejected path(s)" in log_text()  # type: ignore[operator]


class TestOperatorKeepsGoodPaths:
    def test_only_unknown_path_fails(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        ti = FakeTaskInstance()
        operator = PresignFilesOperator(task_id="presign", paths=[*DEMO_PATHS, UNKNOWN[0]])
        with pytest.raises(AirflowFailException) as caught:
            operator.execute({"ti": ti})  # type: ignore[arg-type]
        assert f"{len(DEMO_PATHS)} path(s) succeeded and 1 failed" in str(caught.value)
        assert UNKNOWN[0] in str(caught.value)
        ((key, value),) = ti.pushed
        assert key == "partial_results"
        assert [result["path"] for result in value] == DEMO_PATHS
