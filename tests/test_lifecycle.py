"""The lifecycle through the running platform (real api-server, scheduler, dag-processor, triggerer):

a first model waits in promote_forecaster for a person; a user who is not an approver gets 403, an
approver approves with `seqops promote approve` (the same Airflow task the UI answers), the model
becomes champion; then a shifted August makes monitor_drift request a retrain, train_forecaster
trains on that event and records its trigger, and the new challenger enters promotion.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_approval_in_airflow_then_drift_retrains_into_promotion(tmp_path, pjm_source):
    from drift_data import log_forecasts, shifted_august, three_zones

    from seqops import platform
    from seqops.core.secrets import user_password
    from seqops.core.settings import Settings
    from seqops.platform.airflow_client import AirflowClient, AirflowError
    from seqops.platform.waits import poll
    from seqops.registry.registry import CHALLENGER, CHAMPION, Registry

    env = {
        **os.environ,
        "SEQOPS_HOME": str(tmp_path / "home"),
        "SEQOPS_AIRFLOW_PORT": str(_free_port()),
        "SEQOPS_MLFLOW_PORT": str(_free_port()),
        "SEQOPS_SERVING_PORT": str(_free_port()),
        "SEQOPS_EVIDENTLY_PORT": str(_free_port()),
        "SEQOPS_FEATURES_DATASETS": "pjm",
        "SEQOPS_APPROVERS": "alice",
        "SEQOPS_AIRFLOW_USERS": "bob:op",
        "SEQOPS_DRIFT_PERSIST_HOURS": "0",  # persistence and cooldown have their own tests
        "SEQOPS_DRIFT_COOLDOWN_HOURS": "0",
        "SEQOPS_TRAIN_MAX_EPOCHS": "1",
        "SEQOPS_TRAIN_TIME_BUDGET_S": "60",
    }
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        del env[key]  # the platform derives its own Airflow environment from the home
    settings = Settings(
        home=tmp_path / "home",
        airflow_port=int(env["SEQOPS_AIRFLOW_PORT"]),
        mlflow_port=int(env["SEQOPS_MLFLOW_PORT"]),
        serving_port=int(env["SEQOPS_SERVING_PORT"]),
        evidently_port=int(env["SEQOPS_EVIDENTLY_PORT"]),
        features_datasets=["pjm"],
        approvers=["alice"],
        airflow_users=["bob:op"],
    )
    seqops = str(Path(sys.executable).with_name("seqops"))
    up = subprocess.run(
        [seqops, "platform", "up", "--no-demo"], env=env, capture_output=True, text=True, timeout=420
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        admin = AirflowClient(platform.airflow_url(settings), "admin", platform.admin_password(settings))

        def startup_training_done() -> bool | None:
            # Unpausing runs the latest weekly interval at once (catchup=False); with no data yet
            # it skips. Let it finish first, or it would train on the data built below.
            runs = admin.dag_runs("train_forecaster")
            return (bool(runs) and all(r["state"] in ("success", "failed") for r in runs)) or None

        poll(startup_training_done, timeout=180, every=3, timed_out=lambda: "the start-up training run hangs")
        data = three_zones(settings, tmp_path, pjm_source, champion=False)  # challenger v1, no champion
        run_id = admin.trigger("promote_forecaster", conf={"dataset": "pjm", "version": "1"})

        def waiting() -> dict | None:
            state = admin.dag_run("promote_forecaster", run_id)["state"]
            assert state != "failed", admin.task_instances("promote_forecaster", run_id)
            found = admin.hitl_details("promote_forecaster", run_id, response_received=False)
            return found[0] if found else None

        request = poll(waiting, timeout=420, every=3, timed_out=lambda: "the approval never came up")

        def awaiting_input() -> bool | None:
            # Answer once the task has left its worker, as a person would: an answer while the
            # worker is still exiting races it (Airflow then retries a queued task and stalls).
            tis = {t["task_id"]: t for t in admin.task_instances("promote_forecaster", run_id)}
            return tis["approval"]["state"] == "awaiting_input" or None

        poll(
            awaiting_input, timeout=120, every=2, timed_out=lambda: "the approval task never waited for input"
        )
        assert request["subject"] == "Promote pjm challenger v1 to champion?"
        assert [u["name"] for u in request["assigned_users"]] == ["alice"]
        assert "naive" in (request["body"] or "")  # a first model's evidence: the naive baselines

        bob = AirflowClient(platform.airflow_url(settings), "bob", user_password(settings, "bob"))
        with pytest.raises(AirflowError) as refused:
            bob.respond("promote_forecaster", run_id, "approval", ["Approve"])
        assert refused.value.status == 403
        denied = subprocess.run(
            [seqops, "promote", "approve", "--user", "bob"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert denied.returncode == 1 and "bob may not answer this approval; assigned: alice" in denied.stderr
        approved = subprocess.run(
            [seqops, "promote", "approve", "--user", "alice"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert approved.returncode == 0, approved.stderr
        assert admin.wait_for_run("promote_forecaster", run_id, timeout=300) == "success"
        registry = Registry(settings)
        nothing_older = subprocess.run(
            [seqops, "promote", "rollback", "--reason", "just checking", "--user", "alice"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert nothing_older.returncode == 1 and "rollback_forecaster run" in nothing_older.stderr
        champion = registry.by_alias("pjm", CHAMPION)
        assert champion is not None and champion.version == "1"
        assert champion.tags["approved_by"] == "alice" and champion.tags["validation_status"] == "approved"

        # Quiet data: the check runs, finds nothing, and nothing is requested.
        quiet_run = admin.trigger("monitor_drift", conf={"dataset": "pjm"})
        assert admin.wait_for_run("monitor_drift", quiet_run, timeout=300) == "success"
        states = {t["task_id"]: t["state"] for t in admin.task_instances("monitor_drift", quiet_run)}
        assert states == {"datasets": "success", "check": "success", "retrain_needed": "success"} | {
            "request_retrain": "skipped"
        }, states
        assert [r for r in admin.dag_runs("train_forecaster") if r["run_type"] == "asset_triggered"] == []

        # Drift: August lands shifted through ingest_sequences (the champion's DOM forecasts for the
        # last week, 30% off, are in the log); the curated event runs monitor_drift by itself.
        import shutil

        import pandas as pd

        from seqops.core.store import LandingZone

        shifted = shifted_august(data)
        version = data["version"]["version"]
        log_forecasts(
            settings, version, "2018-07-26", "2018-08-02", off={"DOM": 1.3}, arriving=pd.read_csv(shifted)
        )
        shutil.copy(shifted, LandingZone(settings).incoming("pjm") / shifted.name)
        ingest_run = admin.trigger("ingest_sequences", conf={"dataset": "pjm"})
        assert admin.wait_for_run("ingest_sequences", ingest_run, timeout=300) == "success"

        def drift_check() -> dict | None:
            runs = [r for r in admin.dag_runs("monitor_drift") if r["run_type"] == "asset_triggered"]
            return runs[0] if runs else None

        drift_run = poll(
            drift_check, timeout=180, every=3, timed_out=lambda: "ingestion did not start a drift check"
        )["dag_run_id"]
        assert admin.wait_for_run("monitor_drift", drift_run, timeout=300) == "success"
        states = {t["task_id"]: t["state"] for t in admin.task_instances("monitor_drift", drift_run)}
        assert states["request_retrain"] == "success", states
        # The check task's "Drift report" link, as the Airflow UI gets it, opens the report.
        from urllib.parse import quote

        links = admin.request(
            "GET",
            f"/api/v2/dags/monitor_drift/dagRuns/{quote(drift_run, safe='')}/taskInstances/check/links",
            params={"map_index": 0},
        )
        url = links["extra_links"]["Drift report"]
        drift_ui = platform.drift_ui_url(settings)
        assert url.startswith(f"{drift_ui}/reports/pjm/") and url.endswith("/summary.html")
        password = platform.admin_password(settings)
        assert httpx.get(url).status_code == 401
        page = httpx.get(url, auth=("admin", password))
        assert page.status_code == 200 and "DRIFT: the error of 1 of 3 series" in page.text

        def retrain() -> dict | None:
            runs = [r for r in admin.dag_runs("train_forecaster") if r["run_type"] == "asset_triggered"]
            return runs[0] if runs else None

        train_run = poll(retrain, timeout=180, every=3, timed_out=lambda: "the retrain event started nothing")
        assert admin.wait_for_run("train_forecaster", train_run["dag_run_id"], timeout=900) == "success"
        challenger = registry.by_alias("pjm", CHALLENGER)
        assert challenger is not None and challenger.version == "2"
        assert (
            challenger.tags["trigger_reason"].startswith("drift ")
            and "DOM" in challenger.tags["trigger_reason"]
        )
        assert "summary.html" in challenger.tags["trigger_report"]

        def promotion() -> dict | None:
            runs = [r for r in admin.dag_runs("promote_forecaster") if r["run_type"] == "asset_triggered"]
            return runs[0] if runs else None

        second = poll(
            promotion, timeout=180, every=3, timed_out=lambda: "the new challenger did not enter promotion"
        )

        def candidate_done() -> str | None:
            tis = admin.task_instances("promote_forecaster", second["dag_run_id"])
            state = {t["task_id"]: t["state"] for t in tis}.get("candidate")
            return state if state in ("success", "failed", "skipped") else None

        assert (
            poll(candidate_done, timeout=180, every=3, timed_out=lambda: "candidate did not finish")
            == "success"
        )
    finally:
        down = subprocess.run(
            [seqops, "platform", "down"], env=env, capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0
