"""The local platform: real processes up behind a login, every DAG parsed, nothing left after down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from seqops.core.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_production_profile_refuses_to_start_incomplete(monkeypatch):
    monkeypatch.setenv("SEQOPS_PROFILE", "production")
    with pytest.raises(ValueError, match="SEQOPS_AIRFLOW_DB_URL.*SEQOPS_MLFLOW_TRACKING_URI"):
        Settings()


def test_the_celery_executor_needs_its_broker_and_gets_workers_without_log_servers(monkeypatch, tmp_path):
    from seqops.platform.launcher import airflow_env, services

    production = {
        "SEQOPS_HOME": str(tmp_path),
        "SEQOPS_PROFILE": "production",
        "SEQOPS_AIRFLOW_DB_URL": "postgresql+psycopg://u:p@127.0.0.1:5432/airflow",
        "SEQOPS_MLFLOW_TRACKING_URI": "postgresql+psycopg://u:p@127.0.0.1:5432/mlflow",
        "SEQOPS_FEAST_REGISTRY_URL": "postgresql://u:p@127.0.0.1:5432/feast",
        "SEQOPS_FEAST_OFFLINE_PG_URL": "postgresql://u:p@127.0.0.1:5432/feast",
        "SEQOPS_FEAST_ONLINE_REDIS": "127.0.0.1:6379",
        "SEQOPS_AIRFLOW_EXECUTOR": "CeleryExecutor",
    }
    for key, value in production.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match="SEQOPS_CELERY_BROKER_URL"):
        Settings()
    monkeypatch.setenv("SEQOPS_CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("SEQOPS_CELERY_WORKERS", "3")
    settings = Settings()
    env = airflow_env(settings)
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg://u:p@127.0.0.1:5432/airflow"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://")
    workers = [s for s in services(settings) if s.name.startswith("celery-worker-")]
    assert [w.name for w in workers] == ["celery-worker-1", "celery-worker-2", "celery-worker-3"]
    assert all("--skip-serve-logs" in w.argv for w in workers)  # no log server on 0.0.0.0:8793
    assert len({w.argv[w.argv.index("--celery-hostname") + 1] for w in workers}) == 3


def test_a_bad_setting_is_named_by_the_command_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "SEQOPS_HOME": str(tmp_path),
        "SEQOPS_OBJECT_STORE_ROOT": "gs://bucket/x",
        "SEQOPS_PROMOTION_MIN_PAIRS": "0",
    }
    seqops = str(Path(sys.executable).with_name("seqops"))
    out = subprocess.run([seqops, "forecast", "route"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "error: SEQOPS_OBJECT_STORE_ROOT='gs://bucket/x': Value error, must be an s3://bucket/prefix" in (
        out.stderr
    )
    assert "error: SEQOPS_PROMOTION_MIN_PAIRS='0': Input should be greater than 0" in out.stderr
    incomplete = subprocess.run(
        [seqops, "forecast", "route"],
        env={**os.environ, "SEQOPS_HOME": str(tmp_path), "SEQOPS_PROFILE": "production"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert incomplete.returncode == 2 and "error: settings: Value error, production profile needs" in (
        incomplete.stderr
    )


def test_settings_paths_all_live_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path))
    settings = Settings()
    for path in (
        settings.landing_dir,
        settings.raw_dir,
        settings.curated_dir,
        settings.quarantine_dir,
        settings.features_dir,
        settings.airflow_home,
        settings.mlflow_dir,
        settings.run_dir,
    ):
        assert path.is_relative_to(tmp_path)
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert not any(tmp_path.iterdir())  # reading settings creates nothing


@pytest.mark.slow
def test_platform_up_and_down(tmp_path):
    env = {
        **os.environ,
        "SEQOPS_HOME": str(tmp_path / "home"),
        "SEQOPS_AIRFLOW_PORT": str(_free_port()),
        "SEQOPS_MLFLOW_PORT": str(_free_port()),
        "SEQOPS_SERVING_PORT": str(_free_port()),
        "SEQOPS_EVIDENTLY_PORT": str(_free_port()),
    }
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        del env[key]  # the platform derives its own Airflow environment from the home
    seqops = str(Path(sys.executable).with_name("seqops"))
    up = subprocess.run(
        [seqops, "platform", "up", "--no-demo"], env=env, capture_output=True, text=True, timeout=420
    )
    settings = Settings(
        home=tmp_path / "home",
        airflow_port=int(env["SEQOPS_AIRFLOW_PORT"]),
        mlflow_port=int(env["SEQOPS_MLFLOW_PORT"]),
        serving_port=int(env["SEQOPS_SERVING_PORT"]),
        evidently_port=int(env["SEQOPS_EVIDENTLY_PORT"]),
    )
    from seqops import platform

    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert "login admin / " in up.stdout
        records = platform.running(settings)
        assert set(records) == {
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            "mlflow",
            "serving",
            "drift-ui",
        }
        pids = {
            p.pid
            for r in records.values()
            for p in [psutil.Process(r["pid"]), *psutil.Process(r["pid"]).children(recursive=True)]
        }

        airflow = platform.airflow_url(settings)
        mlflow = platform.mlflow_url(settings)
        # Every web surface asks for a login.
        assert httpx.get(f"{airflow}/api/v2/dags").status_code == 401
        assert httpx.get(f"{mlflow}/api/2.0/mlflow/experiments/search?max_results=1").status_code == 401
        serving = platform.serving_url(settings)
        assert httpx.post(f"{serving}/v1/forecast", json={}).status_code == 401
        assert httpx.get(f"{serving}/metrics").status_code == 401
        assert httpx.get(f"{serving}/healthz").status_code == 200
        assert httpx.get(f"{serving}/readyz").status_code == 503  # no model registered yet
        drift = platform.drift_ui_url(settings)
        assert httpx.get(f"{drift}/").status_code == 401  # the Evidently UI, behind the login
        assert httpx.get(f"{drift}/api/projects").status_code == 401
        assert httpx.get(f"{drift}/healthz").status_code == 200
        password = platform.admin_password(settings)
        assert httpx.get(f"{drift}/api/projects", auth=("admin", password)).status_code == 200
        assert httpx.get(f"{drift}/api/projects", auth=("admin", "wrong")).status_code == 401
        assert (
            httpx.get(
                f"{mlflow}/api/2.0/mlflow/experiments/search?max_results=1", auth=("admin", password)
            ).status_code
            == 200
        )
        from seqops.platform.airflow_client import AirflowClient

        client = AirflowClient(airflow, "admin", password)
        assert client.import_errors() == []
        dag_ids = {d["dag_id"] for d in client.dags()}
        from seqops.core.resources import dags_folder

        assert dag_ids == {
            "ingest_sequences",
            "materialize_features",
            "train_forecaster",
            "forecast_batch",
            "promote_forecaster",
            "monitor_drift",
            "rollback_forecaster",
        }
        helpers = {"assets", "__init__", "operators", "plugin"}
        assert {p.stem for p in dags_folder().glob("*.py")} == dag_ids | helpers
        # The drift report link is registered with the api-server (the seqops plugin).
        plugins = client.request("GET", "/api/v2/plugins")["plugins"]
        seqops_plugin = [p for p in plugins if p["name"] == "seqops"]
        assert seqops_plugin and "DriftReportLink" in str(seqops_plugin[0]["operator_extra_links"])
        # Nothing listens beyond loopback.
        for conn in psutil.net_connections(kind="tcp"):
            if conn.pid in pids and conn.status == psutil.CONN_LISTEN:
                assert conn.laddr.ip.startswith("127."), f"pid {conn.pid} listens on {conn.laddr}"
    finally:
        down = subprocess.run(
            [seqops, "platform", "down"], env=env, capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0
    assert platform.running(settings) == {}
    assert [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"] == []
