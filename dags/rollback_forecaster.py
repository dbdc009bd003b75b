"""
### rollback_forecaster: put the last approved champion back, on a person's request

Triggered by hand (Trigger DAG with `dataset` and `reason`, or `seqops promote rollback`), so a manual
rollback leaves the same audit trail as a promotion: the run names who asked and why. A canary that
regresses is rolled back by `promote_forecaster` itself.

1. **rollback**: `champion` moves to the last *approved* version before it (never "the previous
   version number"); the version left gets `validation_status=rolled_back`, the reason and
   `rolled_back_by`; the router goes back to champion only. Fails, saying so, when there is no
   earlier approved version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "promotion"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param("pjm", type="string", description="Dataset whose champion to roll back."),
        "reason": Param(
            "", type="string", minLength=3, description="Why (kept on the version rolled back from)."
        ),
    },
    doc_md=__doc__,
)
def rollback_forecaster():
    @task(retries=0)
    def rollback(params=None, dag_run=None) -> dict:
        """Champion back to the last approved version; reason and requester on the version left."""
        from airflow.sdk.exceptions import AirflowFailException

        from seqops.core.settings import get_settings
        from seqops.flows.promote import roll_back

        params = params or {}
        who = getattr(dag_run, "triggering_user_name", None) or "unknown"
        try:
            return roll_back(get_settings(), params["dataset"], params["reason"], who)
        except LookupError as exc:
            raise AirflowFailException(str(exc)) from None

    rollback()


rollback_forecaster()
