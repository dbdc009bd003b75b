"""MLflow tracking for seqops: the tracking store, experiments and runs (the registry package owns MLflow).

Flows log through :func:`tracked_run`, which yields a :class:`RunLog` bound to one run of the
dataset's experiment, so nothing outside ``seqops.registry`` imports ``mlflow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from seqops.core.settings import Settings


def init_tracking_store(settings: Settings) -> None:
    """Create the tracking store's schema once, before any parallel use (docs/STACK_NOTES.md).

    Runs in a child process: MLflow's schema migration configures logging and SQLAlchemy globally.
    """
    if settings.mlflow_tracking_uri is None:
        (settings.mlflow_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    code = (
        "import mlflow; from mlflow.tracking import MlflowClient; "
        f"MlflowClient({settings.tracking_uri!r}).search_experiments()"
    )
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)


@dataclass(frozen=True)
class RunLog:
    """The active MLflow run: what a flow logs to it."""

    run_id: str
    experiment_id: str

    def set_tags(self, tags: dict[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_params(self, params: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        mlflow.log_metrics(metrics, step=step)

    def log_dict(self, obj: dict[str, Any], artifact_file: str) -> None:
        import mlflow

        mlflow.log_dict(obj, artifact_file)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(local_dir, artifact_path)


def drift_experiment(dataset: str) -> str:
    """The experiment that holds ``dataset``'s drift checks (one run per check)."""
    return f"seqops-{dataset}-drift"


@contextmanager
def tracked_run(
    settings: Settings,
    dataset: str,
    *,
    run_name: str | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
) -> Iterator[RunLog]:
    """Start (or, with ``run_id``, resume) a run in ``dataset``'s experiment of this home's store.

    ``experiment`` names another experiment (for example :func:`drift_experiment`).
    """
    import mlflow

    from seqops.registry.registry import Registry

    registry = Registry(settings)  # points the fluent API at this home's tracking store
    experiment_id = registry.experiment_id(dataset, name=experiment)
    with mlflow.start_run(
        run_id=run_id, experiment_id=None if run_id else experiment_id, run_name=run_name
    ) as run:
        yield RunLog(run_id=run.info.run_id, experiment_id=run.info.experiment_id)


def find_runs(
    settings: Settings, experiment: str, *, where: str = "", limit: int = 200
) -> list[dict[str, Any]]:
    """Runs of ``experiment`` (newest first) as plain dicts: run_id, start_time, tags, params, metrics.

    ``where`` is an MLflow search filter (``"tags.seqops.dataset = 'pjm'"``). An experiment that does
    not exist yet has no runs.
    """
    from seqops.registry.registry import Registry

    client = Registry(settings).client
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id], filter_string=where, max_results=limit, order_by=["attributes.start_time DESC"]
    )
    return [
        {
            "run_id": r.info.run_id,
            "start_time": r.info.start_time,
            "status": r.info.status,
            "tags": dict(r.data.tags),
            "params": dict(r.data.params),
            "metrics": dict(r.data.metrics),
            "artifact_uri": r.info.artifact_uri,
        }
        for r in runs
    ]


def download(settings: Settings, run_id: str, path: str, dst: str | None = None) -> str:
    """A run's artifact (file or folder) as a local path."""
    from seqops.registry.registry import Registry

    return Registry(settings).client.download_artifacts(run_id, path, dst)
