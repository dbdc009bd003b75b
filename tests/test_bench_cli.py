"""`seqops bench m4-hourly`: the official protocol end to end (one epoch; the published run trains on)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from seqops.cli import app


@pytest.mark.slow
def test_bench_m4_hourly_reports_the_reproduced_seasonal_naive(tmp_path):
    out = tmp_path / "m4.json"
    result = CliRunner().invoke(
        app, ["bench", "m4-hourly", "--seeds", "1", "--max-epochs", "1", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    naive = report["scores"]["seasonal_naive"]
    assert (round(naive["smape"], 3), round(naive["mase"], 3)) == (13.912, 1.193)
    assert report["scores"]["lstm_seeds"][0]["n_series"] == 414
    assert "seqops LSTM, mean of 1 seeds" in result.stdout and "Smyl ES-RNN" in result.stdout
    assert json.loads(out.read_text())["scores"]["seasonal_naive"] == naive


def test_an_unknown_peer_is_named(tmp_path):
    result = CliRunner().invoke(
        app, ["bench", "m4-hourly", "--peers", "prophet", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "unknown peer(s) prophet" in result.output and "autoets" in result.output


def test_bad_horizons_and_seed_counts_are_named(tmp_path):
    bad = CliRunner().invoke(app, ["bench", "etth1", "--horizons", "24,x", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--horizons '24,x'" in bad.output
    none = CliRunner().invoke(app, ["bench", "m4-hourly", "--seeds", "0", "--out", str(tmp_path / "x")])
    assert none.exit_code == 2 and "--seeds" in none.output
