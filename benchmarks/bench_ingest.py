"""Ingestion throughput and peak memory: `seqops ingest` of one synthetic batch, per size, in a child
process (its own peak RSS), printed beside the figures measured before the Delta Lake store and
before the batch was read, validated and published in chunks.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 500000 2000000 8000000] [--out FILE]

Each size is a CSV of 200 series x N/200 hours (about 33 bytes a row), ingested into a fresh home:
land, GX validation, one Delta commit. The JSON report goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

#: measured on this machine before the curated store became a Delta table (issue 8's report):
#: a 71 MB, 2,000,000-row CSV peaked at 2.3 GB and took 63 s (46 s of it validation)
BEFORE = {2_000_000: {"peak_rss_mb": 2300, "seconds": 63.0}}
#: measured on this machine at commit c3499e5, the last before chunked ingestion (the typed batch
#: held whole): peak memory grew with the batch, about 290 bytes a row
HELD_WHOLE = {
    500_000: {"peak_rss_mb": 508, "seconds": 11.9},
    2_000_000: {"peak_rss_mb": 870, "seconds": 30.7},
    8_000_000: {"peak_rss_mb": 2400, "seconds": 120.0},
}


def make_batch(path: Path, rows: int, series: int = 200) -> None:
    import numpy as np
    import pandas as pd

    hours = rows // series
    stamps = pd.date_range("2019-01-01", periods=hours, freq="h", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame(
        {
            "series_id": np.repeat([f"s{i:03d}" for i in range(series)], hours),
            "timestamp": np.tile(stamps, series),
            "value": (np.arange(series * hours) % 9973).astype(float) + 0.5,
        }
    )
    frame.to_csv(path, index=False)


def run(rows: int, folder: Path) -> dict:
    batch = folder / f"batch-{rows}.csv"
    # made in a child: this process stays small, so no ingest child starts as a fork of a big parent
    # (a forked child's peak RSS counts the parent's pages it shared until exec)
    subprocess.run([sys.executable, __file__, "--make", str(batch), str(rows)], check=True)
    env = {**os.environ, "SEQOPS_HOME": str(folder / f"home-{rows}")}
    seqops = str(Path(sys.executable).with_name("seqops"))
    began = time.perf_counter()
    with (folder / f"out-{rows}.txt").open("w+") as out:
        child = subprocess.Popen(
            [seqops, "ingest", str(batch), "--dataset", "default", "--json"], env=env, stdout=out
        )
        _, _, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest child's so far
        seconds = time.perf_counter() - began
        out.seek(0)
        summary = json.loads(out.read().strip().splitlines()[-1])
    peak_mb = usage.ru_maxrss / 1024
    return {
        "rows": rows,
        "file_mb": round(batch.stat().st_size / 2**20, 1),
        "accepted": summary["accepted"],
        "seconds": round(seconds, 1),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(peak_mb),
        "before": BEFORE.get(rows),
        "held_whole": HELD_WHOLE.get(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 2_000_000, 8_000_000])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--make", nargs=2, metavar=("FILE", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_batch(Path(args.make[0]), int(args.make[1]))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="seqops-bench-ingest-") as tmp:
        for rows in sorted(args.rows):
            result = run(rows, Path(tmp))
            results.append(result)
            vs = "".join(
                f" | {label}: {then['peak_rss_mb']} MB, {then['seconds']} s "
                f"({then['seconds'] / result['seconds']:.2f}x time, "
                f"{then['peak_rss_mb'] / result['peak_rss_mb']:.2f}x memory)"
                for label, then in (("held whole", result["held_whole"]), ("before", result["before"]))
                if then
            )
            print(
                f"{rows:>10,} rows {result['file_mb']:6.1f} MB: {result['seconds']:6.1f} s, "
                f"{result['rows_per_s']:>9,} rows/s, peak {result['peak_rss_mb']:5} MB{vs}",
                flush=True,
            )
    report = {
        "benchmark": "ingest",
        "command": " ".join(sys.argv),
        "finished": datetime.now(UTC).isoformat(),
        "machine": os.uname().nodename,
        "cpus": os.cpu_count(),
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
