"""Reference forecasters with known, exact outputs: naive and seasonal naive.

Both take histories oldest-first: a [S, T] array (e.g. ``WindowSet.x``) or a list of 1-D arrays of
different lengths (trailing NaN padding is dropped, as in the M4 wide files).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _trimmed(history: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    rows = list(history) if not isinstance(history, np.ndarray) or history.ndim == 2 else [history]
    out = []
    for row in rows:
        r = np.asarray(row, dtype=np.float64)
        valid = np.flatnonzero(~np.isnan(r))
        if len(valid) == 0:
            raise ValueError("a history has no values")
        out.append(r[: valid[-1] + 1])
    return out


def seasonal_naive(history: np.ndarray | Sequence[np.ndarray], horizon: int, m: int) -> np.ndarray:
    """Repeat the last season: ``f[T + k] = y[T - m + (k mod m)]`` for k = 0..H-1.

    Args:
        history: S histories, oldest first, each at least m long.
        horizon: H.
        m: season length (24 for hourly data).

    Returns:
        [S, H] float64 forecasts.
    """
    out = np.empty((0, horizon))
    rows = []
    for r in _trimmed(history):
        if len(r) < m:
            raise ValueError(f"history of {len(r)} points is shorter than the season m={m}")
        rows.append(r[len(r) - m + np.arange(horizon) % m])
    return np.stack(rows) if rows else out


def naive(history: np.ndarray | Sequence[np.ndarray], horizon: int) -> np.ndarray:
    """Repeat the last value (M4's Naive1)."""
    return np.stack([np.full(horizon, r[-1]) for r in _trimmed(history)])


def seasonality_test(series: np.ndarray, m: int) -> bool:
    """M4's 90% autocorrelation test for seasonality at lag m (``SeasonalityTest`` in the M4 R code).

    Seasonal when |acf(m)| > 1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k<m} acf(k)^2); series shorter than
    3 m are not seasonal.
    """
    x = np.asarray(series, np.float64)
    n = len(x)
    if m <= 1 or n < 3 * m:
        return False
    max_lag = int(np.floor(10 * np.log10(n)))  # R's acf default lag.max for one series
    if max_lag < m:
        return False
    d = x - x.mean()
    denom = float(d @ d)
    if denom == 0.0:
        return False
    acf = np.array([float(d[: n - k] @ d[k:]) / denom for k in range(1, m + 1)])  # lags 1..m
    limit = 1.645 / np.sqrt(n) * np.sqrt(1.0 + 2.0 * np.sum(acf[: m - 1] ** 2))
    return bool(abs(acf[m - 1]) > limit)


def seasonal_indices(series: np.ndarray, m: int) -> np.ndarray:
    """Multiplicative seasonal component of R's ``decompose`` for a series starting at cycle 1.

    Trend = centred moving average (weights 0.5, 1, ..., 1, 0.5 over m + 1 points for even m);
    the seasonal figure = mean of x / trend per position in the cycle, normalised to mean 1.

    Returns:
        [len(series)] seasonal factor of every point.
    """
    x = np.asarray(series, np.float64)
    n = len(x)
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(weights) // 2
    trend = np.full(n, np.nan)
    trend[half : n - half] = np.convolve(x, weights, mode="valid")
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    figure = figure / figure.mean()
    return figure[np.arange(n) % m]


def naive2(history: np.ndarray | Sequence[np.ndarray], horizon: int, m: int) -> np.ndarray:
    """M4's Naive2: naive on the seasonally adjusted series (when seasonal), re-seasonalised.

    The OWA reference method; on M4 Hourly it scores sMAPE 18.383 / MASE 2.395.
    """
    rows = []
    for r in _trimmed(history):
        if seasonality_test(r, m):
            seasonal = seasonal_indices(r, m)
            out_factors = np.resize(seasonal[-m:], horizon)  # the last cycle's factors, repeated
            rows.append(r[-1] / seasonal[-1] * out_factors)
        else:
            rows.append(np.full(horizon, r[-1]))
    return np.stack(rows)
