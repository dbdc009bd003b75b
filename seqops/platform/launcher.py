"""The local platform: initialise the embedded stack, start and stop its processes by pid.

``seqops platform up`` starts, as separate processes bound to 127.0.0.1 (never ``airflow
standalone``, whose log servers bind 0.0.0.0): the Airflow api-server, scheduler, dag-processor and
triggerer (LocalExecutor; with the CeleryExecutor also ``SEQOPS_CELERY_WORKERS`` Celery workers, their
log servers off), and the MLflow tracking server with its login (basic-auth app). Each pid
is recorded with its start time under ``SEQOPS_HOME/run``; ``down`` stops exactly those process
trees and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqops.core.resources import dags_folder, demo_dir
from seqops.core.secrets import admin_password, stored_secret, user_password
from seqops.core.settings import Settings
from seqops.flows.replay import replay_file
from seqops.platform.waits import poll

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    health_url: str | None


def _bin(name: str) -> str:
    """An executable of this environment (the venv's), falling back to PATH."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def airflow_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.airflow_port}"


def mlflow_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.mlflow_port}"


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for every Airflow process and task of this home (also used by the tests)."""

    def fernet() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    home = settings.airflow_home
    db_url = (
        settings.airflow_db_url.get_secret_value()
        if settings.airflow_db_url
        else f"sqlite:///{(home / 'airflow.db').resolve()}"
    )
    env = {
        "SEQOPS_HOME": str(settings.home.resolve()),
        "SEQOPS_PROFILE": settings.profile,
        "AIRFLOW_HOME": str(home.resolve()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": settings.airflow_executor,
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__FERNET_KEY": stored_secret(settings, "airflow_fernet_key", fernet),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, role in settings.airflow_roles().items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url(settings)}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": airflow_url(settings),
        "AIRFLOW__API__SECRET_KEY": stored_secret(
            settings, "airflow_secret_key", lambda: secrets.token_hex(32)
        ),
        "AIRFLOW__API_AUTH__JWT_SECRET": stored_secret(
            settings, "airflow_jwt_secret", lambda: secrets.token_hex(32)
        ),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
    }
    if db_url.startswith("postgresql+psycopg://"):
        # Airflow 3 also opens an async engine; psycopg 3 serves both (no asyncpg needed)
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = db_url.replace(
            "+psycopg://", "+psycopg_async://", 1
        )
    if settings.celery_broker_url:
        env["AIRFLOW__CELERY__BROKER_URL"] = settings.celery_broker_url.get_secret_value()
    if settings.airflow_executor == "CeleryExecutor":
        # task states go to the metadata database (Celery's SQLAlchemy result backend)
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{db_url}"
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(settings.celery_worker_concurrency)
    return env


def _write_passwords(settings: Settings) -> None:
    path = settings.airflow_home / "passwords.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({user: user_password(settings, user) for user in settings.airflow_roles()}))
    path.chmod(0o600)


def _mlflow_auth_config(settings: Settings) -> Path:
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    path = settings.mlflow_dir / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{(settings.mlflow_dir / 'basic_auth.db').resolve()}\n"
        f"admin_username = {settings.admin_user}\n"
        f"admin_password = {admin_password(settings)}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    path.chmod(0o600)
    return path


def services(settings: Settings) -> list[Service]:
    airflow = _bin("airflow")
    return [
        Service(
            "api-server",
            [airflow, "api-server", "-H", settings.host, "-p", str(settings.airflow_port)],
            f"{airflow_url(settings)}/api/v2/monitor/health",
        ),
        Service("scheduler", [airflow, "scheduler", "--skip-serve-logs"], None),
        Service("dag-processor", [airflow, "dag-processor"], None),
        Service("triggerer", [airflow, "triggerer", "--skip-serve-logs"], None),
        *celery_workers(settings),
        Service(
            "mlflow",
            [
                _bin("mlflow"),
                "server",
                "--host",
                settings.host,
                "--port",
                str(settings.mlflow_port),
                "--backend-store-uri",
                settings.tracking_uri,
                "--default-artifact-root",
                settings.artifact_root,
                "--workers",
                "1",
                "--app-name",
                "basic-auth",
            ],
            f"{mlflow_url(settings)}/health",
        ),
        Service(
            "serving",
            [
                _bin("uvicorn"),
                "--factory",
                "seqops.serving.app:create_app",
                "--host",
                settings.host,
                "--port",
                str(settings.serving_port),
                "--workers",
                str(settings.serving_workers),
                "--no-access-log",  # /metrics counts requests; the prediction log holds each forecast
            ],
            f"{serving_url(settings)}/healthz",
        ),
        Service(
            "drift-ui",
            [
                _bin("uvicorn"),
                "--factory",
                "seqops.monitoring.ui:create_app",
                "--host",
                settings.host,
                "--port",
                str(settings.evidently_port),
                "--workers",
                "1",
            ],
            f"{drift_ui_url(settings)}/healthz",
        ),
    ]


def celery_workers(settings: Settings) -> list[Service]:
    """The CeleryExecutor's workers on this machine, each with its own Celery hostname and pid file."""
    if settings.airflow_executor != "CeleryExecutor":
        return []
    import platform

    return [
        Service(
            f"celery-worker-{i}",
            [
                _bin("airflow"),
                "celery",
                "worker",
                "--celery-hostname",
                f"seqops-worker-{i}@{platform.node()}",
                "--concurrency",
                str(settings.celery_worker_concurrency),
                "--pid",
                str(settings.run_dir / f"celery-worker-{i}.celery.pid"),
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ],
            None,
        )
        for i in range(1, settings.celery_workers + 1)
    ]


