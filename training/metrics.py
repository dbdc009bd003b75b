"""Forecast accuracy: sMAPE, MASE and OWA exactly as the M4 competition defines them, plus MAE/MSE/RMSE.

M4 (Makridakis et al. 2020; the organisers' ``Benchmarks and Evaluation.R``):

* sMAPE per series = mean over the horizon of ``200 |y - f| / (|y| + |f|)``; overall = mean over series.
* MASE per series = MAE of the forecast / mean in-sample ``|y_t - y_{t-m}|`` (m = 24 for hourly data);
  overall = mean over series.
* OWA = 0.5 (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2); for M4 Hourly Naive2 scores 18.383 / 2.395.

Note: utilsforecast's (NeuralForecast's) ``smape`` is half of M4's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

M4_HOURLY_NAIVE2 = (18.383, 2.395)  # (sMAPE, MASE) of Naive2 on M4 Hourly: the OWA reference


def smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-series M4 sMAPE in percent (0..200).

    Args:
        y: [S, H] actuals.
        f: [S, H] forecasts.

    Returns:
        [S] mean over the horizon of 200 |y - f| / (|y| + |f|); a step where both are 0 counts as 0.
    """
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    den = np.abs(y) + np.abs(f)
    ratio = np.divide(200.0 * np.abs(y - f), den, out=np.zeros_like(den), where=den > 0)
    return ratio.mean(axis=1)


def seasonal_scale(insample: Sequence[np.ndarray], m: int) -> np.ndarray:
    """[S] MASE denominators: mean |y_t - y_{t-m}| over each series' in-sample values."""
    out = np.empty(len(insample))
    for i, series in enumerate(insample):
        s = np.asarray(series, np.float64)
        s = s[~np.isnan(s)]
        if len(s) <= m:
            raise ValueError(f"series {i} has {len(s)} in-sample points; MASE needs more than m={m}")
        out[i] = np.abs(s[m:] - s[:-m]).mean()
    return out


def mase(
    y: np.ndarray,
    f: np.ndarray,
    insample: Sequence[np.ndarray] | None = None,
    m: int = 24,
    *,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Per-series MASE.

    Args:
        y: [S, H] actuals.
        f: [S, H] forecasts.
        insample: S in-sample histories (NaN-padded arrays allowed); or give ``scale``.
        m: seasonal period of the naive scale.
        scale: [S] precomputed :func:`seasonal_scale`.

    Returns:
        [S] MAE / scale.
    """
    if scale is None:
        if insample is None:
            raise ValueError("give insample or scale")
        scale = seasonal_scale(insample, m)
    mae_s = np.abs(np.asarray(y, np.float64) - np.asarray(f, np.float64)).mean(axis=1)
    return mae_s / scale


def owa(smape_value: float, mase_value: float, naive2: tuple[float, float] = M4_HOURLY_NAIVE2) -> float:
    """M4 Overall Weighted Average relative to Naive2's (sMAPE, MASE)."""
    return 0.5 * (smape_value / naive2[0] + mase_value / naive2[1])


@dataclass(frozen=True)
class Scores:
    """Overall scores (means over series; MSE/MAE/RMSE over all points)."""

    smape: float
    mase: float
    owa: float
    mae: float
    mse: float
    rmse: float
    n_series: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def per_series(
    y: np.ndarray,
    f: np.ndarray,
    insample: Sequence[np.ndarray] | None = None,
    m: int = 24,
    *,
    scale: np.ndarray | None = None,
    series_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per series: smape, mase, mae, mse, rmse (MASE only when a scale is known)."""
    y64, f64 = np.asarray(y, np.float64), np.asarray(f, np.float64)
    err = y64 - f64
    frame = pd.DataFrame(
        {
            "series_id": list(series_ids) if series_ids is not None else np.arange(len(y64)),
            "smape": smape(y64, f64),
            "mae": np.abs(err).mean(axis=1),
            "mse": (err**2).mean(axis=1),
        }
    )
    frame["rmse"] = np.sqrt(frame["mse"])
    if insample is not None or scale is not None:
        frame["mase"] = mase(y64, f64, insample, m, scale=scale)
    return frame


def score(
    y: np.ndarray,
    f: np.ndarray,
    insample: Sequence[np.ndarray] | None = None,
    m: int = 24,
    *,
    scale: np.ndarray | None = None,
    naive2: tuple[float, float] = M4_HOURLY_NAIVE2,
) -> Scores:
    """Overall scores of forecasts ``f`` [S, H] against actuals ``y`` [S, H].

    sMAPE and MASE are means over series (M4); MAE, MSE and RMSE are over all points. Without a
    MASE scale, ``mase`` and ``owa`` are NaN.
    """
    y64, f64 = np.asarray(y, np.float64), np.asarray(f, np.float64)
    err = y64 - f64
    s = float(smape(y64, f64).mean())
    if insample is not None or scale is not None:
        m_value = float(mase(y64, f64, insample, m, scale=scale).mean())
        o = owa(s, m_value, naive2)
    else:
        m_value = o = float("nan")
    mse_value = float((err**2).mean())
    return Scores(
        smape=s,
        mase=m_value,
        owa=o,
        mae=float(np.abs(err).mean()),
        mse=mse_value,
        rmse=float(np.sqrt(mse_value)),
        n_series=len(y64),
    )
