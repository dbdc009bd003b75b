"""train_forecaster end to end with ``dag.test()``: PJM batches -> Feast -> LSTM -> MLflow registry."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.core.resources import dags_folder

DAG_FILE = dags_folder() / "train_forecaster.py"
G = "each_dataset"  # the mapped task group: one training per requested dataset


@pytest.fixture()
def pjm_features(tmp_path, monkeypatch, pjm_source):
    """A fresh home with two PJM zones (2017-11 on) ingested, windowed, applied and materialized."""
    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "home"))
    from seqops.core.importers import import_pjm
    from seqops.core.settings import get_settings
    from seqops.features.materialize import materialize
    from seqops.features.store import apply
    from seqops.features.tables import build_windows
    from seqops.flows.ingest import ingest_file
    from seqops.registry.tracking import init_tracking_store

    settings = get_settings()
    report = import_pjm(pjm_source, tmp_path / "batches", zones=["AEP", "DUQ"], since="2017-11-01")
    for name in report.batches:
        assert ingest_file(settings, tmp_path / "batches" / name, "pjm").accepted
    build_windows("pjm", settings=settings)
    apply(settings)
    materialize("pjm", settings=settings)
    init_tracking_store(settings)
    return settings


@pytest.mark.slow
def test_train_forecaster_registers_a_challenger(airflow_db, pjm_features):
    from airflow.dag_processing.dagbag import DagBag

    from seqops.registry.packaging import load_bundle, load_for_inference, load_for_training
    from seqops.registry.registry import CHALLENGER, Registry, model_name

    dag = DagBag(dag_folder=str(DAG_FILE)).dags["train_forecaster"]
    run = dag.test(run_conf={"dataset": "pjm", "max_epochs": 2, "time_budget_s": 60, "history_days": 90})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}
    assert set(states) == {
        "requests",
        *(f"{G}.{t}" for t in ("features_ready", "train", "backtest", "register")),
    }
    assert run.state == "success"

    registry = Registry(pjm_features)
    version = registry.by_alias("pjm", CHALLENGER)
    assert version is not None and version.version == "1"
    assert registry.by_alias("pjm", "champion") is None  # the first model also awaits approval
    assert version.tags["validation_status"] == "pending_approval"
    for key in (
        "backtest_model_smape",
        "backtest_model_mase",
        "backtest_seasonal_naive_mase",
        "backtest_naive_mase",
        "backtest_best_baseline",
        "backtest_mase_vs_best_baseline",
        "data_snapshot",
        "data_start",
        "data_end",
        "feature_service",
    ):
        assert version.tags[key], key
    assert version.tags["feature_service"] == "pjm_training"

    client = registry.client
    run_data = client.get_run(version.run_id).data
    assert run_data.tags["seqops.feature_service"] == "pjm_training"
    assert run_data.tags["mlflow.source.git.commit"]
    assert run_data.params["data.snapshot_sha256"] == version.tags["data_snapshot"]
    assert [m.step for m in client.get_metric_history(version.run_id, "val_loss")] == [1, 2]
    assert run_data.tags["seqops.version"] == "0.1.0"
    for key in (
        "backtest.model.smape",
        "backtest.naive.mase",
        "backtest.seasonal_naive.mase",
        "backtest.mase_vs_seasonal_naive",
        "backtest.mase_vs_best_baseline",
    ):
        assert np.isfinite(run_data.metrics[key])
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "backtest")}
    assert "backtest/forecast_vs_actual.png" in artifacts

    # Loadable by alias, for inference and for further training.
    uri = f"models:/{model_name('pjm')}@{CHALLENGER}"
    bundle = load_bundle(uri)
    assert bundle.series_ids == ("AEP", "DUQ")
    model, config = load_for_training(uri)
    assert model.training and config.horizon == 24
    assert load_for_inference(uri).metadata.signature is not None


@pytest.mark.slow
def test_train_forecaster_skips_with_a_reason_before_any_features(airflow_db, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "empty-home"))
    dag = DagBag(dag_folder=str(DAG_FILE)).dags["train_forecaster"]
    run = dag.test(run_conf={"dataset": "pjm"})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states[f"{G}.features_ready"] == "skipped"
    assert states[f"{G}.train"] == states[f"{G}.backtest"] == states[f"{G}.register"] == "skipped"
    assert run.state == "success"
