"""`seqops replay --inline`: held-back hours land as live batches; the clock, the forecasts and the
actuals follow, through the real ingest, Feast, MLflow and the prediction log."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_replay_lands_held_back_days_forecasts_each_and_joins_the_actuals(tmp_path, monkeypatch, pjm_source):
    from seqops.cli import app
    from seqops.core.clock import now
    from seqops.core.importers import import_pjm
    from seqops.core.settings import Settings
    from seqops.flows import train as flow
    from seqops.flows.features import refresh
    from seqops.flows.ingest import ingest_file
    from seqops.flows.replay import replay_file
    from seqops.registry.tracking import init_tracking_store
    from seqops.serving.log import PredictionLog

    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEQOPS_FEATURES_DATASETS", "pjm")
    settings = Settings()
    report = import_pjm(
        pjm_source,
        tmp_path / "batches",
        zones=["AEP", "DUQ"],
        since="2018-06-01",
        period="all",
        hold_back_days=3,
        hold_back_path=replay_file(settings, "pjm"),
    )
    assert report.rows_held_back == 2 * 72
    for name in report.batches:
        assert ingest_file(settings, tmp_path / "batches" / name, "pjm").accepted
    refresh(settings, "pjm")
    init_tracking_store(settings)
    trained = flow.train(
        "pjm", overrides={"max_epochs": 1, "time_budget_s": 20}, history_days=30, settings=settings,
        progress=lambda _: None,
    )  # fmt: skip
    flow.register(flow.backtest(trained, settings=settings, progress=lambda _: None), settings=settings)

    result = CliRunner().invoke(app, ["replay", "--inline", "--steps", "5", "--hours", "24"])
    assert result.exit_code == 0, result.output[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["hours_left"] == 0
    assert "nothing left to land" in result.stderr  # 3 days = 3 steps of 24 hours
    import pandas as pd

    newest = pd.to_datetime(pd.read_csv(replay_file(settings, "pjm"))["timestamp"], utc=True).max()
    assert now(settings) == newest.to_pydatetime()  # the platform clock is the newest hour landed

    log = PredictionLog(settings).rows(dataset="pjm", source="batch")
    origins = sorted({r["origin"] for r in log})
    assert len(origins) == 3 and {r["series_id"] for r in log} == {"AEP", "DUQ"}
    joined = [r for r in log if r["actual"] is not None]
    # each step's forecasts get their actuals when the next step lands: all but the last step's
    assert {r["origin"] for r in joined} == set(origins[:-1])
    assert all(len(r["actual"]) == 24 for r in joined)
