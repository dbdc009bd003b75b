"""Shared test set-up: one throw-away SEQOPS_HOME (and Airflow home) per test session.

The environment is set in ``pytest_configure``, before any test module imports Airflow, whose
configuration is read once at import time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    session_home = Path(tempfile.mkdtemp(prefix="seqops-test-home-"))
    config._seqops_home = session_home  # type: ignore[attr-defined]
    os.environ["SEQOPS_HOME"] = str(session_home)
    os.environ.pop("SEQOPS_PROFILE", None)
    os.environ.setdefault("SEQOPS_BENCH_DATA_DIR", str(SHARED_DATA))
    from seqops.core.settings import Settings
    from seqops.platform import airflow_env

    os.environ.update(airflow_env(Settings()))
    os.environ["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._seqops_exitstatus = int(exitstatus)  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    home = getattr(config, "_seqops_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)
    # DuckDB's bindings (nanobind) print pages of "leaked instance" noise at interpreter exit,
    # burying pytest's summary. Everything is reported and flushed by now: leave at once.
    status = getattr(config, "_seqops_exitstatus", None)
    if status is not None and not os.environ.get("SEQOPS_TEST_NORMAL_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) in the session home; dag.test() runs against it."""
    from seqops.core.settings import get_settings

    settings = get_settings()
    subprocess.run(
        [str(Path(os.sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return settings.airflow_home


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty SEQOPS_HOME for one test; returns its Settings."""
    from seqops.core.settings import Settings

    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "home"))
    return Settings()


@pytest.fixture(scope="session")
def pjm_source() -> Path:
    """The shipped, compressed PJM demo files."""
    from seqops.core.resources import demo_dir

    return demo_dir()


SERVICES_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "services.sh"


@pytest.fixture(scope="session")
def servers():
    """(PostgreSQL URL, Redis host:port): from the environment, else started by .ci/services.sh."""
    pg, redis = os.environ.get("SEQOPS_SERVICES_PG_URL"), os.environ.get("SEQOPS_SERVICES_REDIS")
    if pg and redis:
        yield pg, redis
        return
    was_running = subprocess.run([str(SERVICES_SCRIPT), "status"], capture_output=True).returncode == 0
    out = subprocess.run([str(SERVICES_SCRIPT), "start"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail(f".ci/services.sh start failed (the production tests need the servers):\n{out.stderr}")
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.stdout.splitlines()
        if line.startswith("export ")
    )
    try:
        yield env["SEQOPS_SERVICES_PG_URL"], env["SEQOPS_SERVICES_REDIS"]
    finally:
        if not was_running:
            subprocess.run([str(SERVICES_SCRIPT), "stop"], capture_output=True, timeout=120)
