"""
Every day, export the files of the CRM records changed the day before to object storage, then notify.

The pipeline is three provider operators and a summary task:

1. ``list_files`` (``FxiaokeListFilesOperator``) reads every ``AccountObj`` record whose
   ``last_modified_time`` falls in the run's data interval and lists the files in its ``attachments``
   and ``logo`` fields. It pages by ``_id``, so more than 10,000 changed records are read in full.
   When no record changed, it skips the run's remaining tasks.
2. ``presign`` (``PresignFilesOperator``) gets a presigned download URL for each distinct file.
3. ``export`` (``PresignedFilesToObjectStorageOperator``) streams every file into
   ``export_root``/<DAG ID>/<data interval end>, an ``ObjectStoragePath`` (``file://`` by default;
   ``s3://`` or ``gs://`` work once that provider is installed), and writes ``manifest.jsonl`` beside
   the files. A retry or a second run of the same interval skips the files already stored, and links
   that expired in between are presigned again.
4. ``notify`` logs a summary by field, without any URL.

The schedule runs at midnight UTC with a data interval of the previous whole day (a cron trigger with a
one-day interval, since a plain ``"@daily"`` trigger in Airflow 3 gives a zero-length interval). With
``catchup=False`` only the latest day is exported when the DAG is switched on.

The defaults match the CRM records that the bundled emulator seeds with ``seed_crm_objects()``.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, task

from fxiaoke_provider.operators.crm import FxiaokeListFilesOperator
from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.operators.storage import PresignedFilesToObjectStorageOperator

#: The object and its file and image fields; replace them with your tenant's.
OBJECT_API_NAME = "AccountObj"
FILE_FIELDS = ["attachments", "logo"]

#: Folder for exported files, unless the run's ``export_root`` param sets another.
DEFAULT_EXPORT_ROOT = os.environ.get("FXIAOKE_EXPORT_ROOT", "file:///tmp/fxiaoke_crm_files")


@dag(
    dag_id="fxiaoke_crm_files_to_storage",
    schedule=CronTriggerTimetable("@daily", timezone="UTC", interval=timedelta(days=1)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "fxiaoke"],
    doc_md=__doc__,
    params={
        "export_root": Param(
            DEFAULT_EXPORT_ROOT, type="string", description="Object storage folder for the files."
        ),
    },
)
def fxiaoke_crm_files_to_storage() -> None:
    """List the files of changed CRM records, presign them, export them and notify."""
    # [START howto_operator_list_files]
    list_files = FxiaokeListFilesOperator(
        task_id="list_files",
        object_api_name=OBJECT_API_NAME,
        file_fields=FILE_FIELDS,
        modified_between=("{{ data_interval_start }}", "{{ data_interval_end }}"),
        fxiaoke_conn_id="fxiaoke_default",
        skip_on_empty=True,
    )
    # [END howto_operator_list_files]

    presign = PresignFilesOperator(
        task_id="presign", paths=list_files.output, expire_hours=1, fxiaoke_conn_id="fxiaoke_default"
    )

    # [START howto_operator_export_files]
    export = PresignedFilesToObjectStorageOperator(
        task_id="export",
        results=presign.output,
        destination="{{ params.export_root }}/{{ dag.dag_id }}/{{ data_interval_end | ts_nodash }}",
        max_workers=4,
        fxiaoke_conn_id="fxiaoke_default",
    )
    # [END howto_operator_export_files]

    @task
    def notify(files: list[dict[str, Any]], exported: dict[str, Any]) -> dict[str, int]:
        """Log what was exported, by field; the log names folders and counts, never a URL."""
        by_field = Counter(f"{item['object_api_name']}.{item['field']}" for item in files)
        print(
            f"Exported the files of {len({item['record_id'] for item in files})} changed record(s) to "
            f"{exported['destination']}: {exported['downloaded']} downloaded, {exported['skipped']} already "
            f"there, {exported['bytes']} bytes; manifest: {exported['manifest']}"
        )
        for field, count in sorted(by_field.items()):
            print(f"  {field}: {count} file(s)")
        return dict(by_field)

    notify(list_files.output, export.output)


fxiaoke_crm_files_to_storage()
