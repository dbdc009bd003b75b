"""The PJM demo's rolling-origin backtest: our LSTM, the naive baselines and the peers, one run.

    .venv/bin/python benchmarks/bench_backtest_peers.py [--days 730] [--folds 28] [--out FILE]

The demo's seven PJM zones (``demo/pjm_hourly``, read by the demo's own importer), their last
``--days`` days, go through ``seqops backtest`` (validate, features, train, backtest) in a fresh home:
the model trains once on the origins before the first fold and forecasts 24 hours from each of
``--folds`` daily origins at the end of the data. The windows it scored (a window that spans a
missing hour is not formed, as in production) are read back from the run's
``backtest/backtest_forecasts.csv``; every peer forecasts the same (zone, origin) pairs from the
history up to each origin and is scored by the same code against the same actuals.

Peers (``seqops.training.peers``): statsforecast models refit at every origin on the last
``--peer-days`` days (the missing hours linearly interpolated; they need a regular series), and
mlforecast-LightGBM fitted once on the history before the first fold, like the LSTM, then fed the
history up to each origin. The report prints each peer's scores and our MASE and sMAPE over theirs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def demo_frame(days: int) -> pd.DataFrame:
    from seqops.core.importers import ImportReport, pjm_files, read_pjm_zone

    report = ImportReport(source=str(ROOT / "demo" / "pjm_hourly"))
    parts = [read_pjm_zone(p, report) for p in pjm_files(ROOT / "demo" / "pjm_hourly")]
    frame = pd.concat(parts, ignore_index=True)
    end = frame["timestamp"].max()
    return frame[frame["timestamp"] > end - pd.Timedelta(days=days)].reset_index(drop=True)


def regular(history: pd.DataFrame) -> pd.DataFrame:
    """Every zone on an hourly grid, missing hours interpolated (the peers need regular series)."""
    out = []
    for sid, g in history.groupby("series_id"):
        s = g.set_index("timestamp")["value"].asfreq("h").interpolate("time")
        out.append(pd.DataFrame({"series_id": sid, "timestamp": s.index, "value": s.to_numpy()}))
    return pd.concat(out, ignore_index=True)


def peer_fold_forecasts(
    frame: pd.DataFrame, pairs: pd.DataFrame, names: list[str], horizon: int, peer_days: int
) -> tuple[dict[str, dict[tuple[str, pd.Timestamp], np.ndarray]], dict[str, dict[str, float]]]:
    """Each peer's forecast for every scored (series, origin) pair, and its cost."""
    from seqops.training.peers import PEERS, cpu_time, peer_forecasts

    grid = regular(frame)
    origins = sorted(pairs["origin"].unique())
    out: dict[str, dict[tuple[str, pd.Timestamp], np.ndarray]] = {}
    cost: dict[str, dict[str, float]] = {}
    for name in names:
        wall0, cpu0 = time.perf_counter(), cpu_time()
        got: dict[tuple[str, pd.Timestamp], np.ndarray] = {}
        if name == "lgbm":
            got = lgbm_folds(grid, origins, horizon)
        else:
            for origin in origins:
                hist = grid[
                    (grid["timestamp"] <= origin)
                    & (grid["timestamp"] > origin - pd.Timedelta(days=peer_days))
                ]
                fc = peer_forecasts(hist, horizon, 24, [name], progress=lambda _: None)[name]
                for sid, row in zip(sorted(hist["series_id"].unique()), fc.forecast, strict=True):
                    got[(sid, origin)] = row
        out[name] = got
        cost[name] = {
            "label": PEERS[name],
            "wall_seconds": round(time.perf_counter() - wall0, 1),
            "cpu_seconds": round(cpu_time() - cpu0, 1),
        }
        print(f"peer {PEERS[name]}: {len(origins)} origins in {cost[name]['wall_seconds']:.0f}s", flush=True)
    return out, cost


def lgbm_folds(grid: pd.DataFrame, origins: list[pd.Timestamp], horizon: int) -> dict:
    """LightGBM fitted once on the history before the first fold (as the LSTM), fed each origin's history."""
    from seqops.training.peers import lgbm_forecaster, long_frame

    train_end = origins[0] - pd.Timedelta(hours=horizon)  # the LSTM's last training targets end there
    mlf = lgbm_forecaster(24).fit(long_frame(grid[grid["timestamp"] <= train_end]))
    got = {}
    for origin in origins:
        fc = mlf.predict(horizon, new_df=long_frame(grid[grid["timestamp"] <= origin]))
        for sid, g in fc.sort_values(["unique_id", "ds"]).groupby("unique_id"):
            got[(sid, origin)] = g["forecast"].to_numpy(np.float64)
    return got


