"""Three presign tasks acting as three worker hosts, each with its own token cache, sharing one token."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, chain

from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.testing import DEMO_PATHS

#: Connection IDs the test defines, one per simulated host, alike except for their cache folders.
HOST_CONNECTIONS = ("fxiaoke_host_a", "fxiaoke_host_b", "fxiaoke_host_c")

with DAG(
    dag_id="fxiaoke_shared_token",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test", "fxiaoke"],
):
    chain(
        *[
            PresignFilesOperator(task_id=f"presign_{conn_id}", paths=DEMO_PATHS[:2], fxiaoke_conn_id=conn_id)
            for conn_id in HOST_CONNECTIONS
        ]
    )
