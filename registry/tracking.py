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


@contextmanager
def tracked_run(
    settings: Settings, dataset: str, *, run_name: str | None = None, run_id: str | None = None
) -> Iterator[RunLog]:
    """Start (or, with ``run_id``, resume) a run in ``dataset``'s experiment of this home's store."""
    import mlflow

    from seqops.registry.registry import Registry

    registry = Registry(settings)  # points the fluent API at this home's tracking store
    experiment_id = registry.experiment_id(dataset)
    with mlflow.start_run(
        run_id=run_id, experiment_id=None if run_id else experiment_id, run_name=run_name
    ) as run:
        yield RunLog(run_id=run.info.run_id, experiment_id=run.info.experiment_id)
