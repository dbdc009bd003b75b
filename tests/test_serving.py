"""Serving through real MLflow, Feast and the prediction log: batch and online through one router,
shadow and canary, alias moves, actuals joined as they arrive, lineage from a logged forecast."""

from __future__ import annotations

from datetime import datetime

import pytest

pytestmark = pytest.mark.slow

JULY_END = "2018-07-31T23:00:00+00:00"  # the newest origin before the held-back August batch


@pytest.fixture(scope="module")
def served(tmp_path_factory, pjm_source):
    """Two PJM zones May-July ingested, features materialized, two models registered (v1, v2);
    August held back, to arrive later as the actuals."""
    from seqops.core.importers import import_pjm
    from seqops.core.settings import Settings
    from seqops.flows import train as flow
    from seqops.flows.features import refresh
    from seqops.flows.ingest import ingest_file
    from seqops.registry.tracking import init_tracking_store

    root = tmp_path_factory.mktemp("serving")
    settings = Settings(home=root / "home", profile="embedded", features_datasets=["pjm"])
    report = import_pjm(
        pjm_source, root / "batches", zones=["AEP", "DUQ"], since="2018-05-01", period="month"
    )
    held_back = sorted(report.batches)[-1]
    assert "2018-08" in held_back
    for name in sorted(report.batches)[:-1]:
        assert ingest_file(settings, root / "batches" / name, "pjm").accepted
    refresh(settings, "pjm")
    init_tracking_store(settings)
    say = lambda _: None  # noqa: E731
    versions = []
    for seed in (0, 1):
        overrides = {"max_epochs": 1, "time_budget_s": 30, "seed": seed}
        trained = flow.train("pjm", overrides=overrides, history_days=60, settings=settings, progress=say)
        evaluated = flow.backtest(trained, settings=settings, progress=say)
        versions.append(flow.register(evaluated, settings=settings, progress=say)["version"])
    assert versions == ["1", "2"]
    return {"settings": settings, "held_back": root / "batches" / held_back}


@pytest.fixture()
def client(served):
    from fastapi.testclient import TestClient

    from seqops.serving.app import create_app

    app = create_app(served["settings"], datasets=["pjm"], token="s3cret", refresh_s=0.0)
    with TestClient(app) as c:
        c.headers["Authorization"] = "Bearer s3cret"
        yield c


def _set(settings, *, champion: str | None, challenger: str, mode: str = "champion", share: float = 0.5):
    from seqops.registry.registry import CHALLENGER, CHAMPION, Registry, Route, model_name, set_route

    registry = Registry(settings)
    name = model_name("pjm")
    if champion is None:
        try:
            registry.client.delete_registered_model_alias(name, CHAMPION)
        except Exception:
            pass
    else:
        registry.set_alias("pjm", CHAMPION, champion)
    registry.set_alias("pjm", CHALLENGER, challenger)
    set_route(registry, "pjm", Route(mode=mode, canary_share=share))


def _logged_rows(settings, request_id: str, count: int) -> list[dict]:
    """The log's rows of a request once ``count`` are there: shadow rows land shortly after the
    answer (scored off the served path), so wait for them, up to 30 s."""
    import time

    from seqops.serving.log import PredictionLog

    deadline = time.monotonic() + 30
    while len(rows := PredictionLog(settings).rows(request_id=request_id)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} of {count} rows logged for {request_id}"
        time.sleep(0.05)
    return rows


def _online(client, ids=("AEP", "DUQ"), as_of=JULY_END, **extra):
    return client.post(
        "/v1/forecast", json={"dataset": "pjm", "series_ids": list(ids), "as_of": as_of, **extra}
    )