def scores_of(pairs: pd.DataFrame, forecasts: dict[str, np.ndarray], scale: np.ndarray) -> dict:
    """Mean sMAPE, MASE, MAE, RMSE per forecaster over the scored windows (the backtest's own code)."""
    from seqops.training.metrics import per_series

    y = np.stack(pairs["actual"].to_numpy())
    out = {}
    for name, f in forecasts.items():
        per = per_series(y, f, scale=scale, series_ids=pairs["series_id"].tolist())
        out[name] = {k: float(per[k].mean()) for k in ("smape", "mase", "mae", "rmse")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=730, help="history kept, days before the data's end")
    parser.add_argument("--folds", type=int, default=28, help="daily origins at the end of the data")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--peer-days", type=int, default=56, help="history the statsforecast peers fit on")
    parser.add_argument("--peers", default="autoets,autotheta,mstl,lgbm")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pjm_backtest.json")
    args = parser.parse_args(argv)

    from seqops.core.settings import Settings
    from seqops.flows.backtest import backtest_file
    from seqops.registry.tracking import download
    from seqops.training.bench import provenance
    from seqops.training.metrics import seasonal_scale
    from seqops.training.peers import cpu_time

    wall0, cpu0 = time.perf_counter(), cpu_time()
    info = provenance(threads=1)
    frame = demo_frame(args.days)
    work = Path(tempfile.mkdtemp(prefix="seqops-bench-backtest-"))
    csv = work / "pjm.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(csv, index=False)
    print(
        f"PJM demo: {frame['series_id'].nunique()} zones, {len(frame):,} rows, last {args.days} days",
        flush=True,
    )
    lstm0 = time.perf_counter()
    result = backtest_file(
        csv,
        settings=Settings(),
        horizon=24,
        season=24,
        folds=args.folds,
        home=work / "home",
        time_budget_s=None,
        max_epochs=args.max_epochs,
    )
    lstm_s = time.perf_counter() - lstm0
    settings = Settings(home=work / "home", datasets_file=work / "home" / "datasets.toml")
    logged = pd.read_csv(download(settings, result["run_id"], "backtest/backtest_forecasts.csv"))
    logged["origin"] = pd.to_datetime(logged["origin"]).dt.tz_localize("UTC")
    columns = ("actual", "model", "naive", "seasonal_naive")
    groups = logged.sort_values(["series_id", "origin", "step"]).groupby(["series_id", "origin"], sort=True)
    pairs = pd.DataFrame(
        [
            {"series_id": sid, "origin": origin, **{c: g[c].to_numpy(np.float64) for c in columns}}
            for (sid, origin), g in groups
        ]
    )
    history = {sid: g.set_index("timestamp")["value"] for sid, g in frame.groupby("series_id")}
    scale = seasonal_scale(
        [
            history[s][history[s].index <= o].to_numpy()
            for s, o in zip(pairs["series_id"], pairs["origin"], strict=True)
        ],
        24,
    )
    forecasts = {name: np.stack(pairs[name].to_numpy()) for name in ("model", "naive", "seasonal_naive")}
    names = [n for n in args.peers.split(",") if n]
    peer_f, cost = peer_fold_forecasts(frame, pairs, names, 24, args.peer_days)
    for name in names:
        forecasts[name] = np.stack(
            [peer_f[name][(s, o)] for s, o in zip(pairs["series_id"], pairs["origin"], strict=True)]
        )
    scores = scores_of(pairs, forecasts, scale)
    for name in ("model", "naive", "seasonal_naive"):  # the same windows and code as the backtest itself
        assert abs(scores[name]["mase"] - result[name]["mase"]) < 1e-9 * max(1.0, result[name]["mase"]), name
    ours = scores["model"]
    ratios = {
        name: {k: ours[k] / row[k] for k in ("smape", "mase")}
        for name, row in scores.items()
        if name != "model"
    }
    report = {
        "benchmark": "pjm_backtest_peers",
        "protocol": f"seqops backtest of the PJM demo's last {args.days} days: H=24, {args.folds} daily "
        "origins at the end; the LSTM trains once before the first fold; peers forecast the same "
        "(zone, origin) windows; sMAPE (M4), MASE (m=24, in-sample scale to each origin), MAE, RMSE",
        "windows": len(pairs),
        "zones": sorted(pairs["series_id"].unique()),
        "origins": [str(pairs["origin"].min()), str(pairs["origin"].max())],
        "scores": scores,
        "ratios_of_lstm": ratios,
        "lstm": {
            "seconds_whole_backtest": round(lstm_s, 1),
            "max_epochs": args.max_epochs,
            "run_id": result["run_id"],
        },
        "peers": cost,
        "peer_days": args.peer_days,
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "cpu_seconds": round(cpu_time() - cpu0, 1),
        "provenance": info,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"{'forecaster':16s} {'sMAPE':>7s} {'MASE':>7s} {'MAE':>9s}   LSTM / it (sMAPE, MASE)")
    for name, row in scores.items():
        r = ratios.get(name)
        tail = f"   {r['smape']:.3f}, {r['mase']:.3f}" if r else ""
        print(f"{name:16s} {row['smape']:7.3f} {row['mase']:7.3f} {row['mae']:9.1f}{tail}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
