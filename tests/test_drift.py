"""Drift: Evidently's numbers read the right way, per-series tests on real PJM load (the alarm and the
silence), the decision rules (persistence, cooldown, a retrain in flight), and the whole check on the
embedded stack: report, MLflow run, Evidently workspace, the DAG's Asset event and its report link."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from drift_data import august_arrives, three_zones

STEP = timedelta(hours=1)
WEEK = timedelta(days=7)


# ---- Evidently: the pinned method, and which way its number points --------------------------------
@pytest.mark.parametrize("rows", [800, 5000], ids=["below-1000-rows", "above-1000-rows"])
@pytest.mark.parametrize(
    ("method", "threshold", "kind"), [("ks", 0.05, "p_value"), ("wasserstein", 0.1, "distance")]
)
def test_pinned_methods_read_the_right_way_on_both_sides_of_1000_rows(rows, method, threshold, kind):
    from seqops.monitoring.drift import column_drift

    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"same": rng.normal(size=rows), "shifted": rng.normal(size=rows)})
    current = pd.DataFrame({"same": rng.normal(size=rows), "shifted": rng.normal(0.8, 1.0, size=rows)})
    pinned = {"same": (method, threshold), "shifted": (method, threshold)}
    got = {c.column: c for c in column_drift(current, reference, pinned, name="t").columns}
    assert {c.method for c in got.values()} == {method}  # pinned, whatever the row count
    assert {c.kind for c in got.values()} == {kind}
    assert got["shifted"].drifted and not got["same"].drifted
    if kind == "p_value":  # low means drift
        assert got["shifted"].score < threshold <= got["same"].score
    else:  # high means drift
        assert got["shifted"].score >= threshold > got["same"].score


def test_a_method_read_the_wrong_way_is_refused_not_decided(monkeypatch):
    """If an Evidently upgrade flipped what a number means, the check fails instead of deciding."""
    from seqops.monitoring import drift

    monkeypatch.setattr(drift, "P_VALUE_METHODS", drift.P_VALUE_METHODS | {"wasserstein"})
    monkeypatch.setattr(drift, "DISTANCE_METHODS", drift.DISTANCE_METHODS - {"wasserstein"})
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=500)})
    shifted = pd.DataFrame({"x": rng.normal(2.0, 1.0, size=500)})
    with pytest.raises(drift.DriftMethodError, match="Evidently's test says"):
        drift.column_drift(shifted, frame, {"x": ("wasserstein", 0.1)}, name="t")
    with pytest.raises(ValueError, match="no declared direction"):
        drift.column_drift(shifted, frame, {"x": ("made_up", 0.1)}, name="t")


# ---- per-series tests on real PJM load --------------------------------------------------------------
@pytest.fixture(scope="module")
def pjm(pjm_source):
    """All seven zones, 2004-2018, hourly, UTC (the shipped demo files)."""
    from seqops.core.importers import ImportReport, pjm_files, read_pjm_zone

    frames = [read_pjm_zone(f, ImportReport(source=str(f))) for f in pjm_files(pjm_source)]
    frame = pd.concat(frames, ignore_index=True)
    return frame, sorted(frame["series_id"].unique())


def _check(pjm, start: str, ref_start: str, ref_end: str, *, scale=None):
    from seqops.monitoring.statistics import aligned, level_shift, reference_periods

    frame, ids = pjm
    cs = pd.Timestamp(start, tz="UTC")
    periods = reference_periods(
        cs, cs + WEEK, pd.Timestamp(ref_start, tz="UTC"), pd.Timestamp(ref_end, tz="UTC")
    )
    ref = aligned(frame, periods.reference, ids, STEP)
    cur = aligned(frame, [periods.current], ids, STEP)[0]
    for sid, factor in (scale or {}).items():
        cur[ids.index(sid)] *= factor
    return periods, level_shift(ref, cur, ids)


def test_a_summer_week_against_a_spring_only_reference_is_flagged(pjm):
    """The champion trained on March-April only never saw summer: that is drift, and it says so."""
    periods, result = _check(pjm, "2017-07-10", "2017-03-01", "2017-05-01")
    assert not periods.same_season
    assert result.any_drift and len(result.drifted_series) >= 3  # measured: 4 of the 7 zones
    table = result.table().set_index("series_id").loc[result.drifted_series]
    assert (table["relative_shift"] > 0.15).all()  # summer load is a quarter above spring


def test_the_same_summer_week_against_like_for_like_summers_is_quiet(pjm):
    periods, result = _check(pjm, "2017-07-10", "2014-01-01", "2017-06-01")
    assert periods.same_season and len(periods.reference) == 14  # 2 years x 7 weeks around the date
    assert not result.any_drift, result.table()
    assert result.common is None  # seven series: each judged on its whole deviation


def test_a_zone_whose_level_moved_is_named_and_the_others_are_not(pjm):
    """Two zones 40% up for the whole week; the weather-driven spread of the others stays quiet."""
    _, result = _check(pjm, "2017-07-10", "2014-01-01", "2017-06-01", scale={"DUQ": 1.4, "DAYTON": 1.4})
    assert result.drifted_series == ["DAYTON", "DUQ"]
    table = result.table().set_index("series_id")
    assert table.loc["DUQ", "relative_shift"] == pytest.approx(1.4 * 1790.232 / 1864.481 - 1, abs=1e-3)
    assert (table.loc[["DAYTON", "DUQ"], "q_value"] < 0.05).all()


def test_with_many_series_the_common_move_is_split_off_and_a_small_subset_shift_is_caught():
    """Forty series sharing one weather signal: a 10% move of four is caught once the common move is
    taken out; without the split the shared weather hides it."""
    from seqops.monitoring.statistics import level_shift

    rng = np.random.default_rng(3)
    periods, series, slots = 12, 40, 168
    weather = rng.normal(0, 0.08, size=(periods + 1, 1, 1)) * np.ones((1, series, slots))  # shared
    base = 100 * (1 + 0.3 * np.sin(np.arange(slots) / 24 * 2 * np.pi))[None, None, :]
    noise = rng.normal(0, 0.01, size=(periods + 1, series, slots))
    values = base * (1 + weather + noise)
    ref, cur = values[:-1], values[-1].copy()
    cur[:4] *= 1.10
    ids = [f"s{i:02d}" for i in range(series)]
    split = level_shift(ref, cur, ids)
    assert split.common is not None and not split.common.drifted
    assert split.drifted_series == ids[:4]
    whole = level_shift(ref, cur, ids, min_pooled=10_000)
    assert whole.drifted_series == []


def test_false_alarms_over_stable_weeks_are_counted(pjm):
    """26 stable weeks of 2017, each against the same season of the two years before.

    Measured: 0 of these 26 weeks raise any alarm, against a configured false-discovery rate of 5%;
    the README states the 130-week figure from ``benchmarks/bench_drift.py``. The bound allows one
    week (4%): more would be a check that cries wolf.
    """
    weeks = pd.date_range("2017-01-02", periods=26, freq="14D", tz="UTC")
    alarms = sum(_check(pjm, str(w), "2011-01-01", str(w))[1].any_drift for w in weeks)
    assert alarms <= 1, f"{alarms} of {len(weeks)} stable weeks raised an alarm"


def test_series_without_enough_data_are_untested_not_flagged():
    from seqops.monitoring.statistics import level_shift

    rng = np.random.default_rng(0)
    ref = rng.normal(100, 5, size=(8, 4, 48))
    cur = rng.normal(100, 5, size=(4, 48))
    cur[0, :40] = np.nan  # 17% observed
    ref[:, 1, :] = np.nan  # never seen in the reference
    result = level_shift(ref, cur, ["a", "b", "c", "d"])
    assert set(result.untested) == {"a", "b"}
    assert "17% of the current period" in result.untested["a"]
    assert np.isnan(result.p_value[:2]).all() and not result.drifted[:2].any()


def test_reference_periods_line_up_hours_of_the_week_and_refuse_a_thin_reference():
    from seqops.monitoring.statistics import InsufficientReference, reference_periods

    cs = pd.Timestamp("2018-07-02", tz="UTC")  # a Monday
    periods = reference_periods(cs, cs + WEEK, pd.Timestamp("2016-01-01", tz="UTC"), cs)
    assert periods.same_season
    assert all(s.dayofweek == 0 and s.hour == 0 for s, _ in periods.reference)
    assert all(e - s == WEEK for s, e in periods.reference)
    recent = reference_periods(cs, cs + WEEK, cs - 10 * WEEK, cs)
    assert not recent.same_season and len(recent.reference) == 8
    with pytest.raises(InsufficientReference, match="at least 3 are needed"):
        reference_periods(cs, cs + WEEK, cs - 2 * WEEK, cs)


def test_error_increase_is_one_sided():
    from seqops.monitoring.statistics import error_increase

    backtest = np.array([[0.05, 0.06, 0.05, 0.055]] * 3)
    live = np.array([[0.2, 0.22, 0.19, 0.21], [0.01, 0.012, 0.011, 0.01], [0.05, 0.056, 0.052, 0.054]])
    result = error_increase(live, backtest, ["worse", "better", "same"])
    assert result.drifted_series == ["worse"]  # a model that got better is not drift to retrain for


# ---- the decision ------------------------------------------------------------------------------------
def _tags(as_of: str, drifted: bool, requested: bool = False) -> dict:
    return {
        "seqops.as_of": pd.Timestamp(as_of, tz="UTC").isoformat(),
        "seqops.drifted": str(drifted).lower(),
        "seqops.retrain_requested": str(requested).lower(),
    }


@pytest.mark.parametrize(
    ("history", "now", "drifted", "pending", "expected"),
    [
        ([], "2018-08-02", False, None, "quiet"),
        ([], "2018-08-02", True, None, "watch"),  # first sighting
        ([_tags("2018-08-01 12:00", True)], "2018-08-02", True, None, "watch"),  # 12 h < 24 h
        ([_tags("2018-08-01", True)], "2018-08-02", True, None, "retrain"),  # persisted 24 h
        ([_tags("2018-07-31", True), _tags("2018-08-01", False)], "2018-08-02", True, None, "watch"),
        ([_tags("2018-08-01", True, requested=True)], "2018-08-02", True, None, "cooldown"),
        (
            [_tags("2018-07-28", True, requested=True), _tags("2018-08-01", True)],
            "2018-08-02",
            True,
            None,
            "retrain",
        ),
        ([_tags("2018-08-01", True)], "2018-08-02", True, "7", "absorbed"),
    ],
    ids=["quiet", "first", "not-yet", "persisted", "broken-run", "cooldown", "after-cooldown", "absorbed"],
)
def test_retrain_only_when_drift_persists_outside_the_cooldown(history, now, drifted, pending, expected):
    from seqops.core.settings import Settings
    from seqops.flows.drift import decide

    settings = Settings(drift_persist_hours=24, drift_cooldown_hours=72)
    decision, why = decide(
        settings, drifted_now=drifted, as_of=pd.Timestamp(now, tz="UTC"), history=history, pending=pending
    )
    assert decision == expected, why
    assert why


# ---- the whole check on the embedded stack -------------------------------------------------------------
@pytest.fixture(scope="module")
def drifting(tmp_path_factory, pjm_source):
    """Three PJM zones Feb-July 2018, features, one model approved as champion; August held back."""
    from seqops.core.settings import Settings

    root = tmp_path_factory.mktemp("drift")
    settings = Settings(home=root / "home", profile="embedded", features_datasets=["pjm"])
    return three_zones(settings, root, pjm_source, champion=True)


@pytest.mark.slow
def test_quiet_then_persistent_drift_asks_once_for_a_retrain(drifting):
    from evidently.ui.workspace import Workspace

    from seqops.flows.drift import check, history, show
    from seqops.registry.registry import Registry

    settings = drifting["settings"]
    version = drifting["version"]["version"]
    say = lambda _: None  # noqa: E731

    quiet = check(settings, "pjm", as_of="2018-08-01T00:00+00:00", progress=say)
    assert quiet["decision"] == "quiet" and not quiet["retrain"]
    assert quiet["headline"].startswith("pjm, 2018-07-25T00:00 .. 2018-08-01T00:00 UTC, champion v")
    assert "no drift in 3 series" in quiet["headline"]
    folder = settings.drift_dir / "pjm" / quiet["check_id"]
    summary = (folder / "summary.html").read_text()
    assert summary.index("no drift in 3 series") < summary.index("<img")  # the verdict comes first
    assert "data:image/png;base64," in summary  # self-contained: the figure is inside
    assert (folder / "evidently.html").stat().st_size > 100_000  # Evidently's own, self-contained
    again = check(settings, "pjm", as_of="2018-08-01T00:00+00:00", progress=say)
    assert again["mlflow_run_id"] == quiet["mlflow_run_id"]  # a retried check logs nothing twice

    august_arrives(drifting)

    first = check(settings, "pjm", as_of="2018-08-02T00:00+00:00", progress=say)
    assert first["drifted"] and first["decision"] == "watch", first["why"]
    assert "DOM" in first["error_drifted"] and set(first["error_drifted"]) == {"DOM"}
    second = check(settings, "pjm", as_of="2018-08-03T00:00+00:00", progress=say)
    assert second["decision"] == "retrain" and second["retrain"], second["why"]
    assert "retrain requested" in second["headline"].splitlines()[-1]
    assert "DOM" in second["reason"]
    third = check(settings, "pjm", as_of="2018-08-03T01:00+00:00", progress=say)
    assert third["decision"] == "cooldown"

    # MLflow: one run per check beside the champion version; the version points at the latest.
    listed = history(settings, "pjm")
    assert [h["decision"] for h in listed] == ["cooldown", "retrain", "watch", "quiet"]
    assert {h["champion_version"] for h in listed} == {version}
    tags = Registry(settings).get("seqops-forecaster-pjm", version).tags
    assert tags["seqops.last_drift_run"] == third["mlflow_run_id"] and tags["seqops.last_drift"] == "cooldown"
    shown = show(settings, "pjm", second["check_id"])
    assert shown["decision"] == "retrain" and shown["report"].endswith("summary.html")

    # Evidently workspace: one project, one snapshot per check.
    ws = Workspace.create(str(settings.drift_dir / "workspace"))
    (project,) = ws.search_project("seqops pjm drift")
    assert len(ws.list_runs(project.id)) == 4


@pytest.mark.slow
def test_the_drift_commands_list_show_and_explain_a_missing_check(drifting, monkeypatch):
    """`seqops drift list|show` read the checks the flow test recorded (runs in file order after it)."""
    from typer.testing import CliRunner

    from seqops.cli import app

    monkeypatch.setenv("SEQOPS_HOME", str(drifting["settings"].home))
    monkeypatch.setenv("SEQOPS_FEATURES_DATASETS", "pjm")
    runner = CliRunner()
    listed = runner.invoke(app, ["drift", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert lines and lines[0].startswith("20180803T0100") and "cooldown" in lines[0]
    assert any(line.startswith("20180803T0000") and " retrain " in line for line in lines)
    shown = runner.invoke(app, ["drift", "show", "20180803T0000"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("pjm, 2018-07-27T00:00 .. 2018-08-03T00:00 UTC")
    assert "Next: retrain requested" in shown.stdout
    assert "/reports/pjm/20180803T0000/summary.html" in shown.stdout and "MLflow run: " in shown.stdout
    missing = runner.invoke(app, ["drift", "show", "19990101T0000"])
    assert missing.exit_code == 1
    assert "no drift check of 'pjm' with id '19990101T0000'" in missing.stderr


@pytest.mark.slow
def test_a_challenger_already_in_promotion_absorbs_the_request(drifting):
    from seqops.flows.drift import check
    from seqops.registry.registry import Registry

    settings = drifting["settings"].model_copy(update={"drift_cooldown_hours": 0})
    champion = drifting["version"]
    registry = Registry(settings)
    pending = registry.register("pjm", champion["run_id"], champion["model_uri"], {"dataset": "pjm"})
    try:
        result = check(settings, "pjm", as_of="2018-08-03T02:00+00:00", progress=lambda _: None)
        assert result["decision"] == "absorbed", result["why"]
        assert f"challenger version {pending.version}" in result["why"]
    finally:
        registry.set_tags("pjm", pending.version, {"validation_status": "rejected"})


@pytest.mark.slow
def test_monitor_drift_dag_emits_the_retrain_asset_and_links_the_report(drifting, airflow_db, monkeypatch):
    """Through Airflow (``dag.test``): check -> gate -> one seqops_retrain event naming the dataset,
    its reason and its report; the check task carries the "Drift report" link."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from seqops.core.resources import dags_folder

    monkeypatch.setenv("SEQOPS_HOME", str(drifting["settings"].home))
    monkeypatch.setenv("SEQOPS_FEATURES_DATASETS", "pjm")
    monkeypatch.setenv("SEQOPS_DRIFT_COOLDOWN_HOURS", "0")
    monkeypatch.setenv("SEQOPS_DRIFT_PERSIST_HOURS", "0")  # this test is about the wiring
    august_arrives(drifting)
    dag = DagBag(dag_folder=str(dags_folder() / "monitor_drift.py")).dags["monitor_drift"]
    run = dag.test(run_conf={"dataset": "pjm"})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(["datasets", "check", "retrain_needed", "request_retrain"], "success")
    with create_session() as session:
        event = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "seqops_retrain")
            .order_by(AssetEvent.id.desc())
            .first()
        )
        link = (
            session.query(XComModel)
            .filter_by(dag_id="monitor_drift", run_id=run.run_id, key="_link_DriftReportLink")
            .one()
        )
    assert event is not None and event.extra["datasets"] == ["pjm"]
    request = event.extra["requests"]["pjm"]
    assert "DOM" in request["reason"] and "summary.html" in request["report"]
    url = link.value
    while isinstance(url, str) and url.startswith('"'):  # stored JSON-encoded
        url = json.loads(url)
    assert url.startswith("http://127.0.0.1:8001/reports/pjm/") and url.endswith("/summary.html")


