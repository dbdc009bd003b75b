"""The lifecycle on the production profile, started by its one command (``infra/local/production.sh``).

PostgreSQL holds Airflow's metadata, MLflow's backend store, Feast's registry and offline store and
the prediction log; Redis is Feast's online store and the Celery broker; Airflow runs the
CeleryExecutor with two Celery workers; MLflow's artifacts and the curated Delta tables live in an S3
bucket with the raw and quarantine zones (moto's server plays S3 through the ordinary S3 clients).
Through real DAG runs: good batches and a bad one are ingested (the bad one quarantined in the bucket
with its report, the counts reconciled), features materialize with the parity gate, a model trains
and registers, and the promotion it starts waits for a person, who approves it. The tasks of one run
land on both workers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from promotion_live import free_port, platform_ports

pytestmark = [pytest.mark.slow, pytest.mark.services]

STACK = Path(__file__).resolve().parents[1] / "infra" / "local" / "production.sh"
WORKLOAD = re.compile(
    r"Executing workload in Celery: .*?task_id='([^']+)', dag_id='([^']+)', run_id='([^']+)'"
)


def _stack_env(tmp_path: Path) -> dict[str, str]:
    services_dir = tempfile.mkdtemp(prefix="seqops-production-test-")  # PostgreSQL's user must reach it
    os.chmod(services_dir, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEQOPS_", "AWS_", "MLFLOW_"))}
    env.update(
        {
            "SEQOPS_HOME": str(tmp_path / "home"),
            "SEQOPS_SERVICES_DIR": services_dir,
            "SEQOPS_BIN": str(Path(sys.executable).parent),
            "SEQOPS_SERVICES_PG_PORT": str(free_port()),
            "SEQOPS_SERVICES_REDIS_PORT": str(free_port()),
            "SEQOPS_S3_PORT": str(free_port()),
            **platform_ports(),
            "SEQOPS_FEATURES_DATASETS": "pjm",
            "SEQOPS_APPROVERS": "alice",
            "SEQOPS_TRAIN_MAX_EPOCHS": "1",
            "SEQOPS_TRAIN_TIME_BUDGET_S": "60",
        }
    )
    printed = subprocess.run([str(STACK), "env"], env=env, capture_output=True, text=True, check=True).stdout
    env.update(
        line.removeprefix("export ").split("=", 1)
        for line in printed.splitlines()
        if line.startswith("export ")
    )
    return env


def test_the_lifecycle_on_postgres_redis_celery_and_s3(tmp_path, pjm_source, monkeypatch):
    env = _stack_env(tmp_path)
    for key, value in env.items():
        if key.startswith(("SEQOPS_", "AWS_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    up = subprocess.run([str(STACK), "up", "--no-demo"], env=env, capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        _lifecycle(env, tmp_path, pjm_source)
    finally:
        down = subprocess.run([str(STACK), "purge"], env=env, capture_output=True, text=True, timeout=300)
        Path(env["SEQOPS_SERVICES_DIR"] + ".lock").unlink(missing_ok=True)  # services.sh's lock file
        assert down.returncode == 0, down.stderr[-2000:]


def _lifecycle(env: dict[str, str], tmp_path: Path, pjm_source: Path) -> None:
    import boto3

    from seqops import platform
    from seqops.core.importers import import_pjm
    from seqops.core.settings import Settings
    from seqops.core.store import CuratedStore, LandingZone
    from seqops.platform.airflow_client import AirflowClient
    from seqops.platform.waits import poll
    from seqops.registry.registry import CHALLENGER, CHAMPION, Registry

    settings = Settings()
    assert settings.profile == "production" and settings.airflow_executor == "CeleryExecutor"
    assert (settings.home / "secrets" / "postgres_password").stat().st_mode & 0o077 == 0
    admin = AirflowClient(platform.airflow_url(settings), "admin", platform.admin_password(settings))

    def startup_training_done() -> bool | None:
        runs = admin.dag_runs("train_forecaster")
        return (bool(runs) and all(r["state"] in ("success", "failed") for r in runs)) or None

    poll(startup_training_done, timeout=240, every=3, timed_out=lambda: "the start-up training run hangs")

    # Ingest: five good months and a bad batch (a negative load and a repeated key).
    report = import_pjm(
        pjm_source, tmp_path / "batches", zones=["AEP", "DOM", "DUQ"], since="2018-03-01", period="month"
    )
    incoming = LandingZone(settings).incoming("pjm")
    good = sorted(report.batches)[:-1]
    for name in good:
        shutil.copy(tmp_path / "batches" / name, incoming / name)
    (incoming / "pjm_bad.csv").write_text(
        "series_id,timestamp,value\nAEP,2018-07-31T00:00:00Z,-5\nAEP,2018-07-31T00:00:00Z,100\n"
    )
    ingest = admin.trigger("ingest_sequences", conf={"dataset": "pjm"})
    admin.wait_for_run("ingest_sequences", ingest, timeout=600)

    # The hourly scheduled run may claim some of the files first (an hour can turn here): judge
    # every run that claimed a batch. The run that validated the bad batch failed; the others not.
    def ingest_runs_done() -> list[dict] | None:
        runs = admin.dag_runs("ingest_sequences")
        return runs if all(r["state"] in ("success", "failed") for r in runs) else None

    validated: dict[str, list[str]] = {}
    for run in poll(ingest_runs_done, timeout=600, every=3, timed_out=lambda: "an ingest run hangs"):
        tis = admin.task_instances("ingest_sequences", run["dag_run_id"])
        states = [t["state"] for t in tis if t["task_id"] == "each_batch.validate" and t["map_index"] >= 0]
        if states:
            validated[run["dag_run_id"]] = states
            assert run["state"] == ("failed" if "failed" in states else "success"), (run, states)
    assert sorted(s for states in validated.values() for s in states) == ["failed"] + ["success"] * len(good)
    from seqops.core.store import Quarantine, RawStore

    quarantined = Quarantine(settings).batches("pjm")  # listed from the bucket
    assert len(quarantined) == 1
    curated = CuratedStore(settings).read("pjm")
    import pandas as pd

    landed = sum(len(pd.read_csv(tmp_path / "batches" / name)) for name in good)
    assert len(curated) == landed  # every good row published once; nothing of the bad batch
    s3 = boto3.client("s3")
    bucket, _, prefix = settings.object_store_root.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/curated/pjm/_delta_log/")
    assert listed.get("KeyCount", 0) > 0  # the curated Delta table is in the bucket
    held = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/quarantine/pjm/{quarantined[0]}/")
    assert {o["Key"].rsplit("/", 1)[1] for o in held.get("Contents", [])} >= {"batch.csv", "validation.json"}
    refs = RawStore(settings).refs("pjm")  # every landing's raw copy is in the bucket too
    assert len(refs) == len(good) + 1 and all(r.raw_path.startswith("s3://") for r in refs)

    # The curated event materializes the features, parity gate included.
    def materialized() -> dict | None:
        runs = [r for r in admin.dag_runs("materialize_features") if r["run_type"] == "asset_triggered"]
        return runs[0] if runs else None

    run = poll(materialized, timeout=180, every=3, timed_out=lambda: "ingestion started no materialize run")
    assert admin.wait_for_run("materialize_features", run["dag_run_id"], timeout=600) == "success"
    states = {
        t["task_id"]: t["state"] for t in admin.task_instances("materialize_features", run["dag_run_id"])
    }
    assert states["parity"] == "success", states

    # Train and register; the artifacts go to the bucket, the registry to PostgreSQL.
    train = admin.trigger("train_forecaster", conf={"dataset": "pjm"})
    assert admin.wait_for_run("train_forecaster", train, timeout=900) == "success"
    registry = Registry(settings)
    challenger = registry.by_alias("pjm", CHALLENGER)
    assert challenger is not None and challenger.version == "1"
    artifacts = s3.list_objects_v2(Bucket=bucket, Prefix="mlflow/")
    assert any(o["Key"].endswith("MLmodel") for o in artifacts.get("Contents", []))

    # The new challenger starts its promotion; a first model waits for a person.
    def waiting() -> dict | None:
        runs = [r for r in admin.dag_runs("promote_forecaster") if r["run_type"] == "asset_triggered"]
        if not runs:
            return None
        found = admin.hitl_details("promote_forecaster", runs[0]["dag_run_id"], response_received=False)
        return runs[0] if found else None

    promotion = poll(waiting, timeout=600, every=3, timed_out=lambda: "the approval never came up")
    seqops = str(Path(sys.executable).with_name("seqops"))
    approved = subprocess.run(
        [seqops, "promote", "approve", "--user", "alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert approved.returncode == 0, approved.stderr[-2000:]
    assert admin.wait_for_run("promote_forecaster", promotion["dag_run_id"], timeout=300) == "success"
    champion = registry.by_alias("pjm", CHAMPION)
    assert champion is not None and champion.version == "1" and champion.tags["approved_by"] == "alice"

    # Distributed: each worker ran tasks, and the ingest runs' tasks landed on both (the hourly run
    # may have claimed some batches, so no single run is sure to have enough tasks to spread).
    by_worker: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for i in (1, 2):
        log = (settings.run_dir / f"celery-worker-{i}.log").read_text(errors="replace")
        by_worker[f"worker-{i}"] = set(WORKLOAD.findall(log))
    assert all(by_worker.values()), {w: len(t) for w, t in by_worker.items()}
    ingest_workers = {w for w, tasks in by_worker.items() if any(r in validated for _, _, r in tasks)}
    assert ingest_workers == {"worker-1", "worker-2"}, by_worker
