"""
Run the example pipeline end to end against the bundled emulator.

Starts the emulator on a free loopback port, prepares a throwaway Airflow home under
``build/demo``, runs ``airflow dags test fxiaoke_presign_export``, stops the emulator, checks the
exported files against the emulator's store and prints where they are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from fxiaoke_provider.testing import FxiaokeEmulator

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "build" / "demo"
DAG_ID = "fxiaoke_presign_export"


def airflow_env(emulator: FxiaokeEmulator, export_root: Path) -> dict[str, str]:
    """Build the environment of the Airflow commands: a private home, the example DAGs, the connection."""
    connection = json.loads(emulator.connection_json())
    connection["extra"]["cache_dir"] = str(DEMO_DIR / "cache")
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(DEMO_DIR / "airflow_home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps(connection),
            "FXIAOKE_EXPORT_ROOT": export_root.as_uri(),
        }
    )
    return env


def run(command: list[str], env: dict[str, str]) -> None:
    """Run one Airflow command, stopping the demo if it fails."""
    print("+", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True, cwd=ROOT)


def main() -> int:
    """Run the demo and return the exit status."""
    export_root = DEMO_DIR / "export"
    shutil.rmtree(export_root, ignore_errors=True)
    export_root.mkdir(parents=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    with FxiaokeEmulator() as emulator:
        emulator.seed_demo_files()
        print(f"Emulator listening on {emulator.base_url}", flush=True)
        env = airflow_env(emulator, export_root)
        try:
            run([airflow, "db", "migrate"], env)
            run([airflow, "dags", "test", DAG_ID], env)
        except subprocess.CalledProcessError as err:
            print(f"Demo failed: {' '.join(err.cmd)} exited with status {err.returncode}", file=sys.stderr)
            return 1
        expected = emulator.files

    manifests = sorted(export_root.glob("*/manifest.jsonl"), key=lambda path: path.stat().st_mtime)
    if not manifests:
        print(f"Demo failed: no manifest.jsonl was written under {export_root}", file=sys.stderr)
        return 1
    manifest = manifests[-1]
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    mismatched = [
        e["path"] for e in entries if (manifest.parent / e["file"]).read_bytes() != expected.get(e["path"])
    ]
    if mismatched or len(entries) != len(expected):
        print(
            f"Demo failed: {len(entries)} file(s) exported, {len(mismatched)} differ from the emulator's copy"
        )
        return 1
    print()
    print(f"Exported {len(entries)} file(s), byte-identical to the emulator's copies, to: {manifest.parent}")
    print(f"Manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
