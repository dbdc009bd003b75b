"""The backtest: a model and the baselines a forecaster checks first, scored on the same folds.

One function, :func:`score_folds`, used by the ``train_forecaster`` flow (and so by ``seqops
train`` and ``seqops backtest``). The baselines are last-value naive and seasonal naive; the better
of the two on MASE is the bar (``best_baseline``), so a model that beats seasonal naive on
random-walk-like data but loses to naive is shown as losing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seqops.training.baselines import naive, seasonal_naive
from seqops.training.metrics import per_series, seasonal_scale

#: scores averaged over folds x series, per forecaster
METRICS = ("smape", "mase", "mae", "rmse")
BASELINES = ("naive", "seasonal_naive")


@dataclass(frozen=True)
class FoldScores:
    """Per-series scores of every forecaster and their overall means."""

    per_series: pd.DataFrame  # series_id, origin, model, smape, mae, mse, rmse, mase
    forecasts: dict[str, np.ndarray]  # forecaster -> [N, H] forecasts
    summary: dict[str, Any]  # {forecaster: {metric: mean}, "best_baseline": name, "mase_ratio": ...}


def score_folds(
    x: np.ndarray,
    y: np.ndarray,
    model_forecast: np.ndarray,
    *,
    insample: Sequence[np.ndarray],
    season: int,
    series_ids: Sequence[str],
    origins: pd.DatetimeIndex,
) -> FoldScores:
    """Score the model, naive and seasonal naive on the same windows.

    Args:
        x: [N, L] input windows (the baselines forecast from them).
        y: [N, H] actual values after each origin.
        model_forecast: [N, H] the model's point forecasts.
        insample: per window, the series' history up to its origin (MASE's seasonal scale).
        season: m, the seasonal period in steps.
        series_ids: [N] series of each window.
        origins: [N] origin of each window.

    Returns:
        Per-series rows and the summary: each forecaster's means, ``best_baseline`` (lower MASE),
        ``mase_ratio`` (model MASE / seasonal naive MASE) and ``mase_vs_best_baseline``.
    """
    horizon = y.shape[1]
    forecasts = {
        "model": np.asarray(model_forecast, np.float64),
        "naive": naive(x, horizon),
        "seasonal_naive": seasonal_naive(x, horizon, season),
    }
    scale = seasonal_scale(insample, season)
    rows = [
        per_series(y, f, scale=scale, series_ids=series_ids).assign(model=name, origin=origins)
        for name, f in forecasts.items()
    ]
    per = pd.concat(rows, ignore_index=True)
    overall = per.groupby("model")[list(METRICS)].mean()
    summary: dict[str, Any] = {m: {k: float(overall.loc[m, k]) for k in METRICS} for m in forecasts}
    best = min(BASELINES, key=lambda b: summary[b]["mase"])
    summary["best_baseline"] = best
    summary["mase_ratio"] = _ratio(summary["model"]["mase"], summary["seasonal_naive"]["mase"])
    summary["mase_vs_best_baseline"] = _ratio(summary["model"]["mase"], summary[best]["mase"])
    return FoldScores(per_series=per, forecasts=forecasts, summary=summary)


def _ratio(a: float, b: float) -> float:
    """a / b, with a baseline that is exact (b = 0) giving inf (or 1 when the model is exact too)."""
    if b == 0.0:
        return 1.0 if a == 0.0 else float("inf")
    return a / b
