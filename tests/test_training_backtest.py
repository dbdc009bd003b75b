"""The one backtest (training.backtest.score_folds): model, naive and seasonal naive on the same folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqops.training.backtest import score_folds


def _windows(series: np.ndarray, length: int, horizon: int, origins: list[int]):
    x = np.stack([series[o - length + 1 : o + 1] for o in origins]).astype(np.float32)
    y = np.stack([series[o + 1 : o + 1 + horizon] for o in origins]).astype(np.float32)
    insample = [series[: o + 1] for o in origins]
    return x, y, insample


def test_perfect_season_makes_seasonal_naive_exact_and_the_best_baseline() -> None:
    t = np.arange(24 * 20)
    series = 100 + 10 * np.sin(2 * np.pi * t / 24)
    x, y, _ = _windows(series, 48, 24, [200, 300])
    noisy = np.random.default_rng(1).normal(0, 1, len(series)) + series  # a non-zero MASE scale
    insample = [noisy[:201], noisy[:301]]
    scores = score_folds(
        x,
        y,
        y + 1.0,  # a model off by exactly 1 everywhere
        insample=insample,
        season=24,
        series_ids=["a", "a"],
        origins=pd.DatetimeIndex(["2020-01-01", "2020-01-02"], tz="UTC"),
    )
    s = scores.summary
    assert s["seasonal_naive"]["mae"] == pytest.approx(0.0, abs=1e-4)
    assert s["model"]["mae"] == pytest.approx(1.0, abs=1e-4)
    assert s["best_baseline"] == "seasonal_naive"
    np.testing.assert_allclose(scores.forecasts["naive"], np.repeat(x[:, -1:], 24, axis=1))
    assert set(scores.per_series["model"]) == {"model", "naive", "seasonal_naive"}
    assert len(scores.per_series) == 3 * 2


def test_random_walk_makes_naive_the_bar_and_a_seasonal_model_loses_to_it() -> None:
    rng = np.random.default_rng(0)
    series = 1000 + np.cumsum(rng.normal(0, 5, 24 * 60))
    origins = list(range(400, 24 * 58, 48))
    x, y, insample = _windows(series, 168, 24, origins)
    seasonal = np.stack([x[i, -24:] for i in range(len(x))])  # a "model" that is seasonal naive
    scores = score_folds(
        x,
        y,
        seasonal,
        insample=insample,
        season=24,
        series_ids=["rw"] * len(origins),
        origins=pd.DatetimeIndex(pd.date_range("2020-01-01", periods=len(origins), freq="2D", tz="UTC")),
    )
    s = scores.summary
    assert s["best_baseline"] == "naive"
    assert s["naive"]["mase"] < s["seasonal_naive"]["mase"]
    assert s["mase_ratio"] == pytest.approx(1.0)  # the model *is* seasonal naive
    assert s["mase_vs_best_baseline"] > 1.0  # and so it loses to the bar
