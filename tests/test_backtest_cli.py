"""`seqops backtest`: the whole path on one canonical file, in a fresh home."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from seqops.cli import app


@pytest.mark.slow
def test_backtest_on_a_canonical_file_prints_both_models(tmp_path, pjm_source, monkeypatch):
    from seqops.core.importers import import_pjm

    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "unused"))
    import_pjm(pjm_source, tmp_path, zones=["DOM", "EKPC"], since="2018-04-01", period="all")
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--data",
            str(tmp_path / "pjm_all.csv.gz"),
            "--horizon",
            "24",
            "--season",
            "24",
            "--max-epochs",
            "2",
            "--time-budget-s",
            "30",
            "--home",
            str(tmp_path / "home"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"model", "seasonal_naive", "mase_vs_seasonal_naive", "folds", "run_id"}
    for name in ("model", "seasonal_naive"):
        assert set(summary[name]) == {"smape", "mase", "mae", "rmse"}
        assert 0 < summary[name]["smape"] < 200
    assert summary["folds"] == 4
    assert summary["home"] == str(tmp_path / "home")
    assert (tmp_path / "home" / "data" / "curated" / "backtest").is_dir()


def test_backtest_refuses_a_bad_file_and_quarantines_it(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "series_id,timestamp,value\nA,2020-01-01T00:00:00Z,1\nA,2020-01-01T01:00:00Z,nan\n"
        "A,2020-01-01T02:00:00Z,3\n"
    )
    result = CliRunner().invoke(app, ["backtest", "--data", str(bad), "--home", str(tmp_path / "home")])
    assert result.exit_code == 1
    assert "REJECTED" in result.stderr
    assert any((tmp_path / "home" / "data" / "quarantine" / "backtest").iterdir())


def test_backtest_leaves_the_callers_environment_alone(tmp_path, monkeypatch):
    import os

    monkeypatch.delenv("SEQOPS_FEATURES_DATASETS", raising=False)
    before = {k: v for k, v in os.environ.items() if k.startswith("SEQOPS_")}
    bad = tmp_path / "bad.csv"
    bad.write_text("series_id,timestamp,value\nA,2020-01-01T00:00:00Z,x\nA,2020-01-01T01:00:00Z,1\n")
    CliRunner().invoke(app, ["backtest", "--data", str(bad), "--home", str(tmp_path / "home")])
    assert {k: v for k, v in os.environ.items() if k.startswith("SEQOPS_")} == before
