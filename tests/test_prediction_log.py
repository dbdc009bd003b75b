"""The prediction log's group commit: concurrent callers share transactions, each learns exactly how
many of its own rows were new, nothing is logged twice, and a failed transaction fails its callers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest


def _forecast(request_id: str, series_id: str, arm: str = "champion"):
    from seqops.serving.log import LoggedForecast

    return LoggedForecast(
        request_id=request_id,
        dataset="pjm",
        series_id=series_id,
        origin=datetime(2018, 7, 31, 23, tzinfo=UTC),
        model_name="seqops-forecaster-pjm",
        model_version="1",
        alias=arm,
        arm=arm,
        served=True,
        mode="champion",
        forecast=[1.0, 2.0],
        step_seconds=3600,
    )


@pytest.fixture()
def log(tmp_path):
    from seqops.core.settings import Settings
    from seqops.serving.log import PredictionLog

    return PredictionLog(Settings(home=tmp_path / "home", profile="embedded"))


def test_concurrent_callers_each_get_their_own_count_and_nothing_is_logged_twice(log):
    results: dict[int, int] = {}
    start = threading.Barrier(16)

    def caller(k: int) -> None:
        # callers 0-7 and 8-15 send the same two forecasts: one of each pair is new, once
        rows = [_forecast(f"r{k % 8}", "AEP"), _forecast(f"r{k % 8}", "DUQ")]
        start.wait()
        results[k] = log.record(rows)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [0] * 8 + [2] * 8  # per request id, one caller wrote both
    assert all(results[k] + results[k + 8] == 2 for k in range(8))
    rows = log.rows()
    assert len(rows) == 16 and len({(r["request_id"], r["series_id"]) for r in rows}) == 16
    assert log.record([_forecast("r0", "AEP"), _forecast("r0", "AEP", arm="challenger")]) == 1


def test_the_log_is_in_wal_mode_so_a_commit_never_waits_for_a_reader(log):
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_failed_transaction_fails_every_caller_it_held_and_the_next_one_writes(log, monkeypatch):
    writer = log._writer
    real = writer._write
    calls = []

    def broken(batches):
        calls.append(len(batches))
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        log.record([_forecast("x", "AEP")])
    monkeypatch.setattr(writer, "_write", real)
    assert log.record([_forecast("x", "AEP")]) == 1  # nothing was half-written; the writer is free
    assert calls == [1] and len(log.rows(request_id="x")) == 1


@pytest.mark.parametrize("end", ["2018-07-31T23:00:00", "2018-07-31T23:00:00.5"])
@pytest.mark.parametrize("step", ["1h", "15min", "1D", "90s", "500ms"])
def test_forecast_timestamps_are_written_as_pandas_isoformat_writes_them(end, step):
    import numpy as np
    import pandas as pd

    from seqops.serving.router import _stamps

    moment = np.datetime64(end, "ns")
    expected = [
        (pd.Timestamp(moment).tz_localize("UTC") + k * pd.Timedelta(step)).isoformat() for k in range(1, 25)
    ]
    assert _stamps(moment, step, 24) == expected


def test_the_shadow_scorer_reports_what_it_logged_and_what_it_lost():
    """Jobs of concurrent requests share a batch; a failed batch is reported per dataset, the thread
    goes on, and close() scores what is queued before it stops."""
    from types import SimpleNamespace

    from seqops.serving.shadow import ShadowScorer

    scored, observed, failed = [], [], []

    def score(jobs):
        rows = [job.row for job in jobs]
        if "bad" in rows:
            raise RuntimeError("disk full")
        scored.append(rows)

    scorer = ShadowScorer(
        score,
        observe=lambda dataset, seconds: observed.append(dataset),
        failed=lambda dataset, count: failed.append((dataset, count)),
        linger_s=0.2,
    )
    job = lambda dataset, row: SimpleNamespace(dataset=dataset, row=row)  # noqa: E731
    assert scorer.submit([job("pjm", "a"), job("pjm", "b")]) and scorer.submit([job("m4", "c")])
    scorer.close()  # both requests arrived within the linger: one batch, one commit
    assert scored == [["a", "b", "c"]] and sorted(observed) == ["m4", "pjm"] and failed == []

    scorer = ShadowScorer(score, failed=lambda dataset, count: failed.append((dataset, count)), linger_s=0)
    assert scorer.submit([job("pjm", "bad"), job("pjm", "x")])
    scorer.close()
    assert failed == [("pjm", 2)]
    full = ShadowScorer(score, max_queued=1, linger_s=0)
    full._queue.put(None)  # the thread stops at once; the queue keeps one more item at most
    full._thread.join()
    assert full.submit([job("pjm", "y")]) and not full.submit([job("pjm", "z")])  # refused when full
