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

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from seqops.core.windows import WindowSet, split_last_origins, windows_from_frame
from seqops.training.baselines import naive, naive2, seasonal_naive
from seqops.training.config import TrainConfig, make_config
from seqops.training.metrics import score
from seqops.training.peers import cpu_time
from seqops.training.train import fit, predict

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
ETTH1_HORIZONS = (24, 48, 96, 168, 192, 336, 720)
#: Published univariate ETTh1 rows: name -> horizon -> (MSE, MAE); sources in ETTH1_PAPER_SOURCES.
ETTH1_PAPERS: dict[str, dict[int, tuple[float, float]]] = {
    "informer_paper": ETTH1_INFORMER,
    "lstma_paper": ETTH1_LSTMA,
    "dlinear_paper": {96: (0.056, 0.180), 192: (0.071, 0.204), 336: (0.098, 0.244), 720: (0.189, 0.359)},
    "nlinear_paper": {96: (0.053, 0.177), 192: (0.069, 0.204), 336: (0.081, 0.226), 720: (0.080, 0.226)},
    "patchtst42_paper": {96: (0.055, 0.179), 192: (0.071, 0.205), 336: (0.081, 0.225), 720: (0.087, 0.232)},
    "patchtst64_paper": {96: (0.059, 0.189), 192: (0.074, 0.215), 336: (0.076, 0.220), 720: (0.087, 0.236)},
}
ETTH1_PAPER_SOURCES = {
    "informer_paper": "Zhou et al. 2021 (Informer), Table 1, ETTh1 univariate (input 96 to 720 by horizon)",
    "lstma_paper": "Zhou et al. 2021 (Informer), Table 1, LSTMa row, ETTh1 univariate",
    "dlinear_paper": "Zeng et al. 2023 (Are Transformers Effective...), Table 9 univariate, input 336; "
    "cure-lab/LTSF-Linear LTSF-Benchmark.md",
    "nlinear_paper": "Zeng et al. 2023, Table 9 univariate, NLinear, input 336",
    "patchtst42_paper": "Nie et al. 2023 (PatchTST), Table 8 univariate supervised, PatchTST/42, input 336",
    "patchtst64_paper": "Nie et al. 2023 (PatchTST), Table 8 univariate supervised, PatchTST/64, input 512",
}
M4_HOURLY_HORIZON = 48
Split = Literal["validation", "test"]


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


def load_m4_hourly(data_dir: Path, split: Split = "test") -> M4Hourly:
    """Read ``Hourly-train.csv`` / ``Hourly-test.csv`` (wide, right-padded with empty cells).

    ``split="validation"`` cuts every series' last 48 training points off as the target: the model
    (and every peer) sees only what is before them, and ``Hourly-test.csv`` is not read at all.
    """
    train = pd.read_csv(Path(data_dir) / "Hourly-train.csv", index_col=0)
    cut = M4_HOURLY_HORIZON if split == "validation" else 0
    if split == "test":
        test_frame = pd.read_csv(Path(data_dir) / "Hourly-test.csv", index_col=0)
        if list(train.index) != list(test_frame.index):
            raise ValueError("train and test files list different series")
    elif split != "validation":
        raise ValueError(f"split must be 'validation' or 'test', not {split!r}")
    start = pd.Timestamp("2000-01-01", tz="UTC")
    insample, targets, parts = [], [], []
    for sid, row in zip(train.index, train.to_numpy(np.float64), strict=True):
        values = row[~np.isnan(row)]
        if cut:
            values, target = values[:-cut], values[-cut:]
            targets.append(target)
        insample.append(values)
        stamps = start + pd.to_timedelta(np.arange(len(values)), unit="h")
        parts.append(pd.DataFrame({"series_id": str(sid), "timestamp": stamps, "value": values}))
    return M4Hourly(
        ids=[str(s) for s in train.index],
        insample=insample,
        test=np.stack(targets) if cut else test_frame.to_numpy(np.float64),
        frame=pd.concat(parts, ignore_index=True),
    )


