"""
### ingest_sequences: land, validate and publish batches of sequence data

Picks up every batch waiting in `SEQOPS_HOME/data/landing/<dataset>/incoming/` (CSV or Parquet in
the canonical long format: `series_id, timestamp, value`, optional `<file>.meta.json` declaring the
batch interval), and for each batch:

1. **land**: an immutable, content-addressed raw copy is made before anything else;
2. **validate**: the Great Expectations suite of its dataset (`datasets.toml`) runs; a
   rejected batch fails this task with the failed expectations and example rows, and goes whole to
   `data/quarantine/<dataset>/<batch_id>/` with its report (`data_docs/index.html`);
3. **publish**: accepted rows go to the curated store.

Good batches flow on even when others are rejected. `emit_curated` then emits the
`seqops_curated` Asset event that schedules `materialize_features`, and `summarize` fails the run
when any batch was quarantined or did not finish, so a rejection or a fault is visible here.
Re-running a run re-processes the batches that run claimed and changes nothing; a `land` retried
after a crash keeps what it had claimed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task, task_group

from seqops.dags.assets import CURATED


@dag(
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "ingestion"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            description="Only this dataset's landing zone; empty = every dataset with pending batches.",
        )
    },
    doc_md=__doc__,
)
def ingest_sequences():
    @task
    def land(params=None, run_id=None) -> list[dict]:
        """Claim pending batches into the raw store (the same claim when this run is re-run)."""
        from seqops.core.settings import get_settings
        from seqops.flows.ingest import claim_for_run

        refs = claim_for_run(get_settings(), run_id, dataset=(params or {}).get("dataset"))
        return [ref.to_dict() for ref in refs]

    @task_group
    def each_batch(ref: dict):
        @task(retries=0)
        def validate(ref: dict) -> dict:
            """Run the dataset's GX suite; fail (no retry) with the reasons when rejected."""
            from airflow.sdk.exceptions import AirflowFailException

            from seqops.core.settings import get_settings
            from seqops.core.store import BatchRef
            from seqops.flows.ingest import validate as validate_batch

            outcome = validate_batch(get_settings(), BatchRef.from_dict(ref))
            print(outcome.message)
            if not outcome.accepted:
                raise AirflowFailException(outcome.message)
            return ref

        @task
        def publish(ref: dict) -> dict:
            """Write the accepted batch's rows to the curated store."""
            from seqops.core.settings import get_settings
            from seqops.core.store import BatchRef
            from seqops.flows.ingest import publish as publish_batch

            rows = publish_batch(get_settings(), BatchRef.from_dict(ref))
            return {"dataset": ref["dataset"], "batch_id": ref["batch_id"], "rows": rows}

        publish(validate(ref))

    @task(outlets=[CURATED], trigger_rule="all_done")
    def emit_curated(refs: list[dict], outlet_events=None) -> dict:
        """Emit the curated Asset event for downstream DAGs, if anything was published."""
        from airflow.sdk.exceptions import AirflowSkipException

        from seqops.core.settings import get_settings
        from seqops.flows.ingest import run_summary

        summary = run_summary(get_settings(), refs)
        if not summary["published"]:
            raise AirflowSkipException("no batch was published: no curated event")
        outlet_events[CURATED].extra = {
            "datasets": sorted({b["dataset"] for b in summary["published"]}),
            "batches": [b["batch_id"] for b in summary["published"]],
            "rows": sum(b["rows"] for b in summary["published"]),
        }
        return summary

    @task(trigger_rule="all_done")
    def summarize(refs: list[dict]) -> dict:
        """Reconcile counts; fail the run when any batch was quarantined or did not finish."""
        from airflow.sdk.exceptions import AirflowFailException

        from seqops.core.settings import get_settings
        from seqops.flows.ingest import run_summary

        summary = run_summary(get_settings(), refs)
        print(summary["text"])
        if summary["rejected"] or summary["unfinished"]:
            raise AirflowFailException(summary["text"])
        return {k: v for k, v in summary.items() if k != "text"}

    refs = land()
    batches = each_batch.expand(ref=refs)
    emitted = emit_curated(refs)
    batches >> emitted >> summarize(refs)


ingest_sequences()
