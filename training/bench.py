"""Public benchmarks: M4 Hourly (official M4 protocol) and ETTh1 (Informer protocol), our LSTM vs baselines.

Both are plain functions (the CLI wires ``seqops bench m4-hourly`` / ``seqops bench etth1`` to them)
that print progress through ``progress`` and return a JSON-able dict.

M4 Hourly: 414 series (Hourly-train.csv / Hourly-test.csv), train on the train file, forecast the
48 test points from the end of each series, sMAPE / MASE (m = 24) / OWA exactly as M4. The series
carry no timestamps (M4-info.csv is not shipped), so each gets an hourly index from 2000-01-01 and the
calendar features are off.

ETTh1: target OT alone; train = rows 0..8639, validation = 8640..11519, test = 11520..14399
(input windows may reach back into the previous split, as in Informer's loader); z-score with the
train rows' mean and std; MSE / MAE on that scale, over every test window (stride 1; Informer's own
loader also drops the last incomplete batch of 32, which changes the mean by a hair).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops.core.windows import WindowSet, split_last_origins, windows_from_frame
from seqops.training.baselines import naive, naive2, seasonal_naive
from seqops.training.config import TrainConfig, make_config
from seqops.training.metrics import score
from seqops.training.train import FitResult, fit, predict

Progress = Callable[[str], None]

# Official M4 Hourly results (Evaluation and Ranks.xlsx): sMAPE, MASE, OWA.
M4_HOURLY_REFERENCE = {
    "Doornik, Hendry & Castle (best on Hourly)": (8.913, 0.801, 0.410),
    "Smyl ES-RNN": (9.328, 0.893, 0.440),
    "Seasonal naive": (13.912, 1.193, 0.627),
    "Naive2": (18.383, 2.395, 1.000),
}
# Informer (Zhou et al. 2021) Table 1, ETTh1 univariate: horizon -> (MSE, MAE).
ETTH1_LSTMA = {
    24: (0.114, 0.272),
    48: (0.193, 0.358),
    168: (0.236, 0.392),
    336: (0.590, 0.698),
    720: (0.683, 0.768),
}
ETTH1_INFORMER = {
    24: (0.098, 0.247),
    48: (0.158, 0.319),
    168: (0.183, 0.346),
    336: (0.222, 0.387),
    720: (0.269, 0.435),
}
ETTH1_BORDERS = (8640, 11520, 14400)


@dataclass(frozen=True)
class M4Hourly:
    """The M4 Hourly files in memory (series in file order)."""

    ids: list[str]
    insample: list[np.ndarray]
    test: np.ndarray  # [S, 48]
    frame: pd.DataFrame  # canonical long frame of the train part

    @property
    def horizon(self) -> int:
        return int(self.test.shape[1])


def load_m4_hourly(data_dir: Path) -> M4Hourly:
    """Read ``Hourly-train.csv`` / ``Hourly-test.csv`` (wide, right-padded with empty cells)."""
    train = pd.read_csv(Path(data_dir) / "Hourly-train.csv", index_col=0)
    test = pd.read_csv(Path(data_dir) / "Hourly-test.csv", index_col=0)
    if list(train.index) != list(test.index):
        raise ValueError("train and test files list different series")
    start = pd.Timestamp("2000-01-01", tz="UTC")
    insample, parts = [], []
    for sid, row in zip(train.index, train.to_numpy(np.float64), strict=True):
        values = row[~np.isnan(row)]
        insample.append(values)
        stamps = start + pd.to_timedelta(np.arange(len(values)), unit="h")
        parts.append(pd.DataFrame({"series_id": str(sid), "timestamp": stamps, "value": values}))
    return M4Hourly(
        ids=[str(s) for s in train.index],
        insample=insample,
        test=test.to_numpy(np.float64),
        frame=pd.concat(parts, ignore_index=True),
    )


def _write_json(report: dict[str, Any], json_out: Path | None) -> Path | None:
    if json_out is None:
        return None
    path = Path(json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def _epoch_printer(progress: Progress, prefix: str) -> Callable[[Any], None]:
    return lambda stats: progress(f"{prefix}{stats.line()}")


def _ensemble_fit(
    train: WindowSet,
    val: WindowSet,
    config: TrainConfig,
    *,
    members: int,
    budget_s: float,
    progress: Progress,
    prefix: str = "",
) -> list[FitResult]:
    """Train ``members`` seeds one after another, sharing ``budget_s`` of wall time."""
    fits: list[FitResult] = []
    t0 = time.perf_counter()
    for k in range(members):
        left = budget_s - (time.perf_counter() - t0)
        if left <= 5 and fits:
            progress(f"{prefix}budget spent after {k} member(s)")
            break
        member_cfg = config.model_copy(
            update={"seed": config.seed + k, "time_budget_s": max(left / (members - k), 5.0)}
        )
        budget_now = member_cfg.time_budget_s or 0.0
        progress(f"{prefix}member {k + 1}/{members}: seed {member_cfg.seed}, budget {budget_now:.0f}s")
        fits.append(fit(train, val, member_cfg, on_epoch=_epoch_printer(progress, f"{prefix}  ")))
        last = fits[-1]
        progress(
            f"{prefix}  member {k + 1}: best epoch {last.best_epoch}, val {last.best_val_loss:.4f}, "
            f"stop: {last.stop_reason}, {last.samples_per_s:,.0f} win/s"
        )
    return fits


def _ensemble_predict(fits: list[FitResult], ws: WindowSet) -> np.ndarray:
    # Median of the members' forecasts: robust to one member that went astray.
    return np.median(np.stack([predict(f.model, ws) for f in fits]), axis=0)


def bench_m4_hourly(
    data_dir: Path,
    *,
    time_budget_s: float = 900,
    json_out: Path | None = None,
    progress: Progress = print,
    config: TrainConfig | None = None,
    members: int = 1,
    threads: int | None = None,
) -> dict[str, Any]:
    """M4 Hourly, official protocol: our LSTM (an ensemble of ``members`` seeds) vs seasonal naive.

    Args:
        data_dir: folder with ``Hourly-train.csv`` and ``Hourly-test.csv``.
        time_budget_s: wall-clock budget for the whole benchmark (loading, training, scoring).
        json_out: write the report (JSON) to this file.
        progress: receives progress lines (per epoch).
        config: hyperparameters (default: the ``m4_hourly`` profile).
        members: seeds trained one after another within the budget; forecasts are their median.
        threads: torch intra-op threads (None = the config's); 1 is fastest on a busy shared machine.

    Returns:
        Scores of the model, seasonal naive and naive, the official references, config and timings.
    """
    t0 = time.perf_counter()
    cfg = config or make_config("m4_hourly")
    if threads is not None:
        cfg = cfg.model_copy(update={"num_threads": threads})
    data = load_m4_hourly(Path(data_dir))
    if cfg.horizon != data.horizon:
        raise ValueError(f"M4 Hourly's horizon is {data.horizon}, config says {cfg.horizon}")
    ws = windows_from_frame(data.frame, cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=False)
    train, val = split_last_origins(ws, cfg.val_origins)
    last = data.frame.groupby("series_id")["timestamp"].max().rename("origin").reset_index()
    fc = windows_from_frame(
        data.frame,
        cfg.input_size,
        cfg.horizon,
        origins=last,
        scaler=cfg.scaler,
        calendar=False,
        series_ids=ws.series_ids,
        require_target=False,
    )
    order = [data.ids.index(s) for s in fc.ids()]  # forecast rows follow the sorted series index
    progress(
        f"M4 Hourly: {len(data.ids)} series, {len(train):,} training / {len(val):,} validation windows, "
        f"L={cfg.input_size} H={cfg.horizon}; prep {time.perf_counter() - t0:.1f}s"
    )
    reserve_s = 10.0  # forecasting and scoring
    budget = time_budget_s - (time.perf_counter() - t0) - reserve_s
    fits = _ensemble_fit(train, val, cfg, members=members, budget_s=budget, progress=progress)
    model_f = _ensemble_predict(fits, fc)

    y = data.test[order]
    insample = [data.insample[i] for i in order]
    n2 = score(y, naive2(insample, cfg.horizon, 24), insample, 24)
    ref = (n2.smape, n2.mase)  # OWA against the unrounded Naive2 of these files (18.383 / 2.395)

    def scored(forecast: np.ndarray) -> dict[str, float]:
        return score(y, forecast, insample, 24, naive2=ref).as_dict()

    report_scores = {
        "lstm": scored(model_f),
        "lstm_members": [scored(predict(f.model, fc)) for f in fits],
        "seasonal_naive": scored(seasonal_naive(insample, cfg.horizon, 24)),
        "naive": scored(naive(insample, cfg.horizon)),
        "naive2": scored(naive2(insample, cfg.horizon, 24)),
    }
    wall = time.perf_counter() - t0
    report: dict[str, Any] = {
        "benchmark": "m4_hourly",
        "protocol": "M4 official: train on Hourly-train, forecast the 48 test points; "
        "sMAPE, MASE (m=24), OWA vs Naive2 computed here",
        "scores": report_scores,
        "reference": {
            k: dict(zip(("smape", "mase", "owa"), v, strict=True)) for k, v in M4_HOURLY_REFERENCE.items()
        },
        "config": cfg.model_dump(mode="json"),
        "members": [
            {
                "seed": f.config.seed,
                "best_epoch": f.best_epoch,
                "epochs": len(f.history),
                "best_val_loss": f.best_val_loss,
                "stop_reason": f.stop_reason,
                "windows_seen": f.windows_seen,
                "train_seconds": round(f.train_seconds, 1),
                "samples_per_s": round(f.samples_per_s, 1),
            }
            for f in fits
        ],
        "train_seconds": round(sum(f.train_seconds for f in fits), 1),
        "wall_seconds": round(wall, 1),
        "time_budget_s": time_budget_s,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    ours, sn = report_scores["lstm"], report_scores["seasonal_naive"]
    progress(
        f"M4 Hourly  LSTM sMAPE {ours['smape']:.3f} MASE {ours['mase']:.3f} OWA {ours['owa']:.3f} | "
        f"seasonal naive {sn['smape']:.3f} / {sn['mase']:.3f} / {sn['owa']:.3f} | "
        f"ES-RNN 9.328 / 0.893 / 0.440  ({wall:.0f}s)"
    )
    path = _write_json(report, json_out)
    if path is not None:
        report["json_path"] = str(path)
        progress(f"wrote {path}")
    return report


def load_etth1(data_dir: Path) -> tuple[pd.DataFrame, float, float]:
    """ETTh1's OT as a canonical frame z-scored with the train rows' mean/std, and that mean/std."""
    raw = pd.read_csv(Path(data_dir) / "ETTh1.csv", parse_dates=["date"])
    ot = raw["OT"].to_numpy(np.float64)
    train = ot[: ETTH1_BORDERS[0]]
    mean, std = float(train.mean()), float(train.std())  # sklearn StandardScaler: ddof = 0
    frame = pd.DataFrame(
        {
            "series_id": "OT",
            "timestamp": pd.DatetimeIndex(raw["date"]).tz_localize("UTC"),
            "value": (ot - mean) / std,
        }
    )
    return frame, mean, std


def _split_windows(frame: pd.DataFrame, cfg: TrainConfig, start: int, end: int) -> WindowSet:
    """Windows whose H targets all lie in rows [start, end) (inputs may start earlier)."""
    first = max(start - 1, cfg.input_size - 1)
    origins = frame["timestamp"].iloc[first : end - cfg.horizon]
    return windows_from_frame(
        frame,
        cfg.input_size,
        cfg.horizon,
        origins=origins,
        scaler=cfg.scaler,
        calendar=cfg.calendar,
        freq="1h",
    )


def bench_etth1(
    data_dir: Path,
    horizons: tuple[int, ...] = (24, 48, 168),
    *,
    time_budget_s: float = 900,
    json_out: Path | None = None,
    progress: Progress = print,
    config: TrainConfig | None = None,
    members: int = 3,
    threads: int | None = None,
) -> dict[str, Any]:
    """ETTh1 univariate OT, Informer protocol: one model per horizon; MSE / MAE on the z-scored scale.

    Args:
        data_dir: folder with ``ETTh1.csv``.
        horizons: forecast lengths (Informer's table: 24, 48, 168, 336, 720).
        time_budget_s: wall-clock budget for all horizons together (split evenly).
        json_out: write the report (JSON) to this file.
        progress: receives progress lines.
        config: hyperparameters (default: the ``etth1`` profile; ``horizon`` is set per run).
        members: seeds per horizon (median ensemble).
        threads: torch intra-op threads (None = the config's).

    Returns:
        Per horizon: our MSE/MAE, seasonal naive's, Informer's and LSTMa's published numbers, timings.
    """
    t0 = time.perf_counter()
    frame, mean, std = load_etth1(Path(data_dir))
    base = config or make_config("etth1")
    if threads is not None:
        base = base.model_copy(update={"num_threads": threads})
    results: dict[str, Any] = {}
    for i, h in enumerate(horizons):
        cfg = base.model_copy(update={"horizon": h})
        cfg = TrainConfig(**cfg.model_dump())  # re-validate
        train = _split_windows(frame, cfg, 0, ETTH1_BORDERS[0])
        val = _split_windows(frame, cfg, ETTH1_BORDERS[0], ETTH1_BORDERS[1])
        test = _split_windows(frame, cfg, ETTH1_BORDERS[1], ETTH1_BORDERS[2])
        left = time_budget_s - (time.perf_counter() - t0)
        budget = left / (len(horizons) - i) - 5.0
        progress(
            f"ETTh1 H={h}: {len(train):,} train / {len(val):,} val / {len(test):,} test windows, "
            f"L={cfg.input_size}, budget {budget:.0f}s"
        )
        fits = _ensemble_fit(
            train, val, cfg, members=members, budget_s=budget, progress=progress, prefix="  "
        )
        pred = _ensemble_predict(fits, test)
        ours = score(test.y, pred)
        sn = score(test.y, seasonal_naive(test.x, h, 24))
        results[str(h)] = {
            "lstm": {"mse": ours.mse, "mae": ours.mae},
            "seasonal_naive": {"mse": sn.mse, "mae": sn.mae},
            "informer_paper": dict(zip(("mse", "mae"), ETTH1_INFORMER.get(h, (None, None)), strict=True)),
            "lstma_paper": dict(zip(("mse", "mae"), ETTH1_LSTMA.get(h, (None, None)), strict=True)),
            "test_windows": len(test),
            "best_epochs": [f.best_epoch for f in fits],
            "train_seconds": round(sum(f.train_seconds for f in fits), 1),
            "samples_per_s": round(float(np.mean([f.samples_per_s for f in fits])), 1),
            "config": cfg.model_dump(mode="json"),
        }
        ref = ETTH1_LSTMA.get(h)
        progress(
            f"ETTh1 H={h}  LSTM MSE {ours.mse:.4f} MAE {ours.mae:.4f} | seasonal naive {sn.mse:.4f} / "
            f"{sn.mae:.4f}" + (f" | LSTMa (paper) {ref[0]:.3f} / {ref[1]:.3f}" if ref else "")
        )
    wall = time.perf_counter() - t0
    report: dict[str, Any] = {
        "benchmark": "etth1",
        "protocol": "Informer: univariate OT; train rows 0-8639, val 8640-11519, test 11520-14399; "
        "z-score with train mean/std; MSE/MAE on that scale over all stride-1 test windows",
        "train_mean": mean,
        "train_std": std,
        "horizons": results,
        "wall_seconds": round(wall, 1),
        "time_budget_s": time_budget_s,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = _write_json(report, json_out)
    if path is not None:
        report["json_path"] = str(path)
        progress(f"wrote {path}")
    return report
