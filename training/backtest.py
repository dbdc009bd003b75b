"""Rolling-origin backtest: the model and the seasonal naive on the same folds.

Fold k forecasts H steps from origin ``o_k`` for every series that has a full input window ending
at ``o_k`` and H known values after it. The model is trained on data up to the first origin
(``refit="once"``: later folds reuse it, their inputs only read past data) or again up to every
origin (``refit="each"``). MASE's in-sample scale for a fold is each series' history up to its origin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from training.baselines import seasonal_naive
from training.config import TrainConfig
from training.metrics import per_series, seasonal_scale
from training.train import EpochStats, FitResult, fit, predict
from training.windows import infer_step, split_last_origins, utc_naive, windows_from_frame

MODELS = ("model", "seasonal_naive")


@dataclass
class BacktestResult:
    """Forecasts and scores of every fold."""

    origins: list[pd.Timestamp]
    forecasts: pd.DataFrame  # series_id, origin, step, timestamp, actual, model, seasonal_naive
    per_series: pd.DataFrame  # model, origin, series_id, smape, mae, mse, rmse, mase
    overall: pd.DataFrame  # index = model; smape, mase, mae, mse, rmse (means over folds x series)
    fits: list[FitResult] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Small JSON-able summary: overall scores per model and the model/naive MASE ratio."""
        overall = {m: {k: float(v) for k, v in row.items()} for m, row in self.overall.iterrows()}
        ratio = overall["model"]["mase"] / overall["seasonal_naive"]["mase"]
        return {
            "origins": [o.isoformat() for o in self.origins],
            "overall": overall,
            "mase_vs_seasonal_naive": float(ratio),
            "n_forecasts": int(len(self.forecasts) // max(1, self.forecasts["step"].max())),
        }


def default_origins(df: pd.DataFrame, horizon: int, folds: int, step: pd.Timedelta, fold_step: int) -> list:
    """The last ``folds`` origins that leave H known steps, ``fold_step`` steps apart."""
    last = pd.Timestamp(utc_naive(df["timestamp"]).max())
    first = last - horizon * step
    return [first - (folds - 1 - k) * fold_step * step for k in range(folds)]


def backtest(
    df: pd.DataFrame,
    config: TrainConfig,
    *,
    folds: int = 3,
    fold_step: int | None = None,
    origins: Sequence[pd.Timestamp] | None = None,
    refit: Literal["once", "each"] = "once",
    calendar_tz: str = "UTC",
    freq: str | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Rolling-origin evaluation of the model against the seasonal naive (period ``config.season``).

    Args:
        df: canonical long frame (``series_id``, ``timestamp``, ``value``).
        config: model and training hyperparameters (``horizon`` = H).
        folds: number of origins when ``origins`` is None.
        fold_step: steps between default origins (default H: folds do not overlap).
        origins: explicit origins (timestamps of the last input value).
        refit: train once before the first origin, or again before every origin.
        calendar_tz: the zone calendar features follow.
        freq: the series' step; None = inferred.
        on_epoch: per-epoch training callback.
        progress: receives one-line progress messages.

    Returns:
        Forecasts, per-series and overall scores for both models.
    """
    say = progress or (lambda _msg: None)
    frame = df[["series_id", "timestamp", "value"]].copy()
    frame["series_id"] = frame["series_id"].astype(str)
    frame["timestamp"] = utc_naive(frame["timestamp"])
    step = pd.Timedelta(freq) if freq else infer_step(frame)
    if origins is None:
        origins = default_origins(frame, config.horizon, folds, step, fold_step or config.horizon)
    fold_origins = sorted(pd.Timestamp(utc_naive([o])[0]) for o in origins)
    windows_kw = dict(scaler=config.scaler, calendar=config.calendar, calendar_tz=calendar_tz, freq=step)

    fits: list[FitResult] = []
    model_fit: FitResult | None = None
    rows, scores = [], []
    for k, origin in enumerate(fold_origins, start=1):
        if model_fit is None or refit == "each":
            history = frame[frame["timestamp"] <= origin]
            ws = windows_from_frame(history, config.input_size, config.horizon, **windows_kw)
            train_ws, val_ws = split_last_origins(ws, config.val_origins)
            say(f"fold {k}/{len(fold_origins)}: training on {len(train_ws):,} windows up to {origin}")
            model_fit = fit(train_ws, val_ws, config, on_epoch=on_epoch)
            fits.append(model_fit)
        fc = windows_from_frame(frame, config.input_size, config.horizon, origins=[origin], **windows_kw)
        if len(fc) == 0:
            say(f"fold {k}: no series has a full window at {origin}; skipped")
            continue
        ids = fc.ids()
        pred = predict(model_fit.model, fc.with_series_index(model_fit.series_ids))
        if pred.ndim == 3:  # quantile model: score its median
            pred = pred[..., int(np.argmin(np.abs(np.array(config.quantiles) - 0.5)))]
        forecasts = {"model": pred, "seasonal_naive": seasonal_naive(fc.x, fc.horizon, config.season)}
        by_series = dict(tuple(frame[frame["timestamp"] <= origin].groupby("series_id")["value"]))
        insample = [by_series[s].to_numpy() for s in ids]
        scale = seasonal_scale(insample, config.season)
        ts = fc.target_timestamps()
        fold_rows = pd.DataFrame(
            {
                "series_id": np.repeat(ids, fc.horizon),
                "origin": origin,
                "step": np.tile(np.arange(1, fc.horizon + 1), len(fc)),
                "timestamp": ts.ravel(),
                "actual": fc.y.ravel().astype(np.float64),
            }
        )
        for name, f in forecasts.items():
            fold_rows[name] = f.ravel().astype(np.float64)
            ps = per_series(fc.y, f, scale=scale, series_ids=ids)
            scores.append(ps.assign(model=name, origin=origin))
        rows.append(fold_rows)
        sn, md = scores[-1], scores[-2]
        say(
            f"fold {k}/{len(fold_origins)} at {origin}: {len(fc)} series  model sMAPE "
            f"{md['smape'].mean():.3f} MASE {md['mase'].mean():.3f} | seasonal naive sMAPE "
            f"{sn['smape'].mean():.3f} MASE {sn['mase'].mean():.3f}"
        )
    if not rows:
        raise ValueError("no fold could be evaluated: check the origins and the series lengths")
    metrics = ["smape", "mase", "mae", "mse", "rmse"]
    per = pd.concat(scores, ignore_index=True)[["model", "origin", "series_id", *metrics]]
    # sMAPE and MASE: means over (fold, series) as in M4; MAE/MSE/RMSE: over all points
    overall = per.groupby("model")[metrics].mean().reindex(list(MODELS))
    forecasts_df = pd.concat(rows, ignore_index=True)
    for name in MODELS:
        err = forecasts_df["actual"] - forecasts_df[name]
        overall.loc[name, "mae"] = float(err.abs().mean())
        overall.loc[name, "mse"] = float((err**2).mean())
        overall.loc[name, "rmse"] = float(np.sqrt((err**2).mean()))
    return BacktestResult(
        origins=fold_origins, forecasts=forecasts_df, per_series=per, overall=overall, fits=fits
    )