def test_batch_forecasts_every_series_and_online_answers_equal_them_bit_for_bit(served, client):
    from seqops.flows.forecast import batch_forecast
    from seqops.serving.log import PredictionLog

    settings = served["settings"]
    _set(settings, champion=None, challenger="2")  # no champion yet: the first model serves
    batch = batch_forecast(settings, "pjm", as_of=datetime.fromisoformat(JULY_END))
    assert (batch["series"], batch["logged"], batch["skipped"]) == (2, 2, {})
    assert batch["models"] == ["challenger:2"]
    again = batch_forecast(settings, "pjm", as_of=datetime.fromisoformat(JULY_END))
    assert (again["logged"], again["already_logged"]) == (0, 2)  # a re-run logs nothing twice
    logged = {r["series_id"]: r for r in PredictionLog(settings).rows(request_id=batch["request_id"])}
    assert set(logged) == {"AEP", "DUQ"} and all(
        r["served"] and r["source"] == "batch" for r in logged.values()
    )

    answer = _online(client)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    for f in body["forecasts"]:
        assert f["forecast"] == logged[f["series_id"]]["forecast"]  # the same router, bit for bit
        assert f["origin"] == JULY_END and f["model"]["version"] == "2" and len(f["forecast"]) == 24
    online_rows = PredictionLog(settings).rows(request_id=body["request_id"])
    assert {(r["series_id"], r["served"], r["source"]) for r in online_rows} == {
        ("AEP", True, "online"),
        ("DUQ", True, "online"),
    }


def test_a_shadow_process_that_cannot_start_does_not_stop_the_service(served, monkeypatch):
    from fastapi.testclient import TestClient

    from seqops.serving.app import create_app
    from seqops.serving.shadow import ShadowProcess

    def broken(self):
        raise RuntimeError("no process for you")

    monkeypatch.setattr(ShadowProcess, "warm", broken)
    _set(served["settings"], champion="1", challenger="2", mode="shadow")  # startup warms it
    app = create_app(served["settings"], datasets=["pjm"], token="s3cret", refresh_s=0.0)
    with TestClient(app) as c:
        c.headers["Authorization"] = "Bearer s3cret"
        assert c.get("/readyz").status_code == 200
        answer = _online(c)
        assert answer.status_code == 200 and {f["model"]["version"] for f in answer.json()["forecasts"]} == {
            "1"
        }


