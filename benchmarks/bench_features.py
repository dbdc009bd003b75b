"""Feature-store benchmark: seqops next to plain Feast on the same data, in the same run.

Not a test: it prints numbers and ratios and writes them to ``benchmarks/results/features.json``
(``--out``), with the command, commit and machine; the committed file feeds ``features/README.md``.

Data: M4 Hourly training series (414 series, 700 or 960 points; /work/shared/data/m4_hourly or
``--m4``). M4 has no timestamps: series get hourly timestamps from a fixed epoch, 2000-01-01 00:00
UTC. L = 168, H = 48 (``datasets.toml``), so 284,362 windows, 264,490 with targets. Optionally
(``--pjm``, default on) the 7 PJM zones for the parity check the issue asks for (200 samples).

What is compared (each pair on the same window data, in this process's run):

materialization, first load of the whole history into the online store
    seqops: ``seqops.features.store.materialize_range`` over all window ends (DuckDB offline store, the
    window as one Array(Float32), ``pull_latest_features: true``).
    plain: a Feast repo with Feast's template defaults -- ``file`` offline store, file registry,
    SQLite online store, default materialization (pull every row in the range, deduplicate in
    Python) -- and the window as 168 Float32 lag columns ``x_000..x_167`` (one feature per lag).
training set for every (series, origin) window (284,362 entity rows)
    seqops: ``seqops.features.training_set.build_training_set`` (DuckDB, entity frame split into 50,000-row
    chunks at series boundaries, converted to numpy per chunk) -> WindowSet.
    plain: one unsplit ``get_historical_features`` of the same training feature service on the same
    DuckDB store, ``.to_df()`` (Feast's documented path), then ``np.stack`` of the list columns.
    Each runs in a child process, so its peak memory is its own.
online read p50 / p99 of one series and of 100 series
    seqops: ``seqops.features.store.read_online`` (serving service: window, calendar, scale; TTL enforced;
    float32 arrays decoded straight from the response).
    plain (lag columns): ``get_online_features`` of the 168 lag features, ``.to_dict()``.
    plain (arrays): ``get_online_features`` of the same serving service, ``.to_dict()``.

Usage:
    .venv/bin/python benchmarks/bench_features.py [--home DIR] [--no-pjm] [--reads 300]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEQOPS_BENCH_DATA_DIR", REPO.parent / "shared" / "data"))
EPOCH = "2000-01-01T00:00:00+00:00"
T_START = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T_START:7.1f}s] {message}", flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- data --------------------------------------------------------------------------------------------
def load_m4(settings, path: Path) -> int:
    """M4 Hourly training series into the curated store as dataset ``m4_hourly``."""
    import numpy as np
    import pandas as pd

    from seqops.core.store import BatchRef, CuratedStore

    store = CuratedStore(settings)
    if store.series("m4_hourly"):
        return len(store.series("m4_hourly"))
    with path.open() as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = list(reader)
    epoch = pd.Timestamp(EPOCH)
    frames = []
    for row in rows:
        values = np.array([float(v) for v in row[1:] if v])
        stamps = epoch + pd.to_timedelta(np.arange(len(values)), unit="h")
        frames.append(pd.DataFrame({"series_id": row[0], "timestamp": stamps, "value": values}))
    ref = BatchRef(
        "m4_hourly", "m4hourlytrain", "-", str(path), path.name, datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    )
    store.write("m4_hourly", ref, pd.concat(frames, ignore_index=True))
    return len(rows)


def load_pjm(settings, folder: Path) -> int:
    """The 7 PJM zone files into the curated store as dataset ``pjm`` (seqops' own importer rules)."""
    from seqops.core.importers import ImportReport, pjm_files, read_pjm_zone
    from seqops.core.store import BatchRef, CuratedStore

    store = CuratedStore(settings)
    if store.series("pjm"):
        return len(store.series("pjm"))
    report = ImportReport(source=str(folder))
    for path in pjm_files(folder):
        frame = read_pjm_zone(path, report)
        ref = BatchRef(
            "pjm",
            f"pjm{path.stem[:10]}",
            "-",
            str(path),
            path.name,
            datetime(2024, 1, 1, tzinfo=UTC).isoformat(),
        )
        store.write("pjm", ref, frame)
    return len(report.series)


# ---- plain Feast ---------------------------------------------------------------------------------------
def timed_materialize(fn, source_rows: int, online_rows: int) -> dict:
    t = time.perf_counter()
    fn()
    sec = time.perf_counter() - t
    return {
        "seconds": round(sec, 2),
        "source_rows": source_rows,
        "online_rows_written": online_rows,
        "source_rows_per_s": round(source_rows / sec),
        "online_rows_per_s": round(online_rows / sec, 1),
    }


def plain_store(folder: Path, windows_path: str, length: int):
    """Feast template defaults with lag columns, on a copy of the window table."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float32

    folder.mkdir(parents=True, exist_ok=True)
    lag_path = folder / "windows_lag.parquet"
    if not lag_path.exists():
        src = pq.ParquetFile(windows_path)
        writer = None
        for batch in src.iter_batches(batch_size=50_000, columns=["series_id", "window_end", "x"]):
            x = batch.column("x").flatten().to_numpy().reshape(-1, length)
            cols = {"series_id": batch.column("series_id"), "window_end": batch.column("window_end")}
            cols |= {f"x_{i:03d}": pa.array(x[:, i], pa.float32()) for i in range(length)}
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(lag_path, table.schema)
            writer.write_table(table)
        writer.close()
    config = RepoConfig(
        project="plain",
        provider="local",
        registry=str(folder / "registry.db"),
        online_store={"type": "sqlite", "path": str(folder / "online.db")},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(repo_path=str(folder), config=config)
    series = Entity(name="series", join_keys=["series_id"], value_type=ValueType.STRING)
    source = FileSource(name="plain_windows", path=str(lag_path), timestamp_field="window_end")
    view = FeatureView(
        name="plain_window",
        entities=[series],
        ttl=__import__("datetime").timedelta(hours=2),
        schema=[Field(name=f"x_{i:03d}", dtype=Float32) for i in range(length)],
        source=source,
        online=True,
    )
    store.apply([series, source, view])
    return store, [f"plain_window:x_{i:03d}" for i in range(length)]


# ---- timing helpers -----------------------------------------------------------------------------------
def percentiles(samples: list[float]) -> dict:
    import numpy as np

    ms = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def time_reads(fn, ids_list: list[list[str]]) -> dict:
    fn(ids_list[0])  # warm: registry cache, connections
    samples = []
    for ids in ids_list:
        t = time.perf_counter()
        fn(ids)
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


# ---- child processes (own peak memory) -------------------------------------------------------------------
def child_training(kind: str) -> dict:
    import numpy as np

    from seqops.core.settings import get_settings
    from seqops.features import store
    from seqops.features.training_set import build_training_set

    settings = get_settings()  # a child process: its home and datasets come from the env it was given
    if kind == "seqops-prepare":  # a separate home (other TTL): windows and apply first, untimed
        from seqops.features.tables import build_windows

        build_windows("m4_hourly", settings=settings)
        with contextlib.redirect_stdout(sys.stderr):
            store.apply(settings=settings)
        kind = "seqops"
    store.open_store(settings=settings)  # registry and Feast import outside the timing
    began = time.perf_counter()
    if kind == "seqops":
        stats: list = []
        ws = build_training_set(
            "m4_hourly",
            chunk_rows=50_000,
            stats=stats,
            progress=lambda d, n: say(f"  seqops training set: {d}/{n} entity rows"),
            settings=settings,
        )
        seconds = time.perf_counter() - began
        return {
            "seconds": round(seconds, 2),
            "entity_rows": stats[0].requested,
            "rows": len(ws),
            "chunks": stats[0].chunks,
            "peak_rss_mb": round(peak_rss_mb()),
            "x_shape": list(ws.x.shape),
        }
    import pandas as pd

    from seqops.features.tables import read_index

    entity = read_index(settings, "m4_hourly").rename(columns={"window_end": "event_timestamp"})
    fs = store.open_store(settings=settings)
    say(f"  plain training set: one get_historical_features call for {len(entity)} entity rows")
    df = fs.get_historical_features(
        entity_df=entity, features=fs.get_feature_service("m4_hourly_training")
    ).to_df()
    df = df[df["y"].notna()]
    x = np.stack(df["x"].to_numpy()).astype(np.float32)
    y = np.stack(df["y"].to_numpy()).astype(np.float32)
    cal = np.stack(df["calendar"].to_numpy()).astype(np.float32)
    seconds = time.perf_counter() - began
    del x, y, cal
    return {
        "seconds": round(seconds, 2),
        "entity_rows": len(entity),
        "rows": len(df),
        "chunks": 1,
        "peak_rss_mb": round(peak_rss_mb()),
        "x_shape": [len(df), 168],
        "pandas": pd.__version__,
    }


def run_child(kind: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = out.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    if out.returncode != 0 or not lines:
        return {"failed": f"exit code {out.returncode}", "peak_rss_mb": None, "seconds": None}
    return json.loads(lines[-1])


# ---- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="SEQOPS_HOME to use (default: a temp dir)")
    parser.add_argument("--m4", type=Path, default=SHARED / "m4_hourly" / "Hourly-train.csv")
    parser.add_argument("--pjm-dir", type=Path, default=SHARED / "pjm_hourly")
    parser.add_argument("--no-pjm", action="store_true", help="skip the PJM parity run")
    parser.add_argument("--reads", type=int, default=300, help="online reads per measurement")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "features.json")
    parser.add_argument(
        "--ttl-study", action="store_true", help="also build the training set with the input-view TTL = H"
    )
    parser.add_argument("--child", choices=["seqops", "plain", "seqops-prepare"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child_training(args.child)), flush=True)
        return

    home = args.home or Path(tempfile.mkdtemp(prefix="seqops-bench-features-"))
    datasets = "m4_hourly" if args.no_pjm else "m4_hourly,pjm"
    from seqops.core.settings import Settings

    settings = Settings(home=home, features_datasets=datasets.split(","), profile="embedded")
    # the child processes build the same settings from their environment
    child_env = {k: v for k, v in os.environ.items() if k != "SEQOPS_PROFILE"}
    child_env |= {"SEQOPS_HOME": str(home), "SEQOPS_FEATURES_DATASETS": datasets}
    results: dict = {
        "started": datetime.now(UTC).isoformat(),
        "home": str(home),
        "machine": os.uname().nodename,
    }
    results["cpus"] = os.cpu_count()
    results["load_avg_at_start"] = os.getloadavg()

    say(f"home {home}")
    say("loading M4 Hourly into the curated store")
    n_series = load_m4(settings, args.m4)
    say(f"  {n_series} series")

    from seqops.features.tables import build_windows

    t = time.perf_counter()
    build = build_windows("m4_hourly", settings=settings)
    results["build_windows"] = {"seconds": round(time.perf_counter() - t, 2), **build.to_dict()}
    seconds = results["build_windows"]["seconds"]
    say(f"windows: {build.windows} windows, {build.targets} with targets, {seconds} s")

    say("import feast + apply")
    t = time.perf_counter()
    from seqops.features import store

    applied = store.apply(settings=settings)
    results["apply_seconds"] = round(time.perf_counter() - t, 2)
    say(f"  applied {applied.feature_views} in {results['apply_seconds']} s")

    # -- materialization ------------------------------------------------------------------------------------
    first = store.utc(build.first_window_end)
    last = store.utc(build.last_window_end)
    fs = store.open_store(settings=settings)
    say("materialize, seqops: the whole history of the window view (like for like with plain)")
    results["materialize_seqops"] = timed_materialize(
        lambda: fs.materialize(start_date=first, end_date=last, feature_views=["m4_hourly_window"]),
        build.windows,
        n_series,
    )
    say(f"  {results['materialize_seqops']}")
    say("materialize, seqops: all 3 online views (window, calendar, scale)")
    results["materialize_seqops_all_views"] = timed_materialize(
        lambda: store.materialize_range("m4_hourly", first, last, settings=settings),
        build.windows * 3,
        n_series * 3,
    )
    say(f"  {results['materialize_seqops_all_views']}")
    from seqops.features.materialize import materialize

    t = time.perf_counter()
    routine = materialize("m4_hourly", settings=settings)
    results["materialize_seqops_incremental"] = {
        "seconds": round(time.perf_counter() - t, 2),
        **routine.to_dict(),
    }
    say(
        "  routine run (seqops.features.materialize): "
        f"{results['materialize_seqops_incremental']['seconds']} s"
    )

    say("materialize, plain Feast: file offline store, lag columns, defaults")
    plain, lag_refs = plain_store(home / "plain", build.windows_path, 168)
    results["materialize_plain"] = timed_materialize(
        lambda: plain.materialize(start_date=first, end_date=last), build.windows, n_series
    )
    say(f"  {results['materialize_plain']}")

    # -- online reads -------------------------------------------------------------------------------------
    import random

    rng = random.Random(0)
    all_ids = [f"H{i}" for i in range(1, n_series + 1)]
    as_of = last
    serving = fs.get_feature_service("m4_hourly_serving")
    reads: dict = {}
    for size, count in ((1, args.reads), (100, max(30, args.reads // 3))):
        batches = [rng.sample(all_ids, size) for _ in range(count)]
        say(f"online reads of {size} series x {count}")
        reads[f"seqops_{size}"] = time_reads(
            lambda b: store.read_online("m4_hourly", b, as_of=as_of, settings=settings), batches
        )
        reads[f"plain_lag_{size}"] = time_reads(
            lambda b: plain.get_online_features(
                features=lag_refs, entity_rows=[{"series_id": s} for s in b]
            ).to_dict(),
            batches,
        )
        reads[f"plain_array_{size}"] = time_reads(
            lambda b: fs.get_online_features(
                features=serving, entity_rows=[{"series_id": s} for s in b]
            ).to_dict(),
            batches,
        )
        say(
            f"  seqops {reads[f'seqops_{size}']}, plain lag {reads[f'plain_lag_{size}']}, "
            f"plain array {reads[f'plain_array_{size}']}"
        )
    results["online_reads"] = reads

    # -- training sets (child processes) -------------------------------------------------------------------
    env = child_env
    say("training set, seqops (child process)")
    results["training_seqops"] = run_child("seqops", env)
    say(f"  {results['training_seqops']}")
    say("training set, plain unsplit (child process)")
    results["training_plain"] = run_child("plain", env)
    say(f"  {results['training_plain']}")
    if args.ttl_study:
        say(f"training set, seqops with input-view TTL = H = {build.spec['horizon']} steps (child process)")
        ttl_home = home / "ttl_h"
        if not (ttl_home / "data").exists():
            shutil.copytree(settings.curated_dir / "m4_hourly", ttl_home / "data" / "curated" / "m4_hourly")
        from seqops.core.resources import datasets_file

        ttl_file = ttl_home / "datasets.toml"  # the shipped facts with the input-view TTL raised to H
        shipped = datasets_file().read_text()
        ttl_file.write_text(
            shipped.replace("[m4_hourly]", f"[m4_hourly]\nttl_steps = {build.spec['horizon']}", 1)
        )
        ttl_env = {
            **env,
            "SEQOPS_HOME": str(ttl_home),
            "SEQOPS_DATASETS_FILE": str(ttl_file),
            "SEQOPS_FEATURES_DATASETS": "m4_hourly",
        }
        results["training_seqops_ttl_h"] = run_child("seqops-prepare", ttl_env)
        say(f"  {results['training_seqops_ttl_h']}")

    # -- parity -----------------------------------------------------------------------------------------
    from seqops.features.parity import check_parity

    say("parity on M4: 200 random series at their newest window")
    m4_parity = check_parity("m4_hourly", sample=200, seed=0, settings=settings)
    results["parity_m4"] = {k: v for k, v in m4_parity.to_dict().items() if k != "mismatches"}
    say(f"  {m4_parity.summary()} in {m4_parity.seconds} s")
    pjm_parity = None
    if not args.no_pjm:
        say("PJM: load 7 zones, build windows")
        load_pjm(settings, args.pjm_dir)
        t = time.perf_counter()
        pjm_build = build_windows("pjm", settings=settings)
        results["pjm_build_windows"] = {"seconds": round(time.perf_counter() - t, 2), **pjm_build.to_dict()}
        say(f"  {pjm_build.windows} windows in {results['pjm_build_windows']['seconds']} s")
        store.apply(settings=settings)
        p_first, p_last = store.utc(pjm_build.first_window_end), store.utc(pjm_build.last_window_end)
        say("materialize PJM, seqops window view, whole history")
        results["pjm_materialize_seqops"] = timed_materialize(
            lambda: fs.materialize(start_date=p_first, end_date=p_last, feature_views=["pjm_window"]),
            pjm_build.windows,
            7,
        )
        say(f"  {results['pjm_materialize_seqops']}")
        say("materialize PJM, plain Feast (file offline store, lag columns, defaults)")
        plain_pjm, _ = plain_store(home / "plain_pjm", pjm_build.windows_path, 168)
        results["pjm_materialize_plain"] = timed_materialize(
            lambda: plain_pjm.materialize(start_date=p_first, end_date=p_last), pjm_build.windows, 7
        )
        say(f"  {results['pjm_materialize_plain']}")
        results["pjm_materialize"] = materialize("pjm", settings=settings).to_dict()
        say("parity on PJM: 200 samples (7 zones at their newest window, 193 at replayed past moments)")
        pjm_parity = check_parity("pjm", sample=200, seed=0, settings=settings)
        results["parity_pjm"] = {k: v for k, v in pjm_parity.to_dict().items() if k != "mismatches"}
        say(f"  {pjm_parity.summary()} in {pjm_parity.seconds} s")

    # -- summary --------------------------------------------------------------------------------------------
    def ratio(a, b):
        return round(a / b, 1) if a and b else None

    # (metric, seqops, plain, how many times better seqops is)
    rows: list[tuple[str, object, object, object]] = []

    def lower_is_better(label: str, ours, theirs) -> None:
        rows.append((label, ours, theirs, ratio(theirs, ours)))

    def higher_is_better(label: str, ours, theirs) -> None:
        rows.append((label, ours, theirs, ratio(ours, theirs)))

    ms, mp = results["materialize_seqops"], results["materialize_plain"]
    higher_is_better("M4 materialize window view, rows/s", ms["source_rows_per_s"], mp["source_rows_per_s"])
    if "pjm_materialize_seqops" in results:
        ps, pp = results["pjm_materialize_seqops"], results["pjm_materialize_plain"]
        higher_is_better(
            "PJM materialize window view, rows/s", ps["source_rows_per_s"], pp["source_rows_per_s"]
        )
    ts, tp = results["training_seqops"], results["training_plain"]
    lower_is_better("M4 training set (284k rows), s", ts.get("seconds"), tp.get("seconds"))
    lower_is_better("M4 training set, peak RSS MB", ts.get("peak_rss_mb"), tp.get("peak_rss_mb"))
    if "training_seqops_ttl_h" in results:
        th = results["training_seqops_ttl_h"]
        lower_is_better("  same, seqops TTL 2 vs TTL H, s", ts.get("seconds"), th.get("seconds"))
        lower_is_better("  same, seqops TTL 2 vs TTL H, RSS MB", ts.get("peak_rss_mb"), th.get("peak_rss_mb"))
    for size in (1, 100):
        for q in ("p50_ms", "p99_ms"):
            ours = reads[f"seqops_{size}"][q]
            lower_is_better(
                f"online {size} series {q[:3]} ms vs lag cols", ours, reads[f"plain_lag_{size}"][q]
            )
            lower_is_better(
                f"online {size} series {q[:3]} ms vs arrays", ours, reads[f"plain_array_{size}"][q]
            )
    results["summary"] = [
        dict(zip(("metric", "seqops", "plain", "seqops_better_x"), r, strict=True)) for r in rows
    ]
    results["load_avg_at_end"] = os.getloadavg()
    from seqops.training.bench import provenance

    results["provenance"] = provenance(threads=None)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")

    print(f"\n{'metric':<42}{'seqops':>12}{'plain':>12}   seqops better by")
    for label, ours, theirs, better in rows:
        print(f"{label:<42}{ours!s:>12}{theirs!s:>12}   {better}x")
    print(f"\nparity M4: {m4_parity.summary()}")
    if pjm_parity is not None:
        print(f"parity PJM: {pjm_parity.summary()}")
    print(f"load average start {results['load_avg_at_start']}, end {results['load_avg_at_end']}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
