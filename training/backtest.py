"""Rolling-origin backtest: the model and the seasonal naive on the same folds.

Fold k forecasts H steps from origin ``o_k`` for every series that has a full input window ending
at ``o_k`` and H known values after it. The model is trained on data up to the first origin
(``refit="once"``: later folds reuse it, their inputs only read past data) or again up to every
origin (``refit="each"``). MASE's in-sample scale for a fold is each series' history up to its origin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from training.baselines import seasonal_naive
from training.config import TrainConfig
from training.metrics import per_series, seasonal_scale
from training.train import EpochStats, FitResult, fit, predict
from training.windows import infer_step, split_last_origins, utc_naive, windows_from_frame

if TYPE_CHECKING:
    from seqops.settings import Settings

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
    stride: int = 1,
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
        stride: spacing of the training origins (1 = every hour; larger thins long histories).
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
            ws = windows_from_frame(history, config.input_size, config.horizon, stride=stride, **windows_kw)
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


def backtest_dataset(
    dataset: str,
    *,
    profile: str = "default",
    overrides: dict[str, Any] | None = None,
    folds: int = 3,
    refit: Literal["once", "each"] = "once",
    stride: int = 1,
    out_dir: Path | None = None,
    settings: Settings | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Backtest a curated dataset of the platform (``seqops backtest``): read, evaluate, plot, report.

    Args:
        dataset: name in ``config/datasets.toml`` with curated data.
        profile: :func:`training.config.make_config` profile; ``overrides`` change single fields.
        overrides: TrainConfig fields (e.g. ``{"horizon": 24, "max_epochs": 5}``).
        folds: rolling origins, H steps apart, ending at the last timestamp.
        refit: train once, or before every fold.
        stride: spacing of the training origins.
        out_dir: where ``summary.json``, ``forecasts.parquet`` and ``forecasts.png`` go
            (default ``$SEQOPS_HOME/backtests/<dataset>/<UTC time>``).
        settings: platform settings (default: from the environment).
        progress: receives progress lines (per fold and epoch).

    Returns:
        :meth:`BacktestResult.summary` plus the output paths.
    """
    from datetime import UTC, datetime

    from seqops.datasets import load_spec
    from seqops.settings import get_settings
    from seqops.store import CuratedStore
    from training.config import make_config
    from training.plots import plot_forecasts

    settings = settings or get_settings()
    spec = load_spec(dataset)
    frame = CuratedStore(settings).read(dataset)
    if frame.empty:
        raise ValueError(f"no curated data for {dataset!r}: ingest it first")
    config = make_config(profile, **(overrides or {}))
    progress(f"backtest {dataset}: {frame['series_id'].nunique()} series, {len(frame):,} rows, {folds} folds")
    result = backtest(
        frame,
        config,
        folds=folds,
        refit=refit,
        calendar_tz=spec.source_timezone or "UTC",
        freq=spec.freq,
        stride=stride,
        on_epoch=lambda s: progress(f"  {s.line()}"),
        progress=progress,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir or settings.home / "backtests" / dataset / stamp
    out.mkdir(parents=True, exist_ok=True)
    result.forecasts.to_parquet(out / "forecasts.parquet", index=False)
    plot = plot_forecasts(result.forecasts, out / "forecasts.png", history=frame, title=f"{dataset} backtest")
    summary = {**result.summary(), "dataset": dataset, "config": config.model_dump(mode="json")}
    summary["paths"] = {"dir": str(out), "plot": str(plot), "forecasts": str(out / "forecasts.parquet")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    model, naive = summary["overall"]["model"], summary["overall"]["seasonal_naive"]
    progress(
        f"{dataset}: model sMAPE {model['smape']:.3f} MASE {model['mase']:.3f} | seasonal naive "
        f"sMAPE {naive['smape']:.3f} MASE {naive['mase']:.3f} -> {out}"
    )
    return summary