def serving_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.serving_port}"


def drift_ui_url(settings: Settings) -> str:
    """The Evidently UI and the drift summary pages, behind the admin login."""
    return f"http://{settings.host}:{settings.evidently_port}"


def init(settings: Settings, progress: Progress = print) -> None:
    """Create the home, its secrets and databases. Idempotent."""
    for folder in (
        settings.home,
        settings.data_dir,
        settings.run_dir,
        settings.features_dir,
        settings.mlflow_dir,
        settings.airflow_home,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    _write_passwords(settings)
    env = {**os.environ, **airflow_env(settings)}
    progress("migrating the Airflow metadata database ...")
    subprocess.run(
        [_bin("airflow"), "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # A tracking store the processes open as a database (SQLite embedded, PostgreSQL in the local
    # production profile) gets its schema now: the MLflow server and the service's workers would
    # otherwise race to create it on first use (seen: CREATE TABLE alembic_version failing in one).
    if not settings.tracking_uri.startswith(("http://", "https://")):
        progress("initialising the MLflow tracking store ...")
        from seqops.registry.tracking import init_tracking_store

        init_tracking_store(settings)


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def _alive(record: dict) -> bool:
    import psutil

    try:
        proc = psutil.Process(record["pid"])
        return abs(proc.create_time() - record["create_time"]) < 1.0 and proc.status() != "zombie"
    except psutil.NoSuchProcess:
        return False


def running(settings: Settings) -> dict[str, dict]:
    """Services of this home that are running, by name (pid files checked against start times)."""
    out = {}
    for service in services(settings):
        path = _pidfile(settings, service.name)
        if path.exists():
            record = json.loads(path.read_text())
            if _alive(record):
                out[service.name] = record
    return out


def start(settings: Settings, progress: Progress = print) -> None:
    import psutil

    env = {**os.environ, **airflow_env(settings)}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(_mlflow_auth_config(settings))
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["DO_NOT_TRACK"] = "1"  # the Evidently UI's usage telemetry: off
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = stored_secret(
        settings, "mlflow_flask_secret_key", lambda: secrets.token_hex(32)
    )
    already = running(settings)
    for service in services(settings):
        if service.name in already:
            progress(f"{service.name} already running (pid {already[service.name]['pid']})")
            continue
        log = (settings.run_dir / f"{service.name}.log").open("ab")
        proc = subprocess.Popen(
            service.argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=settings.home,
            start_new_session=True,
        )
        record = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "argv": service.argv,
        }
        _pidfile(settings, service.name).write_text(json.dumps(record))
        progress(f"started {service.name} (pid {proc.pid}, log {settings.run_dir / (service.name + '.log')})")


def wait_healthy(settings: Settings, timeout: float = 180, progress: Progress = print) -> None:
    import httpx

    from seqops.platform.airflow_client import AirflowClient

    client = AirflowClient(airflow_url(settings), settings.admin_user, admin_password(settings))
    pending = {"airflow": False, "mlflow": False, "serving": False, "drift-ui": False}
    probes = {
        "mlflow": f"{mlflow_url(settings)}/health",
        "serving": f"{serving_url(settings)}/healthz",
        "drift-ui": f"{drift_ui_url(settings)}/healthz",
    }

    def answering() -> bool | None:
        gone = [s.name for s in services(settings) if s.name not in running(settings)]
        if gone:
            raise RuntimeError(f"{', '.join(gone)} exited during start-up; see {settings.run_dir}/<name>.log")
        pending["airflow"] = pending["airflow"] or client.healthy()
        for name, url in probes.items():
            if not pending[name]:
                try:
                    pending[name] = httpx.get(url, timeout=5).status_code == 200
                except httpx.HTTPError:
                    pass
        return True if all(pending.values()) else None

    poll(
        answering,
        timeout=timeout,
        every=2,
        timed_out=lambda: (
            f"{', '.join(k for k, ok in pending.items() if not ok)} did not answer within "
            f"{timeout:.0f} s; see {settings.run_dir}"
        ),
    )
    progress("Airflow, MLflow, the prediction service and the drift report server answer")


def stop(settings: Settings, progress: Progress = print, grace: float = 20) -> list[str]:
    """Stop every process tree that ``start`` recorded for this home, and only those."""
    import psutil

    stopped = []
    for service in reversed(services(settings)):
        path = _pidfile(settings, service.name)
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        if _alive(record):
            root = psutil.Process(record["pid"])
            tree = [root, *root.children(recursive=True)]
            try:
                os.killpg(record["pid"], signal.SIGTERM)  # its own session: the whole group
            except ProcessLookupError:
                pass
            for proc in tree:
                try:
                    proc.terminate()
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(tree, timeout=grace)
            for proc in alive:
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=5)
            stopped.append(service.name)
            progress(f"stopped {service.name} (pid {record['pid']}, {len(tree)} processes)")
        path.unlink()
    return stopped


def load_demo(settings: Settings, progress: Progress = print) -> int:
    """Import the shipped PJM demo into the landing zone, once; return the batches waiting."""
    from seqops.core.importers import import_pjm
    from seqops.core.store import CuratedStore, LandingZone

    if CuratedStore(settings).series("pjm"):
        progress("demo data already curated: nothing to load")
        return 0
    incoming = LandingZone(settings).incoming("pjm")
    report = import_pjm(
        demo_dir(),
        incoming,
        period="year",
        report_path=settings.data_dir / "reports" / "imports" / "pjm_demo.json",
        tz=settings.dataset("pjm").source_timezone or "UTC",
        hold_back_days=settings.replay_days,
        hold_back_path=replay_file(settings, "pjm"),
    )
    progress(
        f"imported PJM demo: {report.rows_read} raw rows -> {report.rows_written} canonical rows in "
        f"{len(report.batches)} batches; repairs {report.repairs}; the last {settings.replay_days} days "
        f"({report.rows_held_back} rows) held back for `seqops replay`"
    )
    return len(report.batches)


def up(settings: Settings, *, demo: bool = True, progress: Progress = print) -> dict:
    """Initialise, start everything, wait until it answers, and ingest the demo through Airflow."""
    from seqops.platform.airflow_client import AirflowClient

    init(settings, progress)
    pending_batches = load_demo(settings, progress) if demo else 0
    start(settings, progress)
    wait_healthy(settings, progress=progress)
    client = AirflowClient(airflow_url(settings), settings.admin_user, admin_password(settings))
    progress("waiting for the dag-processor to parse the DAGs ...")
    ignored = set((dags_folder() / ".airflowignore").read_text().replace("\\.", ".").split())
    expected = {p.stem for p in dags_folder().glob("*.py") if p.name not in ignored}
    seen: set[str] = set()

    def all_parsed() -> set[str] | None:
        seen.clear()
        seen.update(d["dag_id"] for d in client.dags())
        errors = client.import_errors()
        if errors:
            detail = "; ".join(
                f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors
            )
            raise RuntimeError(f"DAG import errors: {detail}")
        return set(seen) if expected <= seen else None

    parsed = poll(
        all_parsed,
        timeout=180,
        every=2,
        timed_out=lambda: f"DAGs not parsed within 180 s: missing {sorted(expected - seen)}",
    )
    for dag_id in sorted(parsed):
        client.set_paused(dag_id, False)
    result = {"dags": sorted(parsed)}
    if pending_batches:
        run_id = client.trigger("ingest_sequences")
        progress(f"ingesting {pending_batches} demo batches through Airflow (ingest_sequences run {run_id})")
        result["demo_ingest"] = wait_for_ingestion(settings, client, "pjm", progress=progress)
        progress("the curated Asset event scheduled materialize_features: waiting for the features ...")
        result["demo_features"] = wait_for_asset_run(
            settings, client, "materialize_features", progress=progress
        )
    return result


def wait_for_ingestion(
    settings: Settings, client, dataset: str, *, timeout: float = 1800, progress: Progress = print
) -> dict:
    """Wait until no ingest_sequences run is active and report every landed batch's verdict.

    Whichever run claims the batches (the one just triggered, or a scheduled one that started
    when the DAG was unpaused), progress is read from the verdicts the runs write.
    """
    from seqops.core.store import LandingZone, Quarantine, RawStore
    from seqops.flows.ingest import run_summary

    last = [""]

    def done() -> dict | None:
        refs = [r.to_dict() for r in RawStore(settings).refs(dataset)]
        summary = run_summary(settings, refs)
        waiting = len(LandingZone(settings).pending(dataset))
        active = client.request(
            "GET", "/api/v2/dags/ingest_sequences/dagRuns", params={"state": ["queued", "running"]}
        )["total_entries"]
        line = (
            f"  {len(summary['published'])} published, {len(summary['rejected'])} quarantined, "
            f"{len(summary['unfinished']) + waiting} to go"
        )
        if line != last[0]:
            progress(line)
            last[0] = line
        if not active and not waiting and not summary["unfinished"]:
            progress(summary["text"])
            if summary["rejected"]:
                raise RuntimeError(
                    f"{len(summary['rejected'])} demo batches were quarantined: see "
                    f"{Quarantine(settings).location(dataset, '')} and "
                    f"{airflow_url(settings)}/dags/ingest_sequences"
                )
            return {k: v for k, v in summary.items() if k != "text"}
        return None

    return poll(
        done,
        timeout=timeout,
        every=3,
        timed_out=lambda: (
            f"demo ingestion did not finish within {timeout:.0f} s: see {airflow_url(settings)}"
        ),
    )


def wait_for_asset_run(
    settings: Settings,
    client,
    dag_id: str,
    *,
    timeout: float = 1800,
    progress: Progress = print,
    after: str | None = None,
) -> str:
    """Wait for the asset-triggered run of ``dag_id`` (one queued after ``after``, ISO) to finish."""
    last = [""]

    def finished() -> str | None:
        params = {"order_by": "-run_after", "limit": 1}
        if after:
            params["run_after_gte"] = after
        runs = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)["dag_runs"]
        if runs:
            run = runs[0]
            tis = client.task_instances(dag_id, run["dag_run_id"])
            done = sum(ti["state"] in {"success", "failed", "skipped", "upstream_failed"} for ti in tis)
            line = f"  {dag_id} {run['state']}: {done}/{len(tis)} task instances finished"
            if line != last[0]:
                progress(line)
                last[0] = line
            if run["state"] in {"success", "failed"}:
                if run["state"] == "failed":
                    raise RuntimeError(
                        f"{dag_id} run {run['dag_run_id']} failed: see {airflow_url(settings)}/dags/{dag_id}"
                    )
                return run["state"]
        return None

    return poll(
        finished,
        timeout=timeout,
        every=3,
        timed_out=lambda: (
            f"{dag_id} did not finish within {timeout:.0f} s: see {airflow_url(settings)}/dags/{dag_id}"
        ),
    )