def provenance(*, threads: int | None, command: str | None = None) -> dict[str, Any]:
    """What a result file needs to be checked: command, git commit, machine, threads, versions."""
    import os
    import platform
    import shlex
    import subprocess
    import sys

    import torch

    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": git("rev-parse", "HEAD") or None,
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": {"node": platform.node(), "cpu": cpu, "cpus": os.cpu_count(), "os": platform.platform()},
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_json(report: dict[str, Any], json_out: Path | None) -> Path | None:
    if json_out is None:
        return None
    path = Path(json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


@dataclass(frozen=True)
class Member:
    """One seed's training job: picklable, so that seeds can train in parallel processes."""

    benchmark: Literal["m4_hourly", "etth1"]
    data_dir: str
    split: Split
    config: dict[str, Any]
    label: str


def _m4_windows(data: M4Hourly, cfg: TrainConfig) -> tuple[WindowSet, WindowSet, WindowSet, np.ndarray]:
    """Training / early-stopping windows, the forecast windows, and each forecast row's file index."""
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
    return train, val, fc, np.array([data.ids.index(s) for s in fc.ids()])


def run_member(member: Member, progress: Progress | None = None) -> dict[str, Any]:
    """Train one seed from the raw files and return its forecasts and how the training went.

    M4: forecasts [S, 48] in file order. ETTh1: test and validation forecasts, rows in window order.
    ``progress`` None (a worker process) prints the epoch lines.
    """
    wall0, cpu0 = time.perf_counter(), cpu_time()
    say = progress or (lambda line: print(line, flush=True))
    cfg = TrainConfig(**member.config)
    on_epoch = _epoch_printer(say, f"  [{member.label} seed {cfg.seed}] ")
    out: dict[str, Any] = {}
    if member.benchmark == "m4_hourly":
        data = load_m4_hourly(Path(member.data_dir), member.split)
        train, val, fc, order = _m4_windows(data, cfg)
        fitted = fit(train, val, cfg, on_epoch=on_epoch)
        forecast = np.empty((len(data.ids), cfg.horizon))
        forecast[order] = predict(fitted.model, fc)
        out["forecast"] = forecast
    else:
        frame, _, _ = load_etth1(Path(member.data_dir))
        sets = _etth1_sets(frame, cfg)
        fitted = fit(sets["train"], sets["validation"], cfg, on_epoch=on_epoch)
        out["forecast"] = predict(fitted.model, sets["test"])
        out["validation_forecast"] = predict(fitted.model, sets["validation"])
    out.update(
        seed=cfg.seed,
        skip_period=fitted.config.skip_period,  # as fit chose it on validation
        best_epoch=fitted.best_epoch,
        epochs=len(fitted.history),
        best_val_loss=fitted.best_val_loss,
        stop_reason=fitted.stop_reason,
        windows_seen=fitted.windows_seen,
        train_seconds=round(fitted.train_seconds, 1),
        samples_per_s=round(fitted.samples_per_s, 1),
        wall_seconds=round(time.perf_counter() - wall0, 1),
        cpu_seconds=round(cpu_time() - cpu0, 1),
    )
    say(
        f"  [{member.label} seed {cfg.seed}] best epoch {fitted.best_epoch} of {len(fitted.history)} "
        f"({fitted.stop_reason}), {fitted.samples_per_s:,.0f} win/s, {out['cpu_seconds']:.0f} CPU-s"
    )
    return out


def run_members(
    members: Sequence[Member], *, jobs: int = 1, progress: Progress = print
) -> list[dict[str, Any]]:
    """Train the members, ``jobs`` processes at a time (1: in this process); results in input order."""
    if jobs <= 1 or len(members) <= 1:
        return [run_member(m, progress) for m in members]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    progress(f"training {len(members)} members, {jobs} processes at a time")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(run_member, members))


def _epoch_printer(progress: Progress, prefix: str) -> Callable[[Any], None]:
    return lambda stats: progress(f"{prefix}{stats.line()}")


