"""
Presign Fxiaoke CRM files, export them to object storage, and send a notification.

The pipeline:

1. ``list_paths`` reads the file paths (npaths) from the DAG's ``paths`` param.
2. ``presign`` (``PresignFilesOperator``) gets a presigned download URL for each distinct path.
3. ``export`` (``PresignedFilesToObjectStorageOperator``) streams every file into
   ``export_root``/<run id>, an object storage folder (``file://`` by default; ``s3://`` or ``gs://``
   work once that provider is installed). It checks each file's size and writes ``manifest.jsonl``
   beside the files.
4. ``notify`` e-mails each file, its link and the link's expiry through the SMTP connection
   ``smtp_conn_id`` when that connection exists. Without it, the task logs a summary with the URLs'
   query strings removed, because a presigned URL is a bearer credential.

The default paths are the demo files of the bundled emulator (``python -m fxiaoke_provider.testing``).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pendulum
from airflow.sdk import BaseHook, Param, dag, task
from airflow.sdk.exceptions import AirflowNotFoundException

from fxiaoke_provider.operators.files import PresignFilesOperator
from fxiaoke_provider.operators.storage import PresignedFilesToObjectStorageOperator

log = logging.getLogger(__name__)

#: The files that the bundled emulator seeds; replace them with your tenant's paths.
DEMO_PATHS = [
    "N_202410_22_d0b3bb728c327017b09aa09c93e86e89.pdf",
    "N_202410_22_a92a8edfc7df2be3e53d0f9d6a76a80f.png",
    "N_202410_22_4f32ed51cd92236c9dbd6b4b5788fc85.csv",
    "N_202410_22_3a9a081576f6f27fa0e93929f385549c.txt",
    "N_202410_22_0c36e9d0a4aab6035b66f776a1a6b553",
    "ALIOSS_b76aa83b15197631dcf992451e7574d1",
]

#: Folder for exported files, unless the run's ``export_root`` param sets another.
DEFAULT_EXPORT_ROOT = os.environ.get("FXIAOKE_EXPORT_ROOT", "file:///tmp/fxiaoke_export")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def file_name(text: str) -> str:
    """Return a folder or file name made from any text, one that cannot leave its parent folder."""
    name = _SAFE_NAME.sub("_", text).lstrip(".")
    return name or hashlib.sha256(text.encode()).hexdigest()


def without_query(url: str) -> str:
    """Return the URL without its query string and fragment, where presigned URLs keep their signature."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dag(
    dag_id="fxiaoke_presign_export",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "fxiaoke"],
    doc_md=__doc__,
    user_defined_filters={"file_name": file_name},
    params={
        "paths": Param(DEMO_PATHS, type="array", description="Fxiaoke file paths (npaths) to export."),
        "expire_hours": Param(
            1, type="integer", minimum=1, description="Lifetime of the presigned URLs, in hours."
        ),
        "export_root": Param(
            DEFAULT_EXPORT_ROOT, type="string", description="Object storage folder for the files."
        ),
        "smtp_conn_id": Param(
            "smtp_default", type="string", description="SMTP connection for the notification."
        ),
        "notify_to": Param(
            "data-team@example.com", type="string", description="Recipient of the notification."
        ),
    },
)
def fxiaoke_presign_export() -> None:
    """Presign Fxiaoke files, export them and notify."""

    @task
    def list_paths(params: dict[str, Any]) -> list[str]:
        """Return the file paths to export."""
        return list(params["paths"])

    # [START howto_operator_presign_files]
    presign = PresignFilesOperator(
        task_id="presign",
        paths=list_paths(),
        expire_hours="{{ params.expire_hours }}",
        fxiaoke_conn_id="fxiaoke_default",
    )
    # [END howto_operator_presign_files]

    export = PresignedFilesToObjectStorageOperator(
        task_id="export",
        results=presign.output,
        destination="{{ params.export_root }}/{{ run_id | file_name }}",
        fxiaoke_conn_id="fxiaoke_default",
    )

    @task
    def notify(results: list[dict[str, str]], exported: dict[str, Any], params: dict[str, Any]) -> str:
        """E-mail the links through SMTP when a connection is configured, otherwise log a redacted summary."""
        lines = [f"{r['path']}: {r['url']} (expires {r['expires_at']})" for r in results]
        subject = f"{len(results)} Fxiaoke file(s) exported to {exported['destination']}"
        try:
            BaseHook.get_connection(params["smtp_conn_id"])
        except AirflowNotFoundException:
            log.info("No SMTP connection %r; summary with query strings removed:", params["smtp_conn_id"])
            log.info("%s", subject)
            for r in results:
                log.info("  %s: %s (expires %s)", r["path"], without_query(r["url"]), r["expires_at"])
            return "logged"
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        body = f"<p>{html.escape(subject)}</p><ul>{items}</ul><p>Manifest: {html.escape(exported['manifest'])}</p>"
        with SmtpHook(smtp_conn_id=params["smtp_conn_id"]) as smtp:
            smtp.send_email_smtp(to=params["notify_to"], subject=subject, html_content=body)
        log.info("Sent the notification for %d file(s) to %s", len(results), params["notify_to"])
        return "emailed"

    notify(presign.output, export.output)


fxiaoke_presign_export()
