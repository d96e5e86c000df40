"""Test DAG that feeds PresignFilesOperator a mapped upstream's output and a Jinja-rendered list string."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.testing import DEMO_PATHS

#: Three batches that together contain every demo path. The last batch repeats the first path.
BATCHES = [DEMO_PATHS[0:2], DEMO_PATHS[2:4], [*DEMO_PATHS[4:], DEMO_PATHS[0]]]


@dag(
    dag_id="fxiaoke_operator_inputs",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test", "fxiaoke"],
)
def fxiaoke_operator_inputs() -> None:
    """Presign the demo paths from a mapped task and from a rendered template, then check both results."""

    @task
    def select_batch(batch: list[str]) -> list[str]:
        """Return one batch of paths, so that the downstream task receives a LazyXComSequence of lists."""
        return list(batch)

    @task
    def list_paths() -> list[str]:
        """Return every demo path, which the template below renders as the text of a Python list."""
        return list(DEMO_PATHS)

    presign_mapped = PresignFilesOperator(
        task_id="presign_mapped", paths=select_batch.expand(batch=BATCHES), batch_size=2
    )
    presign_rendered = PresignFilesOperator(
        task_id="presign_rendered",
        paths="{{ ti.xcom_pull(task_ids='list_paths') }}",
        expire_hours="{{ 2 }}",
    )
    list_paths() >> presign_rendered

    @task
    def check_results(mapped: list[dict[str, Any]], rendered: list[dict[str, Any]]) -> None:
        """Raise unless each result contains every demo path exactly once, in order, with a URL."""
        for name, results in (("presign_mapped", mapped), ("presign_rendered", rendered)):
            paths = [result["path"] for result in results]
            if paths != DEMO_PATHS:
                raise ValueError(f"{name} returned the paths {paths} instead of {DEMO_PATHS}")
            for result in results:
                if not result["url"].startswith(("http://", "https://")):
                    raise ValueError(f"{name} returned no http(s) URL for {result['path']}")
        print(f"Both operators returned all {len(DEMO_PATHS)} demo paths in order")

    check_results(presign_mapped.output, presign_rendered.output)


fxiaoke_operator_inputs()
