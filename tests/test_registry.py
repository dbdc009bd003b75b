"""The MLflow registry policy on a real SQLite tracking store: aliases, never stages."""

from __future__ import annotations

import mlflow
import pytest


@pytest.fixture()
def registry(home, tmp_path):
    from seqops.registry.registry import Registry
    from seqops.registry.tracking import init_tracking_store

    init_tracking_store(home)
    return Registry(home)


def _logged_run(registry, tmp_path) -> tuple[str, str]:
    with mlflow.start_run(experiment_id=registry.experiment_id("demo")) as run:
        path = tmp_path / f"{run.info.run_id}.txt"
        path.write_text("weights")
        mlflow.log_artifact(str(path), "model")
    return run.info.run_id, f"runs:/{run.info.run_id}/model"


def test_every_new_version_is_the_challenger_pending_approval(registry, tmp_path):
    from seqops.registry.registry import CHALLENGER, CHAMPION

    run1, src1 = _logged_run(registry, tmp_path)
    first = registry.register("demo", run1, src1, {"backtest_model_mase": "0.9"})
    assert first.aliases == [CHALLENGER]
    assert first.tags == {"backtest_model_mase": "0.9", "validation_status": "pending_approval"}
    assert registry.by_alias("demo", CHAMPION) is None  # the first model is not promoted by itself

    registry.set_alias("demo", CHAMPION, first.version)
    run2, src2 = _logged_run(registry, tmp_path)
    second = registry.register("demo", run2, src2, {})
    assert registry.by_alias("demo", CHALLENGER).version == second.version == "2"
    assert registry.by_alias("demo", CHAMPION).version == "1"
    assert [(v.version, v.aliases) for v in registry.versions("demo")] == [
        ("2", [CHALLENGER]),
        ("1", [CHAMPION]),
    ]


def test_experiment_is_created_once_with_an_explicit_artifact_location(registry, home):
    first = registry.experiment_id("demo")
    assert registry.experiment_id("demo") == first
    location = registry.client.get_experiment(first).artifact_location
    assert location.startswith(home.artifact_root)
