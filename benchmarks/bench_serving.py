"""Online serving under load: seqops' service (champion, shadow, canary) beside `mlflow models serve`
of the same model given the same windows, at 1, 8 and 32 concurrent clients, in one run.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 10] [--out benchmarks/results/serving.json]

Set-up (untimed): 7 PJM zones from May 2018 ingested, features materialized, a 1-epoch model
trained and registered twice (champion v1, challenger v2). The load comes from wrk (Debian's `wrk`,
installed by `make sysdeps`): N connections each send one-series requests (a random zone) back to
back for the phase; p50/p99 are wrk's per-request latency percentiles, throughput its requests/s,
each the median of ``--repeats`` runs of the phase (every run is kept in the result file).
wrk is a C program that takes a few per cent of a core, so the figures are the servers', not a
Python client's. seqops reads the window from the Feast online store and commits every forecast to
the prediction log before answering; `mlflow models serve` receives the window in the request and
logs nothing. Both run with the same number of worker processes (a round per ``--workers`` value,
1 by default: uvicorn's workers share one socket and the kernel may give one worker every
connection of a phase) on this 2-core machine, wrk on the same cores; the
service checks the registry every 30 s (its default), and each routing mode is measured once the
service reports it. The shadow and canary phases also count, from the prediction log, the shadow
forecasts logged against the served ones (what the shadow queue did not drop); every phase starts
once the last one's shadow rows stopped landing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIENTS = (1, 8, 32)


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(home: Path) -> tuple[object, dict, str]:
    """A home with features and two registered versions; the online windows of every zone."""
    from seqops.core.importers import import_pjm
    from seqops.core.resources import demo_dir
    from seqops.core.settings import Settings
    from seqops.flows import train as flow
    from seqops.flows.features import refresh
    from seqops.flows.ingest import ingest_file
    from seqops.registry.registry import CHAMPION, Registry
    from seqops.registry.tracking import init_tracking_store

    settings = Settings(home=home, profile="embedded", features_datasets=["pjm"])
    if (home / "prepared").exists():
        return settings, *_payloads(settings)
    report = import_pjm(demo_dir(), home / "batches", since="2018-05-01", period="all")
    for name in report.batches:
        assert ingest_file(settings, home / "batches" / name, "pjm").accepted
    refresh(settings, "pjm")
    init_tracking_store(settings)
    for seed in (0, 1):
        trained = flow.train(
            "pjm",
            overrides={"max_epochs": 1, "time_budget_s": 30, "seed": seed},
            history_days=60,
            settings=settings,
            progress=lambda _: None,
        )
        flow.register(flow.backtest(trained, settings=settings, progress=lambda _: None), settings=settings)
    Registry(settings).set_alias("pjm", CHAMPION, "1")
    (home / "prepared").touch()
    return settings, *_payloads(settings)


def _payloads(settings) -> tuple[dict, str]:
    """The newest online window of every zone, as the pyfunc input the MLflow server is given."""
    from seqops.features.store import read_online
    from seqops.features.tables import latest_window_ends

    latest = latest_window_ends(settings, "pjm")
    as_of = latest.max().to_pydatetime()
    ids = sorted(str(s) for s in latest.index)
    windows = read_online("pjm", ids, as_of=as_of, settings=settings)
    payloads = {
        sid: {
            "series_id": sid,
            "origin": str(np.datetime_as_string(windows.window_end[i], unit="s")),  # naive UTC: the signature
            "window": windows.x[i].astype(float).tolist(),
        }
        for i, sid in enumerate(windows.series_ids)
        if windows.status[i] == "present"
    }
    return payloads, as_of.isoformat()


def wait_ready(url: str, path: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready in {timeout} s")


def wrk(url: str, script: Path, clients: int, seconds: float) -> dict:
    """One wrk phase: ``clients`` connections for ``seconds``; its percentiles and throughput."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE).groups()
        return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], 2)

    requests = int(re.search(r"^\s*(\d+) requests in", out, re.MULTILINE).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return {
        "clients": clients,
        "requests": requests,
        "failed": failed,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "rps": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1),
    }


