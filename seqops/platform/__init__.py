"""The local platform: the launcher (``seqops platform up|down|status``) and the Airflow REST client.

An entry point: nothing in seqops imports it except the CLI.
"""

from seqops.platform.launcher import (
    admin_password,
    airflow_env,
    airflow_url,
    drift_ui_url,
    init,
    load_demo,
    mlflow_url,
    replay,
    running,
    services,
    serving_url,
    start,
    stop,
    up,
    wait_for_asset_run,
    wait_for_ingestion,
    wait_healthy,
)

__all__ = [
    "admin_password",
    "airflow_env",
    "airflow_url",
    "drift_ui_url",
    "init",
    "load_demo",
    "mlflow_url",
    "replay",
    "running",
    "services",
    "serving_url",
    "start",
    "stop",
    "up",
    "wait_for_asset_run",
    "wait_for_ingestion",
    "wait_healthy",
]