def _mean_std(rows: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    keys = [k for k in rows[0] if k != "n_series"]
    values = {k: np.array([r[k] for r in rows], np.float64) for k in keys}
    return (
        {k: float(v.mean()) for k, v in values.items()},
        {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
    )


def _ratios(
    ours: dict[str, float], others: dict[str, dict[str, float]], keys: Sequence[str]
) -> dict[str, Any]:
    """ours / theirs per metric: below 1 means ours is better."""
    return {
        name: {k: ours[k] / row[k] for k in keys if row.get(k) not in (None, 0.0)}
        for name, row in others.items()
    }


def bench_m4_hourly(
    data_dir: Path,
    *,
    split: Split = "test",
    seeds: int = 3,
    jobs: int = 1,
    peers: Sequence[str] = (),
    json_out: Path | None = None,
    progress: Progress = print,
    config: TrainConfig | None = None,
    threads: int | None = 1,
    command: str | None = None,
) -> dict[str, Any]:
    """M4 Hourly, official protocol: our LSTM (``seeds`` seeds), the baselines and the peers, one run.

    Args:
        data_dir: folder with ``Hourly-train.csv`` and ``Hourly-test.csv``.
        split: ``test`` (the official 48 test points) or ``validation`` (every series' last 48
            training points; the test file is not read): choices are made on ``validation`` only.
        seeds: seeds trained (0, 1, ...); reported one by one, as mean and spread, and their median
            ensemble as its own row.
        jobs: seeds trained at once, each in its own process.
        peers: names from :data:`seqops.training.peers.PEERS`, fitted on the same series in this run.
        json_out: write the report (JSON) to this file.
        progress: receives progress lines (per epoch).
        config: hyperparameters (default: the ``m4_hourly`` profile). Training stops by its rule
            (``max_epochs``, early stopping on the last ``val_origins`` origins of the training part).
        threads: torch intra-op threads per member.
        command: recorded as the command that produced the report (default: this process's argv).

    Returns:
        Scores of every seed, their mean and spread, the ensemble, the baselines and the peers; ratios
        of our mean to each; the official references; config, timings and provenance.
    """
    t0, cpu0 = time.perf_counter(), cpu_time()
    info = provenance(threads=threads, command=command)
    cfg = config or make_config("m4_hourly")
    cfg = cfg.model_copy(update={"num_threads": threads})
    data = load_m4_hourly(Path(data_dir), split)
    if cfg.horizon != data.horizon:
        raise ValueError(f"M4 Hourly's horizon is {data.horizon}, config says {cfg.horizon}")
    progress(
        f"M4 Hourly ({split}): {len(data.ids)} series, H={cfg.horizon}, L={cfg.input_size}, {seeds} seed(s), "
        f"{jobs} at a time; stop: early stopping (patience {cfg.patience}) or {cfg.max_epochs} epochs"
    )
    members = [
        Member("m4_hourly", str(data_dir), split, {**cfg.model_dump(), "seed": cfg.seed + k}, split)
        for k in range(seeds)
    ]
    trained = run_members(members, jobs=jobs, progress=progress)

    y, insample, h = data.test, data.insample, cfg.horizon
    n2 = score(y, naive2(insample, h, 24), insample, 24)
    ref = (n2.smape, n2.mase)  # OWA against the unrounded Naive2 of these files (18.383 / 2.395 on test)

    def scored(forecast: np.ndarray) -> dict[str, float]:
        return score(y, forecast, insample, 24, naive2=ref).as_dict()

    seed_scores = [scored(t["forecast"]) for t in trained]
    mean, std = _mean_std(seed_scores)
    baselines = {
        "seasonal_naive": scored(seasonal_naive(insample, h, 24)),
        "naive": scored(naive(insample, h)),
        "naive2": scored(naive2(insample, h, 24)),
    }
    peer_rows: dict[str, dict[str, float]] = {}
    peer_cost: dict[str, dict[str, float]] = {}
    if peers:
        from seqops.training.peers import PEERS, peer_forecasts

        order = np.argsort(data.ids)  # the peers' rows follow the sorted series ids
        for name, pf in peer_forecasts(
            data.frame, h, 24, peers, threads=threads or 1, progress=progress
        ).items():
            forecast = np.empty_like(y)
            forecast[order] = pf.forecast
            peer_rows[name] = scored(forecast)
            peer_cost[name] = {
                "label": PEERS[name],
                "wall_seconds": round(pf.wall_seconds, 1),
                "cpu_seconds": round(pf.cpu_seconds, 1),
            }
    scores: dict[str, Any] = {
        "lstm_mean": mean,
        "lstm_std": std,
        "lstm_seeds": seed_scores,
        "lstm_ensemble": scored(np.median(np.stack([t["forecast"] for t in trained]), axis=0)),
        **baselines,
        **peer_rows,
    }
    others = {**baselines, **peer_rows}
    if split == "test":
        others.update(
            {k: dict(zip(("smape", "mase", "owa"), v, strict=True)) for k, v in M4_HOURLY_REFERENCE.items()}
        )
    report: dict[str, Any] = {
        "benchmark": "m4_hourly",
        "split": split,
        "protocol": "M4 official: train on Hourly-train, forecast 48 points; sMAPE, MASE (m=24), OWA vs "
        "Naive2 computed here. split=validation: the last 48 training points of every series are the "
        "target and the test file is not read",
        "scores": scores,
        "ratios_of_lstm_mean": _ratios(mean, others, ("smape", "mase", "owa")),
        "peers": peer_cost,
        "reference": {
            k: dict(zip(("smape", "mase", "owa"), v, strict=True)) for k, v in M4_HOURLY_REFERENCE.items()
        },
        "config": cfg.model_dump(mode="json"),
        "members": [{k: v for k, v in t.items() if not k.endswith("forecast")} for t in trained],
        "train_cpu_seconds_per_seed": round(float(np.mean([t["cpu_seconds"] for t in trained])), 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(cpu_time() - cpu0, 1),
        "provenance": info,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    progress(
        f"M4 Hourly ({split})  LSTM mean of {seeds}: sMAPE {mean['smape']:.3f} ± {std['smape']:.3f}  "
        f"MASE {mean['mase']:.3f} ± {std['mase']:.3f}  OWA {mean['owa']:.3f} | seasonal naive "
        f"{baselines['seasonal_naive']['smape']:.3f} / {baselines['seasonal_naive']['mase']:.3f}  "
        f"({report['wall_seconds']:.0f}s)"
    )
    path = _write_json(report, json_out)
    if path is not None:
        report["json_path"] = str(path)
        progress(f"wrote {path}")
    return report


#: The M4 choices compared on the validation split (one seed each): the profile and one change each.
M4_VARIANTS: dict[str, dict[str, Any]] = {
    "profile": {},
    "no_seasonal_skip": {"naive_skip": False},
    "patch_12": {"patch_len": 12},  # 14 LSTM steps of half a day instead of 7 of a day
    "mase_loss": {"loss_weighting": "seasonal"},
}


def select_m4_hourly(
    data_dir: Path,
    *,
    variants: dict[str, dict[str, Any]] | None = None,
    jobs: int = 1,
    json_out: Path | None = None,
    progress: Progress = print,
    threads: int | None = 1,
    command: str | None = None,
) -> dict[str, Any]:
    """Choose the M4 settings on the validation split: each variant (profile + overrides), seed 0.

    The pick is the variant with the lowest OWA on the last 48 training points of every series; the
    ``m4_hourly`` profile is meant to be it (``tests/test_training_bench.py`` checks the committed
    result against the profile).
    """
    t0 = time.perf_counter()
    info = provenance(threads=threads, command=command)
    variants = M4_VARIANTS if variants is None else variants
    base = make_config("m4_hourly").model_dump()
    members = [
        Member("m4_hourly", str(data_dir), "validation", {**base, **v, "num_threads": threads}, name)
        for name, v in variants.items()
    ]
    trained = run_members(members, jobs=jobs, progress=progress)
    data = load_m4_hourly(Path(data_dir), "validation")
    y, insample, h = data.test, data.insample, M4_HOURLY_HORIZON
    n2 = score(y, naive2(insample, h, 24), insample, 24)
    rows = {
        name: score(y, t["forecast"], insample, 24, naive2=(n2.smape, n2.mase)).as_dict()
        for name, t in zip(variants, trained, strict=True)
    }
    pick = min(rows, key=lambda name: rows[name]["owa"])
    for name, row in rows.items():
        progress(
            f"{name:18s} sMAPE {row['smape']:.3f}  MASE {row['mase']:.3f}  OWA {row['owa']:.4f}"
            + ("  <- pick" if name == pick else "")
        )
    report = {
        "benchmark": "m4_hourly_selection",
        "split": "validation",
        "rule": "lowest OWA on the validation split (each series' last 48 training points), seed 0",
        "variants": {name: {"overrides": variants[name], "scores": rows[name]} for name in variants},
        "pick": pick,
        "members": [
            {"variant": name, **{k: v for k, v in t.items() if not k.endswith("forecast")}}
            for name, t in zip(variants, trained, strict=True)
        ],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "provenance": info,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = _write_json(report, json_out)
    if path is not None:
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


def _etth1_sets(frame: pd.DataFrame, cfg: TrainConfig) -> dict[str, WindowSet]:
    """The train / validation / test windows of one horizon (Informer's borders)."""
    lows = (0, *ETTH1_BORDERS[:2])
    bounds = zip(("train", "validation", "test"), lows, ETTH1_BORDERS, strict=True)
    return {name: _split_windows(frame, cfg, lo, hi) for name, lo, hi in bounds}


def bench_etth1(
    data_dir: Path,
    horizons: tuple[int, ...] = ETTH1_HORIZONS,
    *,
    seeds: int = 3,
    jobs: int = 1,
    json_out: Path | None = None,
    progress: Progress = print,
    config: TrainConfig | None = None,
    threads: int | None = 1,
    command: str | None = None,
) -> dict[str, Any]:
    """ETTh1 univariate OT, Informer protocol: models per horizon; MSE / MAE on the z-scored scale.

    Args:
        data_dir: folder with ``ETTh1.csv``.
        horizons: forecast lengths (Informer: 24, 48, 168, 336, 720; DLinear / PatchTST: 96-720).
        seeds: seeds per horizon, reported one by one, as mean and spread, and as a median ensemble.
        jobs: members trained at once, each in its own process.
        json_out: write the report (JSON) to this file.
        progress: receives progress lines.
        config: hyperparameters (default: the ``etth1`` profile; ``horizon`` is set per run).
            Training stops by early stopping on the validation rows or at ``max_epochs``.
        threads: torch intra-op threads per member.
        command: recorded as the command that produced the report (default: this process's argv).

    Returns:
        Per horizon: every seed's test and validation MSE/MAE, their mean and spread, the ensemble,
        last-value and seasonal naive, the published rows; ratios; timings and provenance.
    """
    t0, cpu0 = time.perf_counter(), cpu_time()
    info = provenance(threads=threads, command=command)
    frame, mean, std = load_etth1(Path(data_dir))
    base = (config or make_config("etth1")).model_copy(update={"num_threads": threads})
    configs = {h: TrainConfig(**{**base.model_dump(), "horizon": h}) for h in horizons}
    members = [
        Member("etth1", str(data_dir), "test", {**configs[h].model_dump(), "seed": base.seed + k}, f"H={h}")
        for h in horizons
        for k in range(seeds)
    ]
    progress(
        f"ETTh1: horizons {', '.join(map(str, horizons))}, {seeds} seed(s) each, {jobs} at a time, "
        f"L={base.input_size}; stop: early stopping (patience {base.patience}) or {base.max_epochs} epochs"
    )
    trained = run_members(members, jobs=jobs, progress=progress)
    results: dict[str, Any] = {}
    for i, h in enumerate(horizons):
        sets = _etth1_sets(frame, configs[h])
        test, val = sets["test"], sets["validation"]
        runs = trained[i * seeds : (i + 1) * seeds]

        def mse_mae(y: np.ndarray, f: np.ndarray) -> dict[str, float]:
            s = score(y, f)
            return {"mse": s.mse, "mae": s.mae}

        seed_rows = [mse_mae(test.y, r["forecast"]) for r in runs]
        seed_mean, seed_std = _mean_std(seed_rows)
        row: dict[str, Any] = {
            "lstm_mean": seed_mean,
            "lstm_std": seed_std,
            "lstm_seeds": seed_rows,
            "lstm_seeds_validation": [mse_mae(val.y, r["validation_forecast"]) for r in runs],
            "lstm_ensemble": mse_mae(test.y, np.median(np.stack([r["forecast"] for r in runs]), axis=0)),
            "naive": mse_mae(test.y, naive(test.x, h)),
            "seasonal_naive": mse_mae(test.y, seasonal_naive(test.x, h, 24)),
        }
        papers = {
            name: dict(zip(("mse", "mae"), table[h], strict=True))
            for name, table in ETTH1_PAPERS.items()
            if h in table
        }
        row["papers"] = papers
        row["ratios_of_lstm_mean"] = _ratios(
            seed_mean,
            {"naive": row["naive"], "seasonal_naive": row["seasonal_naive"], **papers},
            ("mse", "mae"),
        )
        row.update(
            test_windows=len(test),
            members=[{k: v for k, v in r.items() if not k.endswith("forecast")} for r in runs],
            config=configs[h].model_dump(mode="json"),
        )
        results[str(h)] = row
        progress(
            f"ETTh1 H={h}  LSTM mean of {seeds}: MSE {seed_mean['mse']:.4f} ± {seed_std['mse']:.4f} "
            f"MAE {seed_mean['mae']:.4f} | naive {row['naive']['mse']:.4f} / {row['naive']['mae']:.4f} | "
            f"seasonal naive {row['seasonal_naive']['mse']:.4f} / {row['seasonal_naive']['mae']:.4f}"
        )
    report: dict[str, Any] = {
        "benchmark": "etth1",
        "protocol": "Informer: univariate OT; train rows 0-8639, val 8640-11519, test 11520-14399; "
        "z-score with train mean/std; MSE/MAE on that scale over all stride-1 test windows",
        "train_mean": mean,
        "train_std": std,
        "horizons": results,
        "paper_sources": ETTH1_PAPER_SOURCES,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(cpu_time() - cpu0, 1),
        "provenance": info,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = _write_json(report, json_out)
    if path is not None:
        report["json_path"] = str(path)
        progress(f"wrote {path}")
    return report
