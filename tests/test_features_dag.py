"""materialize_features: the task graph as designed, and a real ``dag.test()`` on the embedded stack."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "materialize_features.py"))
    assert bag.import_errors == {}
    return bag.dags["materialize_features"]


def test_task_graph(dag):
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert set(dag.task_ids) == {
        "datasets",
        "build_windows",
        "apply",
        "materialize",
        "parity",
        "emit_features",
    }
    assert edges == {
        ("datasets", "build_windows"),
        ("build_windows", "apply"),
        ("build_windows", "materialize"),
        ("apply", "materialize"),
        ("materialize", "parity"),
        ("parity", "emit_features"),
    }


def test_scheduled_by_curated_and_emits_features(dag):
    from seqops.dags.assets import CURATED, FEATURES

    assert [a.uri for a in dag.timetable.asset_condition.objects] == [CURATED.uri]
    assert [o.uri for o in dag.get_task("emit_features").outlets] == [FEATURES.uri]
    assert dag.get_task("parity").retries == 0  # a mismatch is a verdict, not a flake
    assert dag.catchup is False and dag.max_active_runs == 1


@pytest.mark.slow
def test_dag_run_builds_applies_materializes_checks_and_emits(airflow_db, monkeypatch, dag):
    """The whole pipeline on synthetic curated data (~60 s: Feast import and apply in-process)."""
    from test_features import synthetic_frames, write_batch

    from seqops.core.settings import get_settings

    monkeypatch.setenv("SEQOPS_FEATURES_DATASETS", "synth")
    monkeypatch.setenv("SEQOPS_DATASETS_FILE", str(Path(__file__).with_name("datasets_synth.toml")))
    settings = get_settings()
    first, correction = synthetic_frames()
    write_batch(settings, "synth", "b1", first, datetime(2024, 2, 1, tzinfo=UTC))
    write_batch(settings, "synth", "b2", correction, datetime(2024, 2, 2, tzinfo=UTC))

    run = dag.test(run_conf={"dataset": "synth", "parity_sample": 6})

    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert states == {
        ("datasets", -1): "success",
        ("build_windows", 0): "success",
        ("apply", -1): "success",
        ("materialize", 0): "success",
        ("parity", 0): "success",
        ("emit_features", 0): "success",
    }
    from seqops.features import store

    online = store.read_online(
        "synth", ["s0"], as_of=datetime(2024, 1, 17, 15, tzinfo=UTC), settings=get_settings()
    )
    assert online.status == ("present",) and online.x[0][-1] == 5399.0

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == "seqops://features/")
        ).all()
    assert {"datasets": ["synth"], "parity_samples": 6} in extras


def test_datasets_come_from_the_param_or_the_curated_events(dag):
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    pick = dag.get_task("datasets").python_callable
    events = {
        "seqops_curated": [
            SimpleNamespace(extra={"datasets": ["pjm"], "rows": 10}),  # what ingest_sequences emits
            SimpleNamespace(extra={"dataset": "m4_hourly"}),  # the single-dataset form
            SimpleNamespace(extra=None),
        ]
    }
    assert pick(params={"dataset": None}, triggering_asset_events=events) == ["m4_hourly", "pjm"]
    assert pick(params={"dataset": "synth"}, triggering_asset_events=events) == ["synth"]
    with pytest.raises(AirflowSkipException):
        pick(params={"dataset": None}, triggering_asset_events={})
