"""Online serving under load: seqops' service (champion, shadow, canary) beside `mlflow models serve`
of the same model given the same windows, at 1, 8 and 32 concurrent clients, in one run.

    .venv/bin/python benchmarks/bench_serving.py [--requests 300] [--out benchmarks/results/serving.json]

Set-up (untimed): 7 PJM zones from May 2018 ingested, features materialized, a 1-epoch model
trained and registered twice (champion v1, challenger v2). Each client sends one-series requests
(a random zone) back to back; p50/p99 are per request, throughput is requests/s over the phase.
seqops reads the window from the Feast online store and commits every forecast to the prediction
log before answering; `mlflow models serve` receives the window in the request and logs nothing.
Both run one worker process on this 2-core machine, with the clients on the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
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


def load(send, clients: int, requests: int, ids: list[str]) -> dict:
    """``clients`` threads, ``requests`` in all; per-request latency and overall throughput."""
    import httpx

    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(n: int, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as http:
            for _ in range(n):
                sid = rng.choice(ids)
                t0 = time.perf_counter()
                ok = send(http, sid)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt) if ok else None
                    failures[0] += 0 if ok else 1

    per = max(1, requests // clients)
    threads = [threading.Thread(target=worker, args=(per, k)) for k in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    arr = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "failed": failures[0],
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "rps": round(len(latencies) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per phase")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--home", type=Path, default=None, help="keep the set-up here and reuse it")
    args = parser.parse_args()
    results: dict = {"started": datetime.now(UTC).isoformat(), "command": " ".join(sys.argv), "phases": {}}
    with tempfile.TemporaryDirectory(prefix="seqops-bench-serving-") as tmp:
        home = args.home or Path(tmp) / "home"
        say("set-up: PJM since 2018-05, features, two 1-epoch models (untimed)")
        settings, payloads, as_of = prepare(home)
        ids = sorted(payloads)
        port, mport = free_port(), free_port()
        env = {
            **os.environ,
            "SEQOPS_HOME": str(home),
            "SEQOPS_FEATURES_DATASETS": "pjm",
            "SEQOPS_SERVING_TOKEN": "bench",
            "SEQOPS_SERVING_PORT": str(port),
            "SEQOPS_SERVING_REFRESH_S": "1",
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        bin_dir = Path(sys.executable).parent
        env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"  # mlflow models serve execs `uvicorn`
        ours = subprocess.Popen([str(bin_dir / "seqops"), "serve"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        mlflow = subprocess.Popen(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/seqops-forecaster-pjm/1",
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mport), "--workers", "1"],
            env=env, stdout=(Path(tmp) / "mlflow.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            url, murl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mport}"
            wait_ready(url, "/readyz", ours)
            try:
                wait_ready(murl, "/ping", mlflow)
            except RuntimeError:
                say((Path(tmp) / "mlflow.log").read_text()[-3000:])
                raise
            auth = {"Authorization": "Bearer bench"}

            failed_once: list[str] = []

            def ours_send(http, sid: str) -> bool:
                body = {"dataset": "pjm", "series_ids": [sid], "as_of": as_of}
                return http.post(f"{url}/v1/forecast", json=body, headers=auth).status_code == 200

            def mlflow_send(http, sid: str) -> bool:
                p = payloads[sid]
                row = [p["series_id"], p["origin"], p["window"]]
                body = {"dataframe_split": {"columns": ["series_id", "origin", "window"], "data": [row]}}
                answer = http.post(f"{murl}/invocations", json=body)
                if answer.status_code != 200 and not failed_once:
                    failed_once.append(answer.text[:1500])
                    say(f"mlflow models serve answered {answer.status_code}: {answer.text[:1500]}")
                return answer.status_code == 200

            from seqops.registry.registry import Registry, Route, set_route

            registry = Registry(settings)
            for mode in ("champion", "shadow", "canary"):
                set_route(registry, "pjm", Route(mode=mode, canary_share=0.3))
                time.sleep(2.5)  # the service re-reads the route every second
                load(ours_send, 1, 20, ids)  # warm-up
                for clients in CLIENTS:
                    r = load(ours_send, clients, args.requests, ids)
                    results["phases"][f"seqops_{mode}_{clients}"] = r
                    say(f"seqops {mode:8s} {clients:2d} clients: {r}")
            load(mlflow_send, 1, 20, ids)
            for clients in CLIENTS:
                r = load(mlflow_send, clients, args.requests, ids)
                results["phases"][f"mlflow_serve_{clients}"] = r
                say(f"mlflow models serve {clients:2d} clients: {r}")
        finally:
            for proc in (ours, mlflow):
                if proc.poll() is None:
                    os.killpg(proc.pid, 15)
                    proc.wait()
    say("")
    say(f"{'clients':>7s} {'mode':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'vs mlflow req/s':>16s}")
    for clients in CLIENTS:
        m = results["phases"][f"mlflow_serve_{clients}"]
        for mode in ("champion", "shadow", "canary"):
            r = results["phases"][f"seqops_{mode}_{clients}"]
            ratio = r["rps"] / m["rps"]
            say(
                f"{clients:7d} {mode:>9} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f} {ratio:15.2f}x"
            )
        say(f"{clients:7d} {'mlflow':>9s} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} {m['rps']:8.1f} {1.0:15.2f}x")
    for clients in CLIENTS:
        base = results["phases"][f"seqops_champion_{clients}"]["p99_ms"]
        shadow = results["phases"][f"seqops_shadow_{clients}"]["p99_ms"]
        say(f"shadow adds {100 * (shadow / base - 1):+.1f}% to served p99 at {clients} clients")
    results["finished"] = datetime.now(UTC).isoformat()
    results["machine"] = {"node": os.uname().nodename, "cpus": os.cpu_count()}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