def replay(
    settings: Settings, dataset: str = "pjm", *, steps: int = 7, hours: int = 24, progress: Progress = print
) -> list[dict]:
    """Replay held-back data through the running platform: land a batch, move the clock, and wait
    for ``ingest_sequences``, the asset-triggered ``materialize_features`` and ``forecast_batch``."""
    from datetime import UTC, datetime

    from seqops.core.clock import set_clock
    from seqops.flows.replay import next_batch
    from seqops.platform.airflow_client import AirflowClient

    client = AirflowClient(airflow_url(settings), settings.admin_user, admin_password(settings))
    done = []
    for k in range(steps):
        began = datetime.now(UTC).isoformat()
        landed = next_batch(settings, dataset, hours)
        if landed is None:
            progress("replay: nothing left to land")
            break
        path, newest = landed
        set_clock(settings, newest)
        progress(f"replay step {k + 1}/{steps}: {path.name}, clock {newest.isoformat()}")
        client.trigger("ingest_sequences", {"dataset": dataset})
        ingest = wait_for_ingestion(settings, client, dataset, progress=progress)
        features = wait_for_asset_run(
            settings, client, "materialize_features", progress=progress, after=began
        )
        forecast = wait_for_asset_run(settings, client, "forecast_batch", progress=progress, after=began)
        done.append(
            {
                "batch": path.name,
                "clock": newest.isoformat(),
                "ingest": ingest["rows_accepted"],
                "features": features,
                "forecast": forecast,
            }
        )
    return done