def test_concurrent_requests_are_answered_together_each_as_it_would_be_alone(served, client):
    """Requests waiting on the event loop share one feature read, forward pass and commit; each gets
    what it would get alone, a refused one does not refuse the others, each is logged as itself."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    from seqops.serving.log import PredictionLog

    _set(served["settings"], champion="1", challenger="2", mode="canary", share=0.1)  # AEP canary
    alone = {ids: _online(client, ids).json()["forecasts"] for ids in [("AEP",), ("DUQ",), ("AEP", "DUQ")]}
    assert [f["model"]["version"] for f in alone[("AEP", "DUQ")]] == ["2", "1"]
    asks = [("AEP",), ("DUQ",), ("AEP", "DUQ"), ("ZONE_X",)] * 6
    with ThreadPoolExecutor(len(asks)) as pool:  # TestClient runs them all on one event loop
        answers = list(pool.map(lambda ids: _online(client, ids), asks))
    for ids, answer in zip(asks, answers, strict=True):
        if ids == ("ZONE_X",):
            assert answer.status_code == 422 and answer.json()["detail"]["series"] == {"ZONE_X": "missing"}
            continue
        assert answer.status_code == 200 and answer.json()["forecasts"] == alone[ids]
        rows = PredictionLog(served["settings"]).rows(request_id=answer.json()["request_id"], served=True)
        assert sorted(r["series_id"] for r in rows) == sorted(ids)
    metrics = client.get("/metrics").text

    def value(name: str) -> float:
        return sum(
            float(v) for v in re.findall(rf"^{name}\{{[^}}]*dataset=\"pjm\"[^}}]*\}} (\S+)$", metrics, re.M)
        )

    answered = value("seqops_forecast_requests_total")
    batched, batches = (
        value("seqops_forecast_batch_requests_sum"),
        value("seqops_forecast_batch_requests_count"),
    )
    assert answered >= 3 + len(asks) and batched == answered and batches < answered  # some together


def test_requests_need_the_token_and_bad_input_gets_a_4xx_saying_which(client):
    assert client.post("/v1/forecast", json={}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200
    unknown = _online(client, ids=("AEP", "ZONE_X"))
    assert unknown.status_code == 422 and unknown.json()["detail"]["series"] == {"ZONE_X": "missing"}
    stale = _online(client, as_of="2018-08-02T00:00:00+00:00")
    assert stale.status_code == 422
    assert stale.json()["detail"]["series"] == {"AEP": "expired", "DUQ": "expired"}
    assert _online(client, dataset_typo=1).status_code == 200  # extra fields are ignored
    assert client.post("/v1/forecast", json={"dataset": "m4", "series_ids": ["a"]}).status_code == 404
    assert client.post("/v1/forecast", json={"dataset": "pjm", "series_ids": []}).status_code == 422


def test_shadow_forecasts_are_logged_never_returned(served, client):

    _set(served["settings"], champion="1", challenger="2", mode="shadow")
    answer = _online(client)
    body = answer.json()
    assert {f["model"]["version"] for f in body["forecasts"]} == {"1"}
    rows = _logged_rows(served["settings"], body["request_id"], 4)
    served_rows = {(r["series_id"], r["model_version"]) for r in rows if r["served"]}
    shadow_rows = {(r["series_id"], r["model_version"]) for r in rows if not r["served"]}
    assert served_rows == {("AEP", "1"), ("DUQ", "1")}
    assert shadow_rows == {("AEP", "2"), ("DUQ", "2")}
    by = {(r["series_id"], r["served"]): r["forecast"] for r in rows}
    assert by[("AEP", True)] != by[("AEP", False)]  # two different models, both logged


def test_shadow_scoring_runs_in_a_lower_priority_process_that_is_replaced_when_killed(served, client):
    """A forward pass holds the GIL: shadow work scored in the service's process would stall the
    served requests, so it runs in a child at a lower CPU priority; a killed child loses nothing."""
    import os
    import signal

    from seqops.serving.shadow import NICENESS

    _set(served["settings"], champion="1", challenger="2", mode="shadow")
    first = _online(client).json()
    assert len(_logged_rows(served["settings"], first["request_id"], 4)) == 4
    process = client.app.state.shadow_process
    child = process.warm()
    assert child != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, child) == os.getpriority(os.PRIO_PROCESS, 0) + NICENESS
    os.kill(child, signal.SIGKILL)
    second = _online(client).json()
    rows = _logged_rows(served["settings"], second["request_id"], 4)
    assert {(r["series_id"], r["model_version"]) for r in rows if not r["served"]} == {
        ("AEP", "2"),
        ("DUQ", "2"),
    }
    assert process.warm() != child  # a new child scored the second request's shadow forecasts
    metrics = client.get("/metrics").text
    assert 'seqops_shadow_failed_total{dataset="pjm"}' not in metrics


def test_canary_splits_series_stably(served, client):
    from seqops.serving.router import canary_arm

    ids = ["AEP", "DUQ"]
    share = 0.1  # sha256 buckets: AEP 0.016 (challenger), DUQ 0.181 (champion)
    assert {canary_arm(i, share) for i in ids} == {"champion", "challenger"}
    # stable: the arm of an id depends on the id alone, and shares nest (a bigger canary keeps its series)
    many = [f"s{i}" for i in range(2000)]
    picked = [s for s in many if canary_arm(s, 0.1) == "challenger"]
    assert 150 < len(picked) < 250 and all(canary_arm(s, 0.3) == "challenger" for s in picked)
    _set(served["settings"], champion="1", challenger="2", mode="canary", share=share)
    first, second = _online(client).json(), _online(client).json()
    arms = {f["series_id"]: (f["arm"], f["model"]["version"]) for f in first["forecasts"]}
    assert arms == {
        sid: ("challenger", "2") if canary_arm(sid, share) == "challenger" else ("champion", "1")
        for sid in ids
    }
    assert arms == {f["series_id"]: (f["arm"], f["model"]["version"]) for f in second["forecasts"]}
    rows = _logged_rows(served["settings"], first["request_id"], 3)
    # the canary series is also forecast by the champion, off the served path: paired evidence
    assert {(r["series_id"], r["model_version"], r["served"]) for r in rows} == {
        ("AEP", "2", True),
        ("AEP", "1", False),
        ("DUQ", "1", True),
    }


def test_an_alias_move_is_picked_up_without_a_failed_request(served, client):
    router = None
    _set(served["settings"], champion="1", challenger="2")
    before = _online(client)
    assert before.status_code == 200 and before.json()["forecasts"][0]["model"]["version"] == "1"
    _set(served["settings"], champion="2", challenger="2")
    codes = []
    for _ in range(3):
        codes.append(_online(client).status_code)
    from seqops.serving.router import Router

    router = Router(served["settings"], "pjm", refresh_s=0.0)
    router.refresh(force=True)
    assert router.served_model().version == "2"
    assert codes == [200, 200, 200]
    assert client.get("/v1/models").json()["pjm"]["models"]["champion"]["version"] == "2"
    assert _online(client).json()["forecasts"][0]["model"]["version"] == "2"


def test_actuals_are_joined_when_they_arrive_and_a_forecast_walks_back_to_its_data(served):
    from seqops.flows.forecast import join_actuals, show
    from seqops.flows.ingest import ingest_file
    from seqops.serving.log import PredictionLog

    settings = served["settings"]
    log = PredictionLog(settings)
    before = join_actuals(settings, "pjm")
    assert before["joined"] == 0 and before["waiting"] > 0  # August has not arrived
    assert ingest_file(settings, served["held_back"], "pjm").accepted
    after = join_actuals(settings, "pjm")
    assert after["joined"] == before["waiting"] and after["waiting"] == 0
    from seqops.core.store import CuratedStore

    row = log.rows(series_id="AEP")[0]
    aug = CuratedStore(settings).read(
        "pjm", series_ids=["AEP"], start=datetime.fromisoformat("2018-08-01T00:00:00+00:00")
    )
    assert row["actual"] == aug["value"].head(24).tolist()
    lineage = show(settings, row["id"])["lineage"]
    assert lineage["training_run_id"] and lineage["feature_service"] == "pjm_training"
    assert lineage["data_version"] is not None


def test_a_model_that_fails_to_load_leaves_the_last_good_one_serving(served, client):
    from seqops.registry.registry import CHAMPION, Registry, model_name

    settings = served["settings"]
    _set(settings, champion="1", challenger="2")
    assert _online(client).json()["forecasts"][0]["model"]["version"] == "1"
    registry = Registry(settings)
    broken = registry.client.create_model_version(model_name("pjm"), "file:///nonexistent/model", run_id=None)
    registry.set_alias("pjm", CHAMPION, broken.version)
    answer = _online(client)
    assert answer.status_code == 200 and answer.json()["forecasts"][0]["model"]["version"] == "1"
    errors = client.get("/v1/models").json()["pjm"]["errors"]
    assert f"version {broken.version} failed to load" in errors["champion"]
    assert "serving version 1" in errors["champion"]
    registry.set_alias("pjm", CHAMPION, "1")


def test_killed_under_load_every_acknowledged_forecast_is_logged_once(served, tmp_path):
    """SIGKILL the service mid-stream, restart it, retry what was not acknowledged: the log holds
    every acknowledged request's forecasts exactly once."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    import httpx

    from seqops.serving.log import PredictionLog

    settings = served["settings"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SEQOPS_HOME": str(settings.home),
        "SEQOPS_FEATURES_DATASETS": "pjm",
        "SEQOPS_SERVING_TOKEN": "s3cret",
        "SEQOPS_SERVING_PORT": str(port),
    }
    seqops = str(Path(sys.executable).with_name("seqops"))
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        log = (tmp_path / "serve.log").open("a")
        proc = subprocess.Popen(
            [seqops, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("service did not become ready")

    acknowledged: list[str] = []
    codes: list[str] = []
    errs: list[str] = []
    unanswered: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers={"Authorization": "Bearer s3cret"}, timeout=5) as http:
            k = 0
            while not stop.is_set() and k < 400:
                rid = f"load-{k}"
                k += 1
                try:
                    r = http.post(
                        f"{url}/v1/forecast",
                        json={"dataset": "pjm", "series_ids": ["AEP", "DUQ"], "as_of": JULY_END},
                        headers={"x-request-id": rid},
                    )
                    (acknowledged if r.status_code == 200 else unanswered).append(rid)
                    if r.status_code != 200:
                        codes.append(r.text[:300])
                except httpx.HTTPError as exc:
                    unanswered.append(rid)
                    errs.append(repr(exc))
                    time.sleep(0.05)

    proc = start()
    worker = threading.Thread(target=load)
    worker.start()
    for _ in range(200):  # a stream of answered requests first
        if len(acknowledged) >= 20:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # under load
    proc.wait()
    time.sleep(0.5)
    proc = start()
    resumed = len(acknowledged)
    for _ in range(200):
        if len(acknowledged) >= resumed + 10:
            break
        time.sleep(0.05)
    stop.set()
    worker.join()
    try:
        with httpx.Client(headers={"Authorization": "Bearer s3cret"}, timeout=10) as http:
            for rid in unanswered:  # the client retries what it never got an answer for
                body = {"dataset": "pjm", "series_ids": ["AEP", "DUQ"], "as_of": JULY_END}
                assert (
                    http.post(f"{url}/v1/forecast", json=body, headers={"x-request-id": rid}).status_code
                    == 200
                )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    assert len(acknowledged) > 5 and len(unanswered) >= 1, (
        len(acknowledged),
        len(unanswered),
        unanswered[:5],
        errs[:3],
    )
    rows = [r for r in PredictionLog(settings).rows(dataset="pjm") if r["request_id"].startswith("load-")]
    keys = [(r["request_id"], r["series_id"], r["arm"]) for r in rows if r["served"]]
    assert len(keys) == len(set(keys))  # none twice
    logged = {r["request_id"] for r in rows if r["served"]}
    assert set(acknowledged) | set(unanswered) <= logged  # every acknowledged (and retried) one
    assert all(sum(1 for k in keys if k[0] == rid) == 2 for rid in logged)  # both series, whole


def test_backtest_gate_compares_on_the_challengers_folds_and_logs_its_evidence(served):
    from seqops.flows.promote import backtest_gate
    from seqops.registry.registry import Registry

    settings = served["settings"]
    verdict = backtest_gate(settings, "pjm", "2", champion="1")
    assert verdict["decision"] in {"pass", "stop", "inconclusive"} and verdict["against"] == "champion v1"
    assert 0.0 <= verdict["better"]["p_value"] <= 1.0 and verdict["better"]["n"] >= 24
    assert abs(verdict["better"]["p_value"] + verdict["worse"]["p_value"] - 1.0) < 1e-9  # one-sided pair
    client = Registry(settings).client
    run = client.get_run(verdict["run_id"])
    assert run.data.tags["seqops.promotion.decision"] == verdict["decision"]
    assert {a.path for a in client.list_artifacts(verdict["run_id"], "gate_backtest")} == {
        "gate_backtest/champion_vs_challenger.png",
        "gate_backtest/per_series_mase.csv",
    }
    # the live gates on the forecasts logged above, now that August's actuals are joined
    from seqops.flows.promote import live_gate, live_pairs

    pairs = live_pairs(settings, "pjm", "2", "1")
    assert len(pairs) >= 3 and set(pairs["series_id"]) == {"AEP", "DUQ"}  # shadow (both) + canary (AEP)
    shadow = live_gate(settings, "pjm", "2", "1", stage="shadow")
    assert shadow["pairs"] == len(pairs) and shadow["decision"] in {"pass", "stop", "inconclusive"}
    assert client_tags(settings, shadow["run_id"])["seqops.promotion.gate"] == "shadow"
    _set(settings, champion=None, challenger="2")
    first = backtest_gate(settings, "pjm", "2")  # no champion: the better naive baseline is the bar
    assert first["against"] in {"naive (no champion yet)", "seasonal_naive (no champion yet)"}


def client_tags(settings, run_id: str) -> dict:
    from seqops.registry.registry import Registry

    return Registry(settings).client.get_run(run_id).data.tags


def test_promotion_steps_candidate_evidence_approve_and_archive(served):
    from seqops.flows.promote import (
        approve,
        archive_unless_approved,
        backtest_gate,
        candidate,
        evidence_markdown,
    )
    from seqops.registry.registry import CHAMPION, Registry, model_name

    settings = served["settings"]
    _set(settings, champion="1", challenger="2")
    cand = candidate(settings, "pjm", "2")
    assert cand == {"dataset": "pjm", "version": "2", "champion": "1"}
    with pytest.raises(LookupError, match="superseded by challenger version 2"):
        candidate(settings, "pjm", "1")
    gate = backtest_gate(settings, "pjm", "2", champion="1")
    body = evidence_markdown(settings, cand, [gate])
    assert "challenger v2 against champion v1" in body and gate["run_id"] in body
    assert f"| backtest | {gate['decision']} |" in body
    registry = Registry(settings)
    archived = archive_unless_approved(settings, cand)  # nobody approved: archived with the reason
    assert (
        archived["archived"] and registry.get(model_name("pjm"), "2").tags["validation_status"] == "rejected"
    )
    registry.set_tags("pjm", "2", {"validation_status": "pending_approval"})
    registry.set_alias("pjm", "challenger", "2")
    done = approve(settings, cand, "alice", gate["run_id"])
    assert done["promoted"] and registry.by_alias("pjm", CHAMPION).version == "2"
    assert registry.get(model_name("pjm"), "2").tags["approved_by"] == "alice"
    assert not archive_unless_approved(settings, cand)["archived"]
