"""Rolling-origin backtest on small synthetic series: folds, exact seasonal-naive forecasts, scores, plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.backtest import backtest, backtest_dataset
from training.config import make_config
from training.plots import plot_forecasts

START = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    t = np.arange(24 * 15)
    rng = np.random.default_rng(3)
    periodic = 100.0 + 10.0 * np.sin(2 * np.pi * t / 24)  # the seasonal naive is exact here
    noisy = 50.0 + 5.0 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 1.0, len(t))
    short = noisy[: 24 * 12] + 20.0  # ends 3 days earlier: absent from the last folds
    parts = []
    for sid, v in (("periodic", periodic), ("noisy", noisy), ("short", short)):
        stamps = START + pd.to_timedelta(np.arange(len(v)), "h")
        parts.append(pd.DataFrame({"series_id": sid, "timestamp": stamps, "value": v}))
    return pd.concat(parts, ignore_index=True)


def config():
    return make_config(
        input_size=48, horizon=12, patch_len=12, hidden_size=8, num_layers=1, decoder_size=8,
        val_origins=4, max_epochs=2, num_threads=1, calendar=True,
    )  # fmt: skip


def test_backtest_folds_forecasts_and_scores(frame: pd.DataFrame, tmp_path: Path) -> None:
    messages: list[str] = []
    result = backtest(frame, config(), folds=2, progress=messages.append)
    last = pd.Timestamp("2024-01-15 23:00")
    assert result.origins == [last - pd.Timedelta(hours=24), last - pd.Timedelta(hours=12)]
    f = result.forecasts
    # two folds x two series (the short one ended before both origins) x 12 steps
    assert sorted(f["series_id"].unique()) == ["noisy", "periodic"]
    assert len(f) == 2 * 2 * 12
    # seasonal naive: the value 24 h before each target (12 h horizon, m = 24)
    for _, row in f.sample(10, random_state=0).iterrows():
        ts = pd.Timestamp(row["timestamp"]).tz_localize("UTC")
        day_before = frame[
            (frame["series_id"] == row["series_id"]) & (frame["timestamp"] == ts - pd.Timedelta("24h"))
        ]
        actual = frame[(frame["series_id"] == row["series_id"]) & (frame["timestamp"] == ts)]
        assert row["seasonal_naive"] == pytest.approx(day_before["value"].item())
        assert row["actual"] == pytest.approx(actual["value"].item(), rel=1e-6)
    per = result.per_series
    exact = per[(per["model"] == "seasonal_naive") & (per["series_id"] == "periodic")]
    assert len(exact) == 2 and (exact["mae"] < 1e-4).all() and (exact["smape"] < 1e-4).all()
    assert set(result.overall.index) == {"model", "seasonal_naive"}
    assert np.isfinite(result.overall.to_numpy()).all()
    summary = json.loads(json.dumps(result.summary()))
    assert summary["n_forecasts"] == 4 and summary["mase_vs_seasonal_naive"] > 0
    assert len(result.fits) == 1 and any("fold 2/2" in m for m in messages)

    png = plot_forecasts(result.forecasts, tmp_path / "plots" / "bt.png", history=frame, title="backtest")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_refit_each_trains_once_per_fold(frame: pd.DataFrame) -> None:
    result = backtest(frame, config(), folds=2, refit="each")
    assert len(result.fits) == 2
    # the second model saw 12 more hours per series: more training windows
    assert result.fits[1].windows_seen > result.fits[0].windows_seen


def test_no_evaluable_fold_is_an_error(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no fold"):
        backtest(frame, config(), origins=[pd.Timestamp("2030-01-01", tz="UTC")])


def test_backtest_dataset_reads_the_curated_store_and_writes_its_report(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    from seqops.settings import Settings
    from seqops.store import BatchRef, CuratedStore

    settings = Settings(home=tmp_path / "home")
    ref = BatchRef(
        "synthetic", "0123456789abcdef", "0" * 64, "raw.csv", "raw.csv", "2024-02-01T00:00:00+00:00"
    )
    CuratedStore(settings).write("synthetic", ref, frame)
    overrides = dict(
        input_size=48, horizon=12, patch_len=12, hidden_size=8, num_layers=1, decoder_size=8, val_origins=4,
        max_epochs=1, num_threads=1,
    )  # fmt: skip
    summary = backtest_dataset(
        "synthetic", overrides=overrides, folds=2, settings=settings, progress=lambda _: None
    )
    out = Path(summary["paths"]["dir"])
    assert out.parent == settings.home / "backtests" / "synthetic"
    assert json.loads((out / "summary.json").read_text())["dataset"] == "synthetic"
    assert len(pd.read_parquet(out / "forecasts.parquet")) == 2 * 2 * 12
    assert (out / "forecasts.png").stat().st_size > 10_000
