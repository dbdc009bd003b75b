"""The forecasters a user would pick instead of ours, run on the same data in the same run.

statsforecast (AutoETS, AutoTheta, MSTL) and mlforecast with LightGBM, from the ``bench`` extra
(``make bench`` installs it; the runtime lock does not carry them). Each peer takes the canonical
long frame of hourly series (``series_id``, ``timestamp``, ``value``) and returns the next
``horizon`` values after each series' last timestamp, with its wall and CPU time from that frame
to the forecast (fitting included).

The peers' settings are fixed here, written once from their documentation's defaults for hourly
data; none was tuned on any test window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: peer name -> what it is (the README's row label)
PEERS: dict[str, str] = {
    "autoets": "statsforecast AutoETS (season 24)",
    "autotheta": "statsforecast AutoTheta (season 24)",
    "mstl": "statsforecast MSTL (seasons 24, 168; AutoETS trend)",
    "lgbm": "mlforecast LightGBM (lags 1-24, 48, 168; differenced at 24; 500 trees)",
}


@dataclass(frozen=True)
class PeerForecast:
    """One peer's forecasts ([S, H], rows in the order asked) and what they cost."""

    name: str
    forecast: np.ndarray
    wall_seconds: float
    cpu_seconds: float


def cpu_time() -> float:
    """CPU seconds of this process and of its finished children (statsforecast's n_jobs workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _missing(exc: ImportError) -> ImportError:
    return ImportError(
        f"{exc.name} is not installed: the peers live in the bench extra. Run `make bench` (it installs "
        "requirements/bench.txt) or `.venv/bin/pip install -r requirements/bench.txt`."
    )


def long_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.rename(columns={"series_id": "unique_id", "timestamp": "ds", "value": "y"})[
        ["unique_id", "ds", "y"]
    ].copy()
    if isinstance(out["ds"].dtype, pd.DatetimeTZDtype):
        out["ds"] = out["ds"].dt.tz_convert("UTC").dt.tz_localize(None)
    return out.sort_values(["unique_id", "ds"], ignore_index=True)


def _wide(fc: pd.DataFrame, column: str, ids: Sequence[str], horizon: int) -> np.ndarray:
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc = fc.sort_values(["unique_id", "ds"])
    values = fc.groupby("unique_id", sort=False)[column].apply(lambda s: s.to_numpy(np.float64))
    return np.stack([values.loc[s][:horizon] for s in ids])


def _statsforecast(name: str, season: int, threads: int) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import MSTL, AutoETS, AutoTheta
    except ImportError as exc:
        raise _missing(exc) from exc
    model: Any = {
        "autoets": lambda: AutoETS(season_length=season),
        "autotheta": lambda: AutoTheta(season_length=season),
        "mstl": lambda: MSTL(season_length=[season, 7 * season], trend_forecaster=AutoETS(model="ZZN")),
    }[name]()

    def run(df: pd.DataFrame, horizon: int) -> pd.DataFrame:
        sf = StatsForecast(models=[model], freq="h", n_jobs=threads)
        return sf.forecast(df=df, h=horizon).rename(columns={repr(model): "forecast"})

    return run


def lgbm_forecaster(season: int, threads: int = 1, seed: int = 0) -> Any:
    """mlforecast with LightGBM, unfitted: lags of the last season, two and seven seasons back,
    rolling means, on the series differenced at the season (``fit`` / ``predict(new_df=...)``)."""
    try:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import Differences
    except ImportError as exc:
        raise _missing(exc) from exc
    model = lgb.LGBMRegressor(
        n_estimators=500, learning_rate=0.05, num_leaves=63, n_jobs=threads, random_state=seed, verbosity=-1
    )
    return MLForecast(
        models={"forecast": model},
        freq="h",
        lags=[*range(1, season + 1), 2 * season, 7 * season],
        lag_transforms={1: [RollingMean(window_size=season)], season: [RollingMean(window_size=7)]},
        target_transforms=[Differences([season])],
        num_threads=threads,
    )


def _lgbm(season: int, threads: int, seed: int) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def run(df: pd.DataFrame, horizon: int) -> pd.DataFrame:
        return lgbm_forecaster(season, threads, seed).fit(df).predict(horizon)

    return run


def peer_forecasts(
    frame: pd.DataFrame,
    horizon: int,
    season: int,
    names: Sequence[str],
    *,
    threads: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] = print,
) -> dict[str, PeerForecast]:
    """Fit each named peer on ``frame`` and forecast ``horizon`` steps after each series' end.

    Args:
        frame: canonical long frame (``series_id``, ``timestamp``, ``value``), regular steps.
        horizon: H.
        season: m (24 for hourly data; MSTL also models 7 m).
        names: keys of :data:`PEERS`.
        threads: cores each peer may use.
        seed: LightGBM's seed.
        progress: receives one line per peer.

    Returns:
        name -> :class:`PeerForecast`, rows in sorted ``series_id`` order.
    """
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    out: dict[str, PeerForecast] = {}
    for name in names:
        wall0, cpu0 = time.perf_counter(), cpu_time()
        runner = _lgbm(season, threads, seed) if name == "lgbm" else _statsforecast(name, season, threads)
        df = long_frame(frame)
        ids = sorted(df["unique_id"].unique())
        forecast = _wide(runner(df, horizon), "forecast", ids, horizon)
        out[name] = PeerForecast(name, forecast, time.perf_counter() - wall0, cpu_time() - cpu0)
        progress(f"peer {PEERS[name]}: {len(ids)} series in {out[name].wall_seconds:.1f}s")
    return out
