"""Tests of PresignFilesOperator.execute against the emulator over real HTTP on loopback."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from fxiaoke_provider.exceptions import FxiaokeAPIError, FxiaokeError, FxiaokeQuotaError
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.testing import DEMO_PATHS as ALL_DEMO_PATHS
from fxiaoke_provider.testing import Fault, FxiaokeEmulator, make_npath
from tests.conftest import connection_dict

PRESIGN = "/cgi/crm/v2/file/getPresignedUrl"

#: Paths that the emulator's file store does not contain.
#: The demo's small files. The large file (ALIOSS_) goes to its own endpoint, which TestLargeFiles covers.
DEMO_PATHS = [path for path in ALL_DEMO_PATHS if not path.startswith("ALIOSS_")]
UNKNOWN_PATHS = [make_npath("N", random.Random(seed)) for seed in range(6)]


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every back-off wait return at once."""
    monkeypatch.setattr("fxiaoke_provider.api.client.time.sleep", lambda _seconds: None)


class FakeTaskInstance:
    """Stand-in for the ``ti`` of a task context that records the operator's own XCom pushes."""

    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


class LazyPaths:
    """A read-only sequence that is not a list, like the ``LazyXComSequence`` of a mapped upstream task."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Any:
        return self._items[index]


def _execute(paths: Any, ti: FakeTaskInstance | None = None, **kwargs: Any) -> list[dict[str, str]]:
    operator = PresignFilesOperator(task_id="presign", paths=paths, **kwargs)
    context = {"ti": ti if ti is not None else FakeTaskInstance()}
    return operator.execute(context)  # type: ignore[arg-type]


def _sent_batches(emu: FxiaokeEmulator) -> list[list[str]]:
    return [r.body["data"]["paths"] for r in emu.requests if r.path == PRESIGN]  # type: ignore[index]


def _log_line(text: str, fragment: str) -> str:
    return next((line for line in text.splitlines() if fragment in line), "")


class TestInputs:
    @pytest.mark.parametrize(
        ("paths", "expected"),
        [
            pytest.param(DEMO_PATHS, DEMO_PATHS, id="flat-list"),
            pytest.param(DEMO_PATHS[2], DEMO_PATHS[2:3], id="single-string"),
            pytest.param(f"  {DEMO_PATHS[2]}\n", DEMO_PATHS[2:3], id="string-with-whitespace"),
            pytest.param((DEMO_PATHS[0], DEMO_PATHS[1]), DEMO_PATHS[:2], id="tuple"),
            pytest.param([DEMO_PATHS[:2], DEMO_PATHS[2:4], [DEMO_PATHS[4]]], DEMO_PATHS, id="list-of-lists"),
            pytest.param(LazyPaths([DEMO_PATHS[:3], DEMO_PATHS[3:]]), DEMO_PATHS, id="lazy-sequence"),
            pytest.param([{"path": p, "filename": "f"} for p in DEMO_PATHS], DEMO_PATHS, id="dicts-path"),
            pytest.param([{"npath": p, "size": 1} for p in DEMO_PATHS], DEMO_PATHS, id="dicts-npath"),
            pytest.param({"path": DEMO_PATHS[1]}, DEMO_PATHS[1:2], id="single-dict"),
            pytest.param(json.dumps(DEMO_PATHS), DEMO_PATHS, id="json-list-string"),
            pytest.param(str(DEMO_PATHS), DEMO_PATHS, id="python-list-string"),
            pytest.param(str([DEMO_PATHS[:3], DEMO_PATHS[3:]]), DEMO_PATHS, id="python-nested-string"),
            pytest.param(
                [json.dumps(DEMO_PATHS[:3]), str(DEMO_PATHS[3:])], DEMO_PATHS, id="list-of-list-strings"
            ),
        ],
    )
    def test_input_form(self, fxiaoke_conn: FxiaokeEmulator, paths: Any, expected: list[str]) -> None:
        results = _execute(paths)
        assert [r["path"] for r in results] == expected
        assert _sent_batches(fxiaoke_conn) == [expected]

    def test_none_items_dropped(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        paths = [None, DEMO_PATHS[0], [None, DEMO_PATHS[1]], None]
        results = _execute(paths)
        assert [r["path"] for r in results] == DEMO_PATHS[:2]
        assert _sent_batches(fxiaoke_conn) == [DEMO_PATHS[:2]]
        line = _log_line(log_text(), "None item(s)")
        assert "Dropped 3 None item(s)" in line
        assert "warning" in line.lower()

    def test_duplicates_presigned_once(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        first, second, third = DEMO_PATHS[3], DEMO_PATHS[0], DEMO_PATHS[4]
        paths = [first, second, {"path": first}, [third, second], f" {third} "]
        results = _execute(paths, batch_size=2)
        assert [r["path"] for r in results] == [first, second, third]
        assert _sent_batches(fxiaoke_conn) == [[first, second], [third]]
        assert "Removed 3 repeated path(s)" in log_text()

    def test_templated_list_string(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        operator = PresignFilesOperator(task_id="presign", paths="{{ upstream_paths }}")
        operator.render_template_fields({"upstream_paths": DEMO_PATHS}, jinja_env=jinja2.Environment())  # type: ignore[arg-type]
        assert operator.paths == str(DEMO_PATHS)
        results = operator.execute({"ti": FakeTaskInstance()})  # type: ignore[arg-type]
        assert [r["path"] for r in results] == DEMO_PATHS


class TestOutput:
    def test_result_dicts(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        results = _execute(DEMO_PATHS, batch_size=4)
        assert [r["path"] for r in results] == DEMO_PATHS
        for result in results:
            assert set(result) == {"path", "url", "expires_at"}
            assert result["url"].startswith(f"{fxiaoke_conn.base_url}/")
        assert json.loads(json.dumps(results)) == results

    def test_expires_at_utc(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        before = datetime.now(UTC)
        results = _execute(DEMO_PATHS, expire_hours=5, batch_size=2)
        after = datetime.now(UTC)
        for result in results:
            stamp = result["expires_at"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
            expires_at = datetime.fromisoformat(stamp)
            assert expires_at.utcoffset() == timedelta(0)
            # The stamp is cut to whole seconds, so it may fall up to 1 s before the exact expiry.
            assert expires_at >= before + timedelta(hours=5) - timedelta(seconds=1)
            assert expires_at <= after + timedelta(hours=5)

    def test_urls_download_files(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        files = fxiaoke_conn.files
        for result in _execute(DEMO_PATHS):
            response = requests.get(result["url"], timeout=5)
            assert response.status_code == 200
            assert response.content == files[result["path"]]

    @pytest.mark.parametrize("shape", ["list", "map", "nested"])
    def test_response_shapes(self, fxiaoke_conn: FxiaokeEmulator, shape: str) -> None:
        fxiaoke_conn.settings.presign_response_shape = shape
        reordered = DEMO_PATHS[::-1]
        results = _execute(reordered, batch_size=4)
        assert [r["path"] for r in results] == reordered

    def test_expire_sent_to_api(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        _execute(DEMO_PATHS[:1], expire_hours=7)
        bodies = [r.body for r in fxiaoke_conn.requests if r.path == PRESIGN]
        assert bodies[0]["data"]["expire"] == 7  # type: ignore[index]


class TestExpireHours:
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(True, id="bool"),
            pytest.param(1.5, id="float"),
            pytest.param(0, id="zero"),
            pytest.param(-1, id="negative"),
            pytest.param("abc", id="letters"),
            pytest.param("2.5", id="decimal-string"),
            pytest.param(None, id="none"),
            pytest.param(169, id="above-maximum"),
        ],
    )
    def test_invalid_before_requests(self, fxiaoke_conn: FxiaokeEmulator, value: object) -> None:
        with pytest.raises(AirflowFailException, match="expire_hours") as caught:
            _execute(DEMO_PATHS, expire_hours=value)
        assert "'presign'" in str(caught.value)
        assert fxiaoke_conn.requests == []

    def test_templated_string_accepted(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        operator = PresignFilesOperator(task_id="presign", paths=DEMO_PATHS[:2], expire_hours="{{ 1 + 2 }}")
        operator.render_template_fields({}, jinja_env=jinja2.Environment())  # type: ignore[arg-type]
        assert operator.expire_hours == "3"
        before = datetime.now(UTC)
        results = operator.execute({"ti": FakeTaskInstance()})  # type: ignore[arg-type]
        assert [r["path"] for r in results] == DEMO_PATHS[:2]
        bodies = [r.body for r in fxiaoke_conn.requests if r.path == PRESIGN]
        assert bodies[0]["data"]["expire"] == 3  # type: ignore[index]
        expires_at = datetime.fromisoformat(results[0]["expires_at"])
        assert expires_at >= before + timedelta(hours=3) - timedelta(seconds=1)


class TestEmpty:
    @pytest.mark.parametrize(
        "paths",
        [
            pytest.param([], id="empty-list"),
            pytest.param([None], id="only-none"),
            pytest.param([[]], id="empty-nested"),
            pytest.param(None, id="none"),
            pytest.param("[]", id="empty-list-string"),
        ],
    )
    def test_empty_skips(self, fxiaoke_conn: FxiaokeEmulator, paths: Any) -> None:
        with pytest.raises(AirflowSkipException, match="No file paths to presign") as caught:
            _execute(paths)
        assert "empty list" in str(caught.value)
        assert fxiaoke_conn.requests == []

    def test_empty_returns_list(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        assert _execute([None, []], skip_on_empty=False) == []
        assert fxiaoke_conn.requests == []
        assert "skip_on_empty is False" in log_text()

    @pytest.mark.parametrize("value", ["no", "False", 0, None])
    def test_skip_on_empty_must_be_bool(self, fxiaoke_conn: FxiaokeEmulator, value: object) -> None:
        with pytest.raises(AirflowFailException, match=r"skip_on_empty is .*; expected True or False"):
            _execute([], skip_on_empty=value)
        assert fxiaoke_conn.requests == []

    def test_skip_on_empty_checked_with_paths(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        with pytest.raises(AirflowFailException, match=r"skip_on_empty is 'no' \(str\)"):
            _execute(DEMO_PATHS, skip_on_empty="no")
        assert fxiaoke_conn.requests == []

    def test_empty_list_string_item_reported(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        results = _execute([DEMO_PATHS[0], "[]"])
        assert [result["path"] for result in results] == [DEMO_PATHS[0]]
        assert "Read 1 list string(s) in paths, such as '[]', that contain no path" in log_text()


class TestInvalidItems:
    @pytest.mark.parametrize(
        ("item", "described"),
        [
            pytest.param(42, "paths[1] is 42 (int)", id="int"),
            pytest.param({"name": "a.pdf"}, "paths[1] is {'name': 'a.pdf'} (dict)", id="dict-without-path"),
            pytest.param("   ", "paths[1] is '   ' (str)", id="blank-string"),
            pytest.param(b"N_x.pdf", "paths[1] is b'N_x.pdf' (bytes)", id="bytes"),
            pytest.param({"path": 7}, "paths[1]['path'] is 7 (int)", id="dict-with-int-path"),
            pytest.param(
                {"path": None}, "paths[1] is {'path': None} (dict), whose path keys", id="dict-with-none-path"
            ),
            pytest.param("N_a\u200bb.pdf", "format character '\\u200b' (U+200B", id="zero-width-space"),
            pytest.param("\u202eN_x.pdf", "format character '\\u202e' (U+202E", id="bidi-override"),
            pytest.param(
                "N_" + "a" * 1_000_000,
                "(1000002 characters) (str), which is 1000002 characters long",
                id="million-characters",
            ),
        ],
    )
    def test_invalid_item_fails(self, fxiaoke_conn: FxiaokeEmulator, item: object, described: str) -> None:
        with pytest.raises(AirflowFailException) as caught:
            _execute([DEMO_PATHS[0], item, DEMO_PATHS[1]])
        assert described in str(caught.value)
        assert len(str(caught.value)) < 500
        assert fxiaoke_conn.requests == []

    def test_dict_with_none_path_reads_next_key(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        results = _execute([{"path": None, "npath": DEMO_PATHS[0]}])
        assert [result["path"] for result in results] == [DEMO_PATHS[0]]

    @pytest.mark.parametrize(
        "batch_size",
        [pytest.param(0, id="zero"), pytest.param(1001, id="above-maximum"), pytest.param("2", id="string")],
    )
    def test_invalid_batch_size(self, fxiaoke_conn: FxiaokeEmulator, batch_size: object) -> None:
        with pytest.raises(AirflowFailException, match="batch_size"):
            _execute(DEMO_PATHS, batch_size=batch_size)
        assert fxiaoke_conn.requests == []


class TestBatching:
    def test_batches_of_two(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        results = _execute(DEMO_PATHS, batch_size=2)
        assert [r["path"] for r in results] == DEMO_PATHS
        assert _sent_batches(fxiaoke_conn) == [DEMO_PATHS[0:2], DEMO_PATHS[2:4], DEMO_PATHS[4:6]]
        text = log_text()
        assert "Presigning 5 path(s) in 3 batch(es) of up to 2" in text
        summary = _log_line(text, "Presigned 5 of 5 path(s)")
        http_requests = len(fxiaoke_conn.requests)
        assert f"in 3 batch(es) with {http_requests} HTTP request(s) (1 token call(s))" in summary
        assert re.search(r" in \d+\.\d\d s", summary), summary

    def test_progress_lines(
        self, fxiaoke_conn: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, log_text: Any
    ) -> None:
        monkeypatch.setattr("fxiaoke_provider.operators.files.PROGRESS_INTERVAL_SECONDS", 0.0)
        _execute(DEMO_PATHS, batch_size=2)
        text = log_text()
        assert "Progress: 2/5 path(s)" in text
        assert "Progress: 4/5 path(s)" in text
        assert "Progress: 6/6" not in text

    def test_retries_counted(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=50009, times=2))
        results = _execute(DEMO_PATHS, batch_size=3)
        assert [r["path"] for r in results] == DEMO_PATHS
        assert len(_sent_batches(fxiaoke_conn)) == 4
        assert "in 2 batch(es) with 5 HTTP request(s) (1 token call(s))" in log_text()


class TestLogSecrets:
    def test_no_url_in_log(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        results = _execute(DEMO_PATHS, batch_size=2)
        text = log_text()
        assert "Presigned 5 of 5 path(s)" in text
        assert "Signature=" not in text
        for result in results:
            assert result["url"].split("?", 1)[1] not in text

    def test_no_url_after_partial_failure(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        fxiaoke_conn.settings.unknown_path_mode = "omit"
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException) as caught:
            _execute([*DEMO_PATHS, UNKNOWN_PATHS[0]], ti=ti, batch_size=4)
        text = log_text() + str(caught.value)
        assert "returned no URL for 1 path(s)" in text
        assert "Signature=" not in text
        for result in ti.pushed[0][1]:
            assert result["url"].split("?", 1)[1] not in text


class TestFailures:
    def test_partial_failure(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        fxiaoke_conn.settings.unknown_path_mode = "omit"
        known = DEMO_PATHS[:4]
        unknown = UNKNOWN_PATHS
        paths = [known[0], unknown[0], unknown[1], known[1], unknown[2], unknown[3], known[2]]
        paths += [unknown[4], unknown[5], known[3]]
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException) as caught:
            _execute(paths, ti=ti, batch_size=3)
        message = str(caught.value)
        assert "4 path(s) succeeded and 6 failed" in message
        for path in unknown[:5]:
            assert f"{path!r} (no URL returned)" in message
        assert unknown[5] not in message
        assert "and 1 more" in message
        assert len(_sent_batches(fxiaoke_conn)) == 4
        assert [key for key, _ in ti.pushed] == ["partial_results"]
        partial = ti.pushed[0][1]
        assert [r["path"] for r in partial] == known
        assert all(r["url"].startswith(fxiaoke_conn.base_url) for r in partial)
        assert "Presigned 4 of 10 path(s) in 4 batch(es)" in log_text()

    def test_all_missing_no_push(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.settings.unknown_path_mode = "omit"
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException, match=r"0 path\(s\) succeeded and 2 failed"):
            _execute(UNKNOWN_PATHS[:2], ti=ti)
        assert ti.pushed == []

    def test_permanent_code_fails(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=30002))
        with pytest.raises(AirflowFailException, match="30002") as caught:
            _execute(DEMO_PATHS, batch_size=2)
        cause = caught.value.__cause__
        assert isinstance(cause, FxiaokeQuotaError)
        assert cause.trace_id
        assert f"traceId {cause.trace_id!r}" in str(caught.value)
        assert len(_sent_batches(fxiaoke_conn)) == 1

    def test_quota_keeps_earlier_batches(self, fxiaoke_conn: FxiaokeEmulator, log_text: Any) -> None:
        # A delay-only fault uses up the first presign call, so the code fault hits the second one.
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, delay_seconds=0.001))
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=30002))
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException, match="30002"):
            _execute(DEMO_PATHS, ti=ti, batch_size=2)
        assert len(_sent_batches(fxiaoke_conn)) == 2
        assert [key for key, _ in ti.pushed] == ["partial_results"]
        assert [r["path"] for r in ti.pushed[0][1]] == DEMO_PATHS[:2]
        assert "Stopping after 2 of 5 path(s) were presigned" in log_text()

    def test_other_code_fails_batch(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, error_code=15003))
        ti = FakeTaskInstance()
        with pytest.raises(AirflowFailException) as caught:
            _execute(DEMO_PATHS, ti=ti, batch_size=2)
        message = str(caught.value)
        assert "3 path(s) succeeded and 2 failed" in message
        assert f"{DEMO_PATHS[0]!r} (errorCode 15003)" in message
        assert len(_sent_batches(fxiaoke_conn)) == 3
        assert [r["path"] for r in ti.pushed[0][1]] == DEMO_PATHS[2:]

    def test_html_response_fails(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        page = b"<html><body>Login</body></html>"
        fxiaoke_conn.inject(Fault(endpoint=PRESIGN, http_status=200, body=page, times=0))
        with pytest.raises(AirflowFailException, match="not JSON"):
            _execute(DEMO_PATHS, batch_size=2)
        assert len(_sent_batches(fxiaoke_conn)) == 1

    def test_wrong_secret_fails(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path / "cache")
        conn["password"] = "wrong-secret-value-456"
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        with pytest.raises(AirflowFailException, match="20006") as caught:
            _execute(DEMO_PATHS)
        assert "wrong-secret-value-456" not in str(caught.value)
        assert emulator.token_calls == 1
        assert _sent_batches(emulator) == []

    def test_config_error_fails(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path / "cache")
        del conn["extra"]["permanent_code"]
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        with pytest.raises(AirflowFailException, match="extra.permanent_code"):
            _execute(DEMO_PATHS)
        assert emulator.requests == []

    def test_transient_code_exhausted(
        self, emulator: FxiaokeEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        conn = connection_dict(emulator, tmp_path / "cache", max_retries=1)
        monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", json.dumps(conn))
        emulator.inject(Fault(endpoint=PRESIGN, error_code=-1, times=0))
        with pytest.raises(FxiaokeError) as caught:
            _execute(DEMO_PATHS)
        assert not isinstance(caught.value, AirflowFailException)
        assert isinstance(caught.value, FxiaokeAPIError)
        assert caught.value.error_code == -1
        assert caught.value.attempts == 2
        assert len(_sent_batches(emulator)) == 2


class TestDefinition:
    def test_template_fields(self) -> None:
        fields = PresignFilesOperator.template_fields
        assert isinstance(fields, tuple)
        for name in ("paths", "expire_hours", "fxiaoke_conn_id"):
            assert name in fields

    def test_on_kill_closes_session(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        operator = PresignFilesOperator(task_id="presign", paths=DEMO_PATHS[:1])
        operator.on_kill()
        assert "hook" not in operator.__dict__
        operator.execute({"ti": FakeTaskInstance()})  # type: ignore[arg-type]
        assert operator.hook.client._session is not None
        operator.on_kill()
        assert operator.hook.client._session is None

    def test_init_does_no_io(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        operator = PresignFilesOperator(task_id="presign", paths=DEMO_PATHS, fxiaoke_conn_id="no_such_conn")
        assert "hook" not in operator.__dict__
        assert fxiaoke_conn.requests == []
        with pytest.raises(AirflowNotFoundException, match="no_such_conn"):
            operator.execute({"ti": FakeTaskInstance()})  # type: ignore[arg-type]
        assert fxiaoke_conn.requests == []


class TestLargeFiles:
    def test_large_file_routed(self, fxiaoke_conn: FxiaokeEmulator) -> None:
        large = [path for path in ALL_DEMO_PATHS if path.startswith("ALIOSS_")]
        before = datetime.now(UTC)
        results = _execute(ALL_DEMO_PATHS, expire_hours=5)
        assert [result["path"] for result in results] == ALL_DEMO_PATHS
        sent = [r.body["data"]["path"] for r in fxiaoke_conn.requests if r.path.endswith("ByAuth")]  # type: ignore[index]
        assert sent == large
        assert _sent_batches(fxiaoke_conn) == [DEMO_PATHS]
        expires = {result["expires_at"] for result in results}
        assert len(expires) == 1
        # A large file's link lasts 3600 s, so the batch states that expiry, not five hours.
        assert expires.pop() <= (before + timedelta(seconds=3601)).strftime("%Y-%m-%dT%H:%M:%SZ")