def logged(settings) -> tuple[int, int]:
    """(served, shadow) rows in the prediction log so far."""
    from sqlalchemy import func, select

    from seqops.serving.log import PredictionLog

    log = PredictionLog(settings)
    query = select(log.table.c.served, func.count()).group_by(log.table.c.served)
    with log.engine.connect() as conn:
        counts = dict(conn.execute(query).all())
    return counts.get(True, 0), counts.get(False, 0)


def settled(settings, timeout: float = 60) -> tuple[int, int]:
    """The log's counts once shadow rows stop landing (the shadow queue drained), so that no phase
    starts with the last one's shadow work still running."""
    last = logged(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = logged(settings)
        if now == last:
            return now
        last = now
    raise RuntimeError(f"shadow rows still landing after {timeout} s")


def lua(path: Path, bodies: list[tuple[str, str]], headers: dict[str, str]) -> Path:
    """A wrk script that POSTs one of ``bodies`` (path, JSON), picked at random, per request."""
    quoted = ", ".join(f"{{[==[{p}]==], [==[{b}]==]}}" for p, b in bodies)
    lines = [f"local bodies = {{{quoted}}}", 'wrk.method = "POST"']
    for k, v in {"Content-Type": "application/json", **headers}.items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    lines += [
        "request = function()",
        "  local b = bodies[math.random(#bodies)]",
        "  return wrk.format(nil, b[1], nil, b[2])",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def median(runs: list[dict]) -> dict:
    """One phase from its repeats: the median latency percentiles and throughput, the summed counts,
    and every repeat as measured."""
    out = {"clients": runs[0]["clients"]}
    for key in ("requests", "failed", "served_rows", "shadow_rows"):
        if key in runs[0]:
            out[key] = sum(r[key] for r in runs)
    for key in ("p50_ms", "p99_ms", "rps"):
        out[key] = float(np.median([r[key] for r in runs]))
    out["repeats"] = runs
    return out


def brief(phase: dict) -> dict:
    """A phase as printed: the medians and counts, each repeat's p99."""
    out = {k: v for k, v in phase.items() if k != "repeats"}
    out["p99_ms_each"] = [r["p99_ms"] for r in phase["repeats"]]
    return out


def run_round(
    settings, home: Path, tmp: Path, payloads: dict, as_of: str, workers: int, seconds: int, repeats: int
) -> dict:
    """Both servers with ``workers`` worker processes each: every phase of seqops, then of mlflow."""
    import httpx

    from seqops.registry.registry import Registry, Route, set_route

    ids = sorted(payloads)
    port, mport = free_port(), free_port()
    env = {
        **os.environ,
        "SEQOPS_HOME": str(home),
        "SEQOPS_FEATURES_DATASETS": "pjm",
        "SEQOPS_SERVING_TOKEN": "bench",
        "SEQOPS_SERVING_PORT": str(port),
        "SEQOPS_SERVING_REFRESH_S": "30",  # the default
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"  # mlflow models serve execs `uvicorn`
    ours = subprocess.Popen(
        [str(bin_dir / "seqops"), "serve", "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    mlflow = subprocess.Popen(
        [str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/seqops-forecaster-pjm/1",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mport), "--workers", str(workers)],
        env=env, stdout=(tmp / "mlflow.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    phases: dict = {}
    try:
        url, murl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mport}"
        wait_ready(url, "/readyz", ours)
        try:
            wait_ready(murl, "/ping", mlflow)
        except RuntimeError:
            say((tmp / "mlflow.log").read_text()[-3000:])
            raise
        auth = {"Authorization": "Bearer bench"}
        ours_bodies = {sid: {"dataset": "pjm", "series_ids": [sid], "as_of": as_of} for sid in ids}
        columns = ["series_id", "origin", "window"]
        mlflow_bodies = {
            sid: {"dataframe_split": {"columns": columns, "data": [[p[c] for c in columns]]}}
            for sid, p in payloads.items()
        }
        # both answer correctly before any timing
        probe = httpx.post(f"{url}/v1/forecast", json=ours_bodies[ids[0]], headers=auth, timeout=30)
        assert probe.status_code == 200, probe.text
        probe = httpx.post(f"{murl}/invocations", json=mlflow_bodies[ids[0]], timeout=30)
        assert probe.status_code == 200, probe.text[:1500]
        ours_lua = lua(
            tmp / "ours.lua", [("/v1/forecast", json.dumps(b)) for b in ours_bodies.values()], auth
        )
        mlflow_lua = lua(
            tmp / "mlflow.lua", [("/invocations", json.dumps(b)) for b in mlflow_bodies.values()], {}
        )

        registry = Registry(settings)
        for mode in ("champion", "shadow", "canary"):
            set_route(registry, "pjm", Route(mode=mode, canary_share=0.3))
            # every worker re-reads the route within 30 s; wait until one says so, then the rest
            deadline = time.monotonic() + 90
            while httpx.get(f"{url}/v1/models", headers=auth).json()["pjm"]["route"]["mode"] != mode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not take route {mode} in 90 s")
                time.sleep(1)
            if workers > 1:
                time.sleep(31)
            wrk(url, ours_lua, 1, 2)  # warm-up (and the shadow process started)
            for clients in CLIENTS:
                runs = []
                for _ in range(repeats):
                    served0, shadow0 = settled(settings)
                    r = wrk(url, ours_lua, clients, seconds)
                    served1, shadow1 = settled(settings)
                    # shadow forecasts made for this phase's served ones (canary: the champion's pair
                    # of each challenger-served series); the rest were dropped (shadow queue full)
                    r.update(served_rows=served1 - served0, shadow_rows=shadow1 - shadow0)
                    runs.append(r)
                r = phases[f"seqops_{mode}_{clients}"] = median(runs)
                say(f"{workers} worker(s) seqops {mode:8s} {clients:2d} clients: {brief(r)}")
        wrk(murl, mlflow_lua, 1, 2)
        for clients in CLIENTS:
            r = median([wrk(murl, mlflow_lua, clients, seconds) for _ in range(repeats)])
            phases[f"mlflow_serve_{clients}"] = r
            say(f"{workers} worker(s) mlflow models serve {clients:2d} clients: {brief(r)}")
    finally:
        for proc in (ours, mlflow):
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait()
    return phases


def summary(phases: dict, workers: int) -> None:
    say("")
    say(f"{workers} worker process(es) each; medians of the repeats")
    say(f"{'clients':>7s} {'mode':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'vs mlflow req/s':>16s}")
    for clients in CLIENTS:
        m = phases[f"mlflow_serve_{clients}"]
        for mode in ("champion", "shadow", "canary"):
            r = phases[f"seqops_{mode}_{clients}"]
            ratio = r["rps"] / m["rps"]
            say(
                f"{clients:7d} {mode:>9} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f} {ratio:15.2f}x"
            )
        say(f"{clients:7d} {'mlflow':>9s} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} {m['rps']:8.1f} {1.0:15.2f}x")
    for clients in CLIENTS:
        base = phases[f"seqops_champion_{clients}"]["p99_ms"]
        shadow = phases[f"seqops_shadow_{clients}"]
        say(
            f"shadow adds {100 * (shadow['p99_ms'] / base - 1):+.1f}% to served p99 at {clients} clients;"
            f" shadow forecasts logged for {shadow['shadow_rows']:,} of {shadow['served_rows']:,} served"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per phase")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each phase; its median is reported")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="worker processes per server, a round each"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--home", type=Path, default=None, help="keep the set-up here and reuse it")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is not installed: run `make sysdeps` (or apt-get install wrk)")
    if min(args.workers) < 1 or args.seconds < 1 or args.repeats < 1:
        sys.exit("error: --workers, --seconds and --repeats must be at least 1")
    results: dict = {"started": datetime.now(UTC).isoformat(), "command": " ".join(sys.argv), "rounds": {}}
    with tempfile.TemporaryDirectory(prefix="seqops-bench-serving-") as tmp:
        home = args.home or Path(tmp) / "home"
        say("set-up: PJM since 2018-05, features, two 1-epoch models (untimed)")
        settings, payloads, as_of = prepare(home)
        for workers in args.workers:
            phases = run_round(
                settings, home, Path(tmp), payloads, as_of, workers, args.seconds, args.repeats
            )
            results["rounds"][f"workers_{workers}"] = {"workers": workers, "phases": phases}
    for workers in args.workers:
        summary(results["rounds"][f"workers_{workers}"]["phases"], workers)
    results["finished"] = datetime.now(UTC).isoformat()
    results["machine"] = {"node": os.uname().nodename, "cpus": os.cpu_count()}
    from seqops.training.bench import provenance

    results["provenance"] = provenance(threads=None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
