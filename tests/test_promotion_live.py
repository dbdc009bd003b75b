"""Promotion through the running platform (api-server, scheduler, dag-processor, triggerer, MLflow
server, prediction service), with the held-back PJM days replayed as live data:

1. a better challenger goes through the backtest, shadow and canary gates to the approval; alice
   opens Required Actions in a real browser, sees the evidence, clicks Approve; MLflow shows
   `champion` on it, the batch forecasts and the prediction service serve it;
2. a challenger that breaks once it serves (a fault injected into its forecasts in canary) passes
   backtest and shadow, the scheduler is killed while the run waits and restarted, and the canary
   rolls it back by itself;
3. a worse challenger stops at the backtest gate.
"""

from __future__ import annotations

import base64
import os

import httpx
import pytest
from promotion_live import (
    ARTIFACTS,
    MIN_PAIRS,
    ZONES,
    Driver,
    chromium,
    click,
    kill_scheduler,
    platform_env,
    register,
    replayable_data,
    seqops,
    text_of,
    train_once,
)

pytestmark = pytest.mark.slow


def test_promotion_gates_browser_approval_scheduler_kill_and_canary_rollback(
    tmp_path, monkeypatch, pjm_source
):
    import numpy as np
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from seqops import platform
    from seqops.core.secrets import user_password
    from seqops.core.settings import Settings
    from seqops.platform.airflow_client import AirflowClient
    from seqops.platform.waits import poll
    from seqops.registry.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry, get_route, promote
    from seqops.serving import router
    from seqops.serving.log import PredictionLog

    env = platform_env(tmp_path / "home")
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)  # the platform derives its own Airflow environment from the home
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    shots = ARTIFACTS / "promotion"
    shots.mkdir(parents=True, exist_ok=True)

    up = seqops("platform", "up", "--no-demo", env=env, timeout=420)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        admin = AirflowClient(platform.airflow_url(settings), "admin", platform.admin_password(settings))

        def startup_training_done() -> bool | None:
            runs = admin.dag_runs("train_forecaster")  # unpausing runs one interval; with no data it skips
            return (bool(runs) and all(r["state"] in ("success", "failed") for r in runs)) or None

        poll(startup_training_done, timeout=180, every=3, timed_out=lambda: "the start-up training hangs")
        replayable_data(settings, tmp_path, pjm_source, days=21)
        evaluated = train_once(settings)
        registry = Registry(settings)
        v1 = register(settings, evaluated, bias=0.15)  # the champion approved earlier: 15% too high
        promote(registry, "pjm", v1, approved_by="carol", evidence_run_id=evaluated["run_id"])
        v2 = register(settings, evaluated)
        assert (v1, v2) == ("1", "2")

        # ---- 1. a better challenger: backtest, shadow, canary, then a person approves in the UI ----
        first = Driver(admin, settings, admin.trigger("promote_forecaster", conf={"dataset": "pjm"}))
        states = first.until(lambda s: s.get("approval") == "awaiting_input")
        assert states["approval"] == "awaiting_input", states
        assert first.modes == ["champion", "shadow", "canary"], first.modes
        decisions = {g: first.xcom(f"{g}_gate")["decision"] for g in ("backtest", "shadow", "canary")}
        assert decisions["backtest"] == "pass" and decisions["canary"] == "pass", decisions
        log = PredictionLog(settings).rows(dataset="pjm")
        shadowed = [r for r in log if r["mode"] == "shadow" and r["model_version"] == v2]
        assert shadowed and not any(r["served"] for r in shadowed)  # logged, never returned
        canary = {(r["series_id"], r["model_version"]) for r in log if r["mode"] == "canary" and r["served"]}
        assert canary == {("AEP", v2), ("DUQ", v2), ("DAYTON", v1)}, canary  # a stable split by series

        admin.settled_input(
            "promote_forecaster", first.run_id, "approval"
        )  # as a person: not in its first second
        browser = chromium(tmp_path / "profile")
        try:
            browser.get(f"{platform.airflow_url(settings)}/required_actions?response_received=false")
            browser.find_element(By.NAME, "username").send_keys("alice")
            browser.find_element(By.NAME, "password").send_keys(user_password(settings, "alice"))
            click(browser, By.XPATH, "//button[normalize-space()='Sign in']")
            subject = "Promote pjm challenger v2 to champion?"
            click(browser, By.LINK_TEXT, subject)  # the list refreshes under the cursor: found afresh
            WebDriverWait(browser, 30).until(
                ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Approve']"))
            )
            evidence = text_of(browser, By.TAG_NAME, "table")
            assert "backtest pass" in evidence and "canary pass" in evidence, evidence
            assert "challenger v2 against champion v1" in text_of(browser, By.TAG_NAME, "body")
            browser.save_screenshot(str(shots / "1-required-action-evidence.png"))
            click(browser, By.XPATH, "//button[normalize-space()='Approve']")
            assert admin.wait_for_run("promote_forecaster", first.run_id, timeout=300) == "success"
            browser.refresh()
            browser.save_screenshot(str(shots / "2-approved.png"))

            # MLflow's own UI shows the alias on the new version (its login sent as a header)
            token = base64.b64encode(f"admin:{platform.admin_password(settings)}".encode()).decode()
            browser.execute_cdp_cmd("Network.enable", {})
            browser.execute_cdp_cmd(
                "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
            )
            browser.get(f"{platform.mlflow_url(settings)}/#/models/seqops-forecaster-pjm")
            WebDriverWait(browser, 60).until(lambda b: "Version 2" in text_of(b, By.TAG_NAME, "body"))
            page = text_of(browser, By.TAG_NAME, "body")
            row_of_v2 = page[page.index("Version 2") : page.index("Version 1")]
            assert "@ champion" in row_of_v2 and "approved_by\n: alice" in row_of_v2, row_of_v2
            browser.save_screenshot(str(shots / "3-mlflow-champion.png"))
        finally:
            browser.quit()
        champion = registry.by_alias("pjm", CHAMPION)
        assert champion.version == v2 and champion.tags["approved_by"] == "alice"
        assert (
            registry.by_alias("pjm", PREVIOUS).version == v1 and get_route(registry, "pjm").mode == "champion"
        )
        # served and logged: the next batch forecasts and the prediction service both use v2
        from seqops.flows.replay import step_inline

        assert step_inline(settings, "pjm", hours=24)["forecast"]["models"] == [f"champion:{v2}"]
        token = (settings.secrets_dir / "serving_token").read_text().strip()

        def served_versions() -> set | None:  # the service reloads when an alias moves
            answer = httpx.post(
                f"{platform.serving_url(settings)}/v1/forecast",
                json={"dataset": "pjm", "series_ids": ZONES},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            versions = {f["model"]["version"] for f in answer.json()["forecasts"]}
            return versions if versions == {v2} else None

        poll(served_versions, timeout=120, every=3, timed_out=lambda: "the service still serves v1")

        # ---- 2. a challenger that breaks once it serves; the scheduler killed mid-promotion ----
        v3 = register(settings, evaluated)  # the same model as v2: nothing to choose offline or in shadow
        broken = {"on": False}
        healthy_predict = router._predict

        def predict(model, windows, idx):
            out = healthy_predict(model, windows, idx)
            return np.roll(out, 12, axis=1) if broken["on"] and model.version == v3 else out

        monkeypatch.setattr(router, "_predict", predict)  # the replay forecasts in this process
        second = Driver(admin, settings, admin.trigger("promote_forecaster", conf={"dataset": "pjm"}))
        second.until(lambda s: s.get("wait_shadow") == "up_for_reschedule" and second.steps >= 1)
        kill_scheduler(settings)  # between steps: the run waits in shadow, no task is running
        poll(
            lambda: "scheduler" not in platform.running(settings) or None,
            timeout=30,
            every=0.5,
            timed_out=lambda: "the killed scheduler is still there",
        )
        # after the crash: no alias points at an unapproved model; the router's mode is the stage's
        assert registry.by_alias("pjm", CHAMPION).tags["validation_status"] == "approved"
        assert registry.by_alias("pjm", PREVIOUS).tags["validation_status"] == "approved"
        assert registry.by_alias("pjm", CHALLENGER).version == v3
        assert (
            get_route(registry, "pjm").mode == "shadow"
            and second.states()["wait_shadow"] == "up_for_reschedule"
        )
        restarted = seqops("platform", "up", "--no-demo", env=env, timeout=300)
        assert restarted.returncode == 0 and "started scheduler" in restarted.stdout + restarted.stderr
        states = second.until(lambda s: False, before_step=lambda mode: broken.update(on=mode == "canary"))
        assert admin.dag_run("promote_forecaster", second.run_id)["state"] == "failed"
        assert states["shadow_gate"] == "success" and states["canary_gate"] == "failed", states
        assert states["approval"] == "upstream_failed" and states["archive_unless_approved"] == "success"
        assert second.modes == ["champion", "shadow", "canary", "champion"], second.modes
        rejected = registry.get("seqops-forecaster-pjm", v3).tags
        assert rejected["validation_status"] == "rejected", rejected
        assert rejected["rejected_reason"].startswith("canary rolled back: the challenger is worse")
        assert (
            registry.by_alias("pjm", CHAMPION).version == v2 and registry.by_alias("pjm", CHALLENGER) is None
        )
        from seqops.registry.registry import experiment_name
        from seqops.registry.tracking import find_runs

        canary_runs = find_runs(
            settings,
            experiment_name("pjm"),
            where=f"tags.`seqops.promotion.gate` = 'canary' and tags.`seqops.promotion.challenger` = '{v3}'",
        )
        assert len(canary_runs) == 1 and canary_runs[0]["tags"]["seqops.promotion.decision"] == "stop"
        assert canary_runs[0]["metrics"]["gate.pairs"] < MIN_PAIRS  # caught at an interim look, early

        # ---- 3. a worse challenger stops at the backtest gate ----
        v4 = register(settings, evaluated, bias=0.3)
        third = admin.trigger("promote_forecaster", conf={"dataset": "pjm", "version": v4})
        assert admin.wait_for_run("promote_forecaster", third, timeout=300) == "failed"
        states = {t["task_id"]: t["state"] for t in admin.task_instances("promote_forecaster", third)}
        assert states["backtest_gate"] == "failed" and states["shadow"] == "upstream_failed", states
        reason = registry.get("seqops-forecaster-pjm", v4).tags["rejected_reason"]
        assert reason.startswith("backtest gate: the challenger is worse"), reason
        assert (
            registry.by_alias("pjm", CHAMPION).version == v2 and get_route(registry, "pjm").mode == "champion"
        )
    finally:
        down = seqops("platform", "down", env=env, timeout=120)
    assert down.returncode == 0
