"""The live promotion test's set-up and moves: a platform with three PJM zones, models made from one
training (an approved champion that is 15% too high, the trained model, copies of it), the held-back
days replayed a day at a time, and the promotion run driven until it reaches a stage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ZONES = ["AEP", "DAYTON", "DUQ"]  # at canary share 0.5, AEP and DUQ are canary series, DAYTON is not
MIN_PAIRS = 8  # the canary (2 series) reaches a quarter of it, its first interim look, in 2 days
SEQOPS = str(Path(sys.executable).with_name("seqops"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def platform_ports() -> dict[str, str]:
    """A free port for each web surface of a platform started by a test."""
    names = ("AIRFLOW", "MLFLOW", "SERVING", "EVIDENTLY")
    return {f"SEQOPS_{name}_PORT": str(free_port()) for name in names}


def platform_env(home: Path) -> dict[str, str]:
    env = {
        "SEQOPS_HOME": str(home),
        **platform_ports(),
        "SEQOPS_FEATURES_DATASETS": "pjm",
        "SEQOPS_APPROVERS": "alice",
        "SEQOPS_PROMOTION_MIN_PAIRS": str(MIN_PAIRS),
        "SEQOPS_PROMOTION_POKE_S": "3",
        "SEQOPS_PROMOTION_CANARY_SHARE": "0.5",
    }
    return env


def seqops(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | env
    return subprocess.run([SEQOPS, *args], env=full, capture_output=True, text=True, timeout=timeout)


def replayable_data(settings, root: Path, pjm_source: Path, *, days: int) -> None:
    """The zones from April 2018 ingested and materialized; the last ``days`` days held back."""
    from seqops.core.importers import import_pjm
    from seqops.flows.features import refresh
    from seqops.flows.ingest import ingest_file
    from seqops.flows.replay import replay_file

    report = import_pjm(
        pjm_source,
        root / "batches",
        zones=ZONES,
        since="2018-04-01",
        period="month",
        hold_back_days=days,
        hold_back_path=replay_file(settings, "pjm"),
    )
    for name in sorted(report.batches):
        assert ingest_file(settings, root / "batches" / name, "pjm").accepted
    refresh(settings, "pjm")


def train_once(settings) -> dict[str, Any]:
    """One 1-epoch training with its backtest, not registered yet."""
    from seqops.flows import train as flow
    from seqops.registry.tracking import init_tracking_store

    init_tracking_store(settings)
    say = lambda _: None  # noqa: E731
    overrides = {"max_epochs": 1, "time_budget_s": 30, "seed": 0}
    trained = flow.train("pjm", overrides=overrides, history_days=60, settings=settings, progress=say)
    return flow.backtest(trained, settings=settings, progress=say)


def register(settings, evaluated: dict[str, Any], *, bias: float = 0.0) -> str:
    """Register the trained model, or a copy whose forecasts are ``bias`` (a share of the level) too high."""
    from seqops.flows import train as flow

    if bias:
        import torch

        from seqops.registry.packaging import load_bundle, log_model
        from seqops.registry.tracking import tracked_run

        bundle = load_bundle(evaluated["model_uri"])
        with torch.no_grad():
            bundle.model.decoder[-1].bias += bias  # outputs are in units of the window's level
        with tracked_run(settings, "pjm", run_id=evaluated["run_id"]):
            info = log_model(bundle, name=f"model_bias_{round(bias * 100)}pct")
        evaluated = {**evaluated, "model_uri": info.model_uri}
    return flow.register(evaluated, settings=settings, progress=lambda _: None)["version"]


class Driver:
    """Replays the held-back days one at a time while a promotion run waits for paired actuals.

    A day is landed only when the run's active wait still lacks pairs (counted as its sensor counts
    them, since its stage began) and its sensor has looked since the last day landed, so the run
    advances exactly when the data allows it and the canary's interim looks see every day.
    """

    def __init__(self, admin, settings, run_id: str) -> None:
        self.admin, self.settings, self.run_id = admin, settings, run_id
        self.modes: list[str] = []
        self.steps = 0
        self.stepped_at: datetime | None = None  # when the last replayed day had landed

    def looked_since_step(self, task: str) -> bool:
        """Has the sensor ``task`` poked since the last day landed? (A poke sets its start date.)"""
        if self.stepped_at is None:
            return True
        path = f"/api/v2/dags/promote_forecaster/dagRuns/{quote(self.run_id, safe='')}/taskInstances/{task}"
        started = self.admin.request("GET", path).get("start_date")
        return started is not None and datetime.fromisoformat(started) > self.stepped_at

    def states(self) -> dict[str, str | None]:
        return {
            t["task_id"]: t["state"] for t in self.admin.task_instances("promote_forecaster", self.run_id)
        }

    def xcom(self, task: str):
        """What a task of the run returned (the candidate; a stage's start time)."""
        path = (
            f"/api/v2/dags/promote_forecaster/dagRuns/{quote(self.run_id, safe='')}/taskInstances/"
            f"{task}/xcomEntries/return_value"
        )
        return self.admin.request("GET", path)["value"]

    def until(self, done, *, timeout: float = 600, before_step=None) -> dict[str, str | None]:
        """Step the replay until ``done(states)``; returns the states then (or when the run ended)."""
        import time

        from seqops.flows.promote import paired_count
        from seqops.flows.replay import step_inline
        from seqops.registry.registry import Registry, get_route

        registry = Registry(self.settings)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states()
            mode = get_route(registry, "pjm").mode
            if not self.modes or self.modes[-1] != mode:
                self.modes.append(mode)
            if done(states):
                return states
            if self.admin.dag_run("promote_forecaster", self.run_id)["state"] in ("success", "failed"):
                return states
            waiting = [s for s in ("shadow", "canary") if states.get(f"wait_{s}") == "up_for_reschedule"]
            if waiting and self.looked_since_step(f"wait_{waiting[0]}"):
                cand = self.xcom("candidate")
                pairs = paired_count(
                    self.settings, "pjm", cand["version"], cand["champion"], self.xcom(waiting[0])
                )
                if pairs < MIN_PAIRS:
                    if before_step is not None:
                        before_step(mode)
                    assert step_inline(self.settings, "pjm", hours=24) is not None, "replay ran dry"
                    self.stepped_at = datetime.now(UTC)
                    self.steps += 1
                    continue
            time.sleep(2)
        raise TimeoutError(f"promotion run {self.run_id} stuck at {self.states()}")


def kill_scheduler(settings) -> int:
    """SIGKILL the scheduler's whole process group (its executor's workers die with it)."""
    import signal

    from seqops import platform

    pid = platform.running(settings)["scheduler"]["pid"]
    os.killpg(pid, signal.SIGKILL)
    return pid


# ---- the browser -----------------------------------------------------------------------------------
ARTIFACTS = Path(os.environ.get("SEQOPS_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))


def chromium(profile: Path):
    """Headless Debian Chromium driven by Debian's chromedriver (no driver download)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "Chromium or its driver is missing: `make sysdeps` installs both"
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={profile}")
    browser = webdriver.Chrome(options=opts, service=Service(driver))
    browser.implicitly_wait(15)
    return browser


def _retried(browser, act, what: str, timeout: float):
    """Wait until ``act(browser)`` succeeds: the Airflow UI (React) re-renders a list when its data
    refreshes, so an element found a moment ago can be stale or covered when it is used."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    transient = (
        StaleElementReferenceException,
        NoSuchElementException,
        ElementClickInterceptedException,
        ElementNotInteractableException,
    )
    return WebDriverWait(browser, timeout, ignored_exceptions=transient).until(
        act, f"{what} (after {timeout:g} s)"
    )


def click(browser, by: str, value: str, *, timeout: float = 30):
    """Find the element afresh and click it, again while it goes stale under a re-render."""
    return _retried(
        browser, lambda b: b.find_element(by, value).click() or True, f"cannot click {value!r}", timeout
    )


def text_of(browser, by: str, value: str, *, timeout: float = 30) -> str:
    """The text of an element, read again while it goes stale under a re-render."""
    return _retried(
        browser, lambda b: b.find_element(by, value).text or None, f"no text in {value!r}", timeout
    )