@pytest.mark.slow
def test_a_report_opens_in_the_browser_only_behind_the_login(drifting, tmp_path):
    """The report server as `make up` starts it; headless Chromium (Debian's, installed by `make
    test`) without and with the admin login."""
    import os
    import shutil
    import socket
    import subprocess
    import sys

    import httpx

    from seqops.flows.drift import check
    from seqops.platform.waits import poll

    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make sysdeps` installs Debian's chromium package"
    settings = drifting["settings"]
    result = check(settings, "pjm", as_of="2018-07-31T00:00+00:00", progress=lambda _: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"SEQOPS_HOME": str(settings.home), "SEQOPS_ADMIN_PASSWORD": "open-sesame", "DO_NOT_TRACK": "1"}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("uvicorn")), "--factory", "seqops.monitoring.ui:create_app"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"127.0.0.1:{port}"

        def up() -> bool | None:
            try:
                return httpx.get(f"http://{base}/healthz").status_code == 200 or None
            except httpx.HTTPError:
                return None

        poll(up, timeout=60, every=0.5, timed_out=lambda: "the report server did not start")
        page = f"reports/pjm/{result['check_id']}/summary.html"

        profiles = iter(range(100))

        def dom(url: str) -> str:
            """The page as Chromium renders it, from a fresh profile (no remembered login)."""
            profile = tmp_path / f"profile-{next(profiles)}"
            out = subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--user-data-dir={profile}",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            return out.stdout

        assert result["headline"].splitlines()[0] not in dom(f"http://{base}/{page}")
        opened = dom(f"http://admin:open-sesame@{base}/{page}")
        assert result["headline"].splitlines()[0] in opened  # the verdict, first thing on the page
        assert 'href="evidently.html"' in opened
        assert "<title>Evidently" in dom(f"http://admin:open-sesame@{base}/")  # the Evidently UI
        assert "<title>Evidently" not in dom(f"http://{base}/")
    finally:
        server.terminate()
        server.wait(timeout=30)
