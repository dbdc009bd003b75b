"""
### promote_forecaster: a challenger becomes champion only on evidence and a person's approval

Runs when `train_forecaster` registers a challenger (the `seqops_challenger` Asset), or by hand.
One run at a time: a challenger registered during a promotion waits; when its turn comes, a
run for an older version that a newer challenger superseded stops at **candidate** and says so.

1. **backtest_gate**: challenger vs champion on the challenger's backtest folds, a paired
   Diebold-Mariano test (HLN correction) on the per-forecast MASE terms; significantly worse stops
   here (the challenger is archived with the reason). The first model is judged against the better
   naive baseline and goes straight to approval.
2. **shadow**: the router serves the champion and logs the challenger's forecasts of the same
   inputs; **wait_shadow** waits (rescheduling, holding no worker) until enough paired forecasts have
   their actuals (a 24-hour forecast is judged 24 hours later); **shadow_gate** runs the same test.
3. **canary**: a share of the series is served by the challenger (the champion still forecasts
   them, logged); **wait_canary** also looks at each poke and ends early when the challenger is
   already significantly worse (p < 0.001, from a quarter of the sample); **canary_gate** on the
   paired live forecasts: a significant regression rolls back at once (the router returns to
   champion only, the challenger is archived with the reason) and fails the task.
4. **approval**: Airflow's Required Actions page shows the evidence table with links to the MLflow
   runs; only the configured approvers (`SEQOPS_APPROVERS`) may answer; no answer in time is a reject.
5. **promote**: `champion` moves (the old one stays as `previous_champion`), tagged with who approved
   and the evidence; **archive_unless_approved** (a teardown: it runs after a failure too, and the run
   still fails) archives a challenger nobody approved and puts the router back to champion only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, task, teardown

from seqops.core.settings import get_settings
from seqops.dags.assets import CHALLENGER

_settings = get_settings()  # light: the approvers, the approval window and the waits' poke interval


@dag(
    schedule=[CHALLENGER],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "promotion"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    params={
        "dataset": Param("pjm", type="string", description="Dataset whose challenger to promote."),
        "version": Param(None, type=["null", "string"], description="Expected challenger version."),
    },
    doc_md=__doc__,
)
def promote_forecaster():
    @task
    def candidate(params=None, triggering_asset_events=None) -> dict:
        """The challenger and the champion it faces (a superseded challenger stops here)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from seqops.flows.promote import candidate as find

        params = params or {}
        dataset, version = params.get("dataset", "pjm"), params.get("version")
        for events in (triggering_asset_events or {}).values():
            for event in events:
                extra = event.extra or {}
                dataset = (extra.get("datasets") or [dataset])[0]
                version = extra.get("version", version)
        try:
            return find(get_settings(), dataset, version)
        except LookupError as exc:
            raise AirflowSkipException(str(exc)) from None

    @task  # a crash is retried; a verdict (AirflowFailException) is final
    def backtest_gate(cand: dict) -> dict:
        """Gate 1: challenger vs champion (or the naive baselines) on the same recent folds."""
        from airflow.sdk.exceptions import AirflowFailException

        from seqops.flows.promote import backtest_gate as run
        from seqops.flows.promote import stop

        settings = get_settings()
        verdict = run(settings, cand["dataset"], cand["version"], champion=cand["champion"])
        print(verdict["reason"])
        if verdict["decision"] == "stop":
            stop(settings, cand["dataset"], cand["version"], f"backtest gate: {verdict['reason']}")
            raise AirflowFailException(f"stopped at the backtest gate: {verdict['reason']}")
        return verdict

    def live_stage(stage: str, cand, after):
        """Route to ``stage`` (shadow or canary), wait for paired live forecasts with actuals, gate.

        A significant regression archives the challenger and fails the gate (in canary: the
        automatic rollback, the router back to champion only). A first model skips both stages.
        """

        @task(task_id=stage)
        def route(cand: dict) -> str:
            from seqops.flows.promote import set_stage

            if cand["champion"] is not None:
                set_stage(get_settings(), cand["dataset"], stage)
            return datetime.now(UTC).isoformat()

        @task.sensor(
            task_id=f"wait_{stage}",
            poke_interval=_settings.promotion_poke_s,
            timeout=14 * 24 * 3600,
            mode="reschedule",
        )
        def wait(cand: dict, since: str):
            from airflow.sdk import PokeReturnValue

            from seqops.flows.promote import canary_regressed, paired_count

            if cand["champion"] is None:
                return PokeReturnValue(is_done=True)
            s = get_settings()
            n = paired_count(s, cand["dataset"], cand["version"], cand["champion"], since)
            print(f"{n} of {s.promotion_min_pairs} paired {stage} forecasts have their actuals")
            if stage == "canary" and n < s.promotion_min_pairs:
                if canary_regressed(s, cand["dataset"], cand["version"], cand["champion"], since, pairs=n):
                    print(f"the canary is already significantly worse after {n} forecasts: judging now")
                    return PokeReturnValue(is_done=True)
            return PokeReturnValue(is_done=n >= s.promotion_min_pairs)

        @task(task_id=f"{stage}_gate")
        def gate(cand: dict, since: str) -> dict | None:
            from airflow.sdk.exceptions import AirflowFailException

            from seqops.flows.promote import live_gate, stop

            if cand["champion"] is None:
                return None
            s = get_settings()
            verdict = live_gate(
                s, cand["dataset"], cand["version"], cand["champion"], stage=stage, since=since
            )
            print(verdict["reason"])
            if verdict["decision"] == "stop":
                what = "canary rolled back" if stage == "canary" else f"{stage} gate"
                stop(s, cand["dataset"], cand["version"], f"{what}: {verdict['reason']}")
                raise AirflowFailException(f"{what.upper()}: {verdict['reason']}")
            return verdict

        since = route(cand)
        after >> since
        verdict = gate(cand, since)
        wait(cand, since) >> verdict
        return verdict

    @task
    def evidence(cand: dict, gates: list) -> str:
        """The approval's body: the gates' numbers and links to their MLflow runs."""
        from seqops.flows.promote import evidence_markdown

        return evidence_markdown(get_settings(), cand, [g for g in gates if g])

    approval = ApprovalOperator(
        task_id="approval",
        subject="Promote {{ ti.xcom_pull(task_ids='candidate')['dataset'] }} challenger "
        "v{{ ti.xcom_pull(task_ids='candidate')['version'] }} to champion?",
        body="{{ ti.xcom_pull(task_ids='evidence') }}",
        defaults="Reject",
        assigned_users=[{"id": user, "name": user} for user in _settings.approvers],
        response_timeout=timedelta(hours=_settings.promotion_approval_hours),
    )

    @task
    def promote(cand: dict, backtest: dict, ti=None) -> dict:
        """Move champion; tag who approved and the evidence run."""
        from seqops.flows.promote import approve

        answer = ti.xcom_pull(task_ids="approval") or {}
        who = answer.get("responded_by_user") or {}
        return approve(
            get_settings(), cand, who.get("name") or who.get("id") or "unknown", backtest["run_id"]
        )

    @teardown  # runs whatever happened before it; the run's state stays that of the gates and promote
    def archive_unless_approved(cand: dict) -> dict:
        """A challenger nobody approved is archived with the reason."""
        from seqops.flows.promote import archive_unless_approved as archive

        return archive(get_settings(), cand)

    cand = candidate()
    backtest = backtest_gate(cand)
    shadow_verdict = live_stage("shadow", cand, after=backtest)
    canary_verdict = live_stage("canary", cand, after=shadow_verdict)
    body = evidence(cand, [backtest, shadow_verdict, canary_verdict])
    promoted = promote(cand, backtest)
    body >> approval >> promoted >> archive_unless_approved(cand)


promote_forecaster()
