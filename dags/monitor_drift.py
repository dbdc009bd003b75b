"""
### monitor_drift: is the champion still looking at the world it was trained on?

Runs daily (06:00 UTC), after every ingestion (the `seqops_curated` Asset), and on demand, for each
dataset with an approved champion. One check per dataset (see `seqops.flows.drift`):

1. **check**: the last `SEQOPS_DRIFT_PERIOD_DAYS` of data against like-for-like reference periods
   from the champion's training data (same hours of the week, same season where the training data
   reaches back), per series with false-discovery control; the champion's live error against its
   backtest error; the pooled columns through Evidently with pinned methods. The report (its first
   lines say what drifted, how sure, and what happens next) is saved as HTML, logged to MLflow
   beside the champion version and added to the Evidently workspace: the task's **Drift report**
   link opens it (behind the platform login).
2. **retrain_needed**: a gate; only a check whose drift persisted past `SEQOPS_DRIFT_PERSIST_HOURS`,
   outside the cooldown and with no challenger already in promotion, goes on. No drift, no event.
3. **request_retrain**: emits the `seqops_retrain` Asset naming each such dataset with its reason and
   report; `train_forecaster` trains it, records the trigger, and its model enters promotion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from seqops.dags.assets import CURATED, RETRAIN
from seqops.dags.operators import DriftCheckOperator


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[CURATED]
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "monitoring"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    params={
        "dataset": Param(
            None, type=["null", "string"], description="Only this dataset; empty = the events', else all."
        ),
    },
    doc_md=__doc__,
)
def monitor_drift():
    @task
    def datasets(params=None, triggering_asset_events=None) -> list[str]:
        """The param's dataset, else those the curated events name, else every declared dataset."""
        from seqops.dags.assets import datasets_of

        chosen = (params or {}).get("dataset")
        if chosen:
            return [chosen]
        names = {
            d
            for events in (triggering_asset_events or {}).values()
            for e in events
            for d in datasets_of(e.extra)
        }
        if names:
            return sorted(names)
        from seqops.core.settings import get_settings

        return get_settings().feature_datasets()

    checks = DriftCheckOperator.partial(task_id="check").expand(dataset=datasets())

    @task.short_circuit
    def retrain_needed(results: list[dict]) -> list[dict]:
        """Gate: go on only for checks that asked for a retrain (an empty list skips what follows)."""
        wanted = [r for r in results if r and r.get("retrain")]
        for r in results:
            if r:
                print(r.get("headline", r))
        return wanted

    @task(outlets=[RETRAIN])
    def request_retrain(wanted: list[dict], outlet_events=None) -> dict:
        """One seqops_retrain event naming each drifted dataset with its reason and report."""
        requests = {
            r["dataset"]: {
                "reason": r["reason"],
                "report": f"{r['report_url']} (MLflow run {r['mlflow_run_id']})",
            }
            for r in wanted
        }
        outlet_events[RETRAIN].extra = {"datasets": sorted(requests), "requests": requests, "reason": "drift"}
        return requests

    request_retrain(retrain_needed(checks.output))


monitor_drift()
