"""What one node does with many series: a synthetic dataset through ingest, the window build,
Feast apply + materialize, and the training-set retrieval, each stage timed in its own process.

    .venv/bin/python benchmarks/bench_scale.py [--series 10000] [--hours 336] [--out FILE]

The batch is ``--series`` hourly series of ``--hours`` hours (a daily cycle with noise, ~33 bytes a
row) in the ``default`` dataset (L = 168, H = 24). Each stage is the ``seqops`` command a DAG task
runs (``ingest``, ``features build``, ``features apply``, ``features materialize``) in a fresh
embedded home, plus the historical retrieval of every training window through Feast
(``seqops.features.store.historical``, what ``train_forecaster`` reads). Reported per stage: wall
seconds, rows (or windows) per second and the stage's peak RSS. The figures feed the sizing note in
the README ("What growth costs").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RETRIEVE = """
import json, sys, time
from seqops.core.settings import get_settings
from seqops.features.store import historical
from seqops.features.tables import read_index
s = get_settings()
index = read_index(s, "default")
import pandas as pd
pairs = index.rename(columns={"window_end": "event_timestamp"})[["series_id", "event_timestamp"]]
pairs["event_timestamp"] = pd.to_datetime(pairs["event_timestamp"], utc=True)
t = time.perf_counter()
table = historical("default", pairs, settings=s)
print(json.dumps({"windows": table.num_rows, "seconds": time.perf_counter() - t}))
"""


def make_batch(path: Path, series: int, hours: int) -> int:
    import numpy as np
    import pandas as pd

    t = np.arange(hours)
    stamps = pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = np.random.default_rng(0)
    level = rng.uniform(50, 500, series)[:, None]
    values = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24)[None, :]) + rng.normal(0, 1, (series, hours))
    frame = pd.DataFrame(
        {
            "series_id": np.repeat([f"s{i:06d}" for i in range(series)], hours),
            "timestamp": np.tile(stamps, series),
            "value": values.ravel().round(3),
        }
    )
    frame.to_csv(path, index=False)
    return len(frame)


def stage(name: str, argv: list[str], env: dict[str, str]) -> dict:
    """Run one stage as a child process; its wall time and peak RSS (the largest child so far)."""
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{name:12s} {seconds:7.1f} s   peak RSS so far {peak:6.0f} MB", flush=True)
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb_so_far": round(peak),
        "stdout_tail": done.stdout[-300:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=336)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()

    from seqops.training.bench import provenance

    info = provenance(threads=None)
    seqops = str(Path(sys.executable).with_name("seqops"))
    with tempfile.TemporaryDirectory(prefix="seqops-bench-scale-") as tmp:
        batch = Path(tmp) / "scale.csv"
        rows = make_batch(batch, args.series, args.hours)
        env = {**os.environ, "SEQOPS_HOME": str(Path(tmp) / "home"), "SEQOPS_FEATURES_DATASETS": "default"}
        size = batch.stat().st_size / 2**20
        print(f"{args.series:,} series x {args.hours} hours = {rows:,} rows ({size:.0f} MB)", flush=True)
        stages = {
            "ingest": stage("ingest", [seqops, "ingest", str(batch), "--dataset", "default", "--json"], env),
            "build": stage("build", [seqops, "features", "build", "--dataset", "default"], env),
            "apply": stage("apply", [seqops, "features", "apply"], env),
            "materialize": stage(
                "materialize", [seqops, "features", "materialize", "--dataset", "default"], env
            ),
            "retrieve": stage("retrieve", [sys.executable, "-c", RETRIEVE], env),
        }
    windows = args.series * (args.hours - 168 - 24 + 1)  # origins with a full window and full targets
    retrieved = json.loads(stages["retrieve"]["stdout_tail"].strip().splitlines()[-1])
    rates = {
        "ingest_rows_per_s": round(rows / stages["ingest"]["seconds"]),
        "build_rows_per_s": round(rows / stages["build"]["seconds"]),
        "materialize_series_per_s": round(args.series / stages["materialize"]["seconds"]),
        "retrieve_windows_per_s": round(retrieved["windows"] / retrieved["seconds"]),
    }
    report = {
        "benchmark": "scale",
        "series": args.series,
        "hours": args.hours,
        "rows": rows,
        "training_windows": windows,
        "retrieved_windows": retrieved["windows"],
        "stages": {k: {kk: vv for kk, vv in v.items() if kk != "stdout_tail"} for k, v in stages.items()},
        "rates": rates,
        "provenance": info,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(rates, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
