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


def test_promote_moves_champion_once_keeps_the_old_for_rollback_and_resets_the_route(registry, tmp_path):
    from seqops.registry.registry import (
        CHALLENGER,
        CHAMPION,
        PREVIOUS,
        Route,
        get_route,
        promote,
        reject,
        rollback,
        set_route,
    )

    versions = []
    for _ in range(4):
        run, src = _logged_run(registry, tmp_path)
        versions.append(registry.register("demo", run, src, {}).version)
    promote(registry, "demo", "1", approved_by="alice", evidence_run_id="r1")
    set_route(registry, "demo", Route(mode="canary", canary_share=0.2))
    promote(registry, "demo", "2", approved_by="bob", evidence_run_id="r2")
    two = registry.by_alias("demo", CHAMPION)
    assert two.version == "2" and registry.by_alias("demo", PREVIOUS).version == "1"
    assert (two.tags["validation_status"], two.tags["approved_by"], two.tags["evidence_run_id"]) == (
        "approved",
        "bob",
        "r2",
    )
    assert get_route(registry, "demo").mode == "champion"
    reject(registry, "demo", "3", reason="backtest gate: worse")
    three = registry.get("seqops-forecaster-demo", "3")
    assert three.tags["validation_status"] == "rejected" and CHALLENGER not in three.aliases
    with pytest.raises(ValueError, match="not pending approval"):
        promote(registry, "demo", "3", approved_by="eve", evidence_run_id="r3")
    # v4 promoted, then regresses: back to the last *approved* one (v2), not "version 3"
    promote(registry, "demo", "4", approved_by="alice", evidence_run_id="r4")
    back = rollback(registry, "demo", reason="canary regression: MASE +18%, p = 0.001")
    assert back.version == "2" and registry.by_alias("demo", CHAMPION).version == "2"
    four = registry.get("seqops-forecaster-demo", "4")
    assert (
        four.tags["validation_status"] == "rolled_back"
        and "canary regression" in four.tags["rollback_reason"]
    )
    rollback(registry, "demo", reason="again")  # from v2 back to v1, the approved one before it
    assert registry.by_alias("demo", CHAMPION).version == "1"
    with pytest.raises(LookupError, match="no earlier approved version"):
        rollback(registry, "demo", reason="nothing older")


@pytest.mark.slow
def test_a_manual_rollback_runs_as_an_airflow_dag_with_its_reason(airflow_db, home, tmp_path):
    """rollback_forecaster through ``dag.test()``: champion back to the last approved version, the
    reason and the requester on the version left; with nothing older it fails saying so."""
    from airflow.dag_processing.dagbag import DagBag

    from seqops.core.resources import dags_folder
    from seqops.registry.registry import CHAMPION, Registry, promote
    from seqops.registry.tracking import init_tracking_store

    init_tracking_store(home)
    registry = Registry(home)
    for version, who in (("1", "alice"), ("2", "bob")):
        run, src = _logged_run(registry, tmp_path)
        assert registry.register("pjm", run, src, {}).version == version
        promote(registry, "pjm", version, approved_by=who, evidence_run_id=f"r{version}")
    dag = DagBag(dag_folder=str(dags_folder() / "rollback_forecaster.py")).dags["rollback_forecaster"]
    run = dag.test(run_conf={"dataset": "pjm", "reason": "live MASE +30% since Monday"})
    assert run.state == "success"
    assert registry.by_alias("pjm", CHAMPION).version == "1"
    left = registry.get("seqops-forecaster-pjm", "2")
    assert left.tags["validation_status"] == "rolled_back"
    assert left.tags["rollback_reason"].startswith("live MASE +30% since Monday (by ")
    assert "rolled_back_by" in left.tags
    again = dag.test(run_conf={"dataset": "pjm", "reason": "once more"})
    assert again.state == "failed"  # v1 has nothing approved before it
    assert registry.by_alias("pjm", CHAMPION).version == "1"
