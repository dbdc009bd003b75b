"""
### materialize_features: window tables -> Feast -> online store, with a parity gate

Runs whenever `ingest_sequences` publishes validated rows (the `seqops_curated` Asset; its event
names the datasets), or by hand with the `dataset` param. For each dataset:

1. **build_windows**: cut every input window (L values) and target vector (H values) from the
   curated store into Parquet under `SEQOPS_HOME/features/<dataset>/` (a window spanning a
   missing hour is not emitted);
2. **apply**: register the Feast declarations of `feature_repo/` (idempotent, once per run);
3. **materialize**: write each series' newest window to the online store; the range never ends
   before an earlier run's end, so an older window never overwrites a newer one;
4. **parity**: compare, value by value, historical retrieval (the training path) with the online
   read (the serving path) for `parity_sample` random (series, moment) pairs; one mismatch fails
   the task and nothing is announced;
5. **emit_features**: emit the `seqops_features` Asset event (`extra = {"datasets": [NAME], ...}`).

Every step is a plain function of `seqops.flows.features` that `seqops features ...` also calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from seqops.dags.assets import CURATED, FEATURES, requested_datasets


@dag(
    schedule=[CURATED],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "features"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            None,
            type=["null", "string"],
            description="Only this dataset; empty = the datasets named by the triggering curated events.",
        ),
        "parity_sample": Param(
            200, type="integer", minimum=1, description="(series, moment) pairs to compare."
        ),
    },
    doc_md=__doc__,
)
def materialize_features():
    @task
    def datasets(params=None, triggering_asset_events=None) -> list[str]:
        """The datasets to refresh: the param, else those the curated events name."""
        return requested_datasets(params, triggering_asset_events, "curated")

    @task
    def build_windows(dataset: str) -> dict:
        """Window and target tables of one dataset, from the curated store."""
        from seqops.core.settings import get_settings
        from seqops.flows.features import build

        result = build(get_settings(), dataset)
        print(result)
        return result

    @task
    def apply(builds: list[dict]) -> dict:
        """Register the feature declarations (idempotent)."""
        from seqops.core.settings import get_settings
        from seqops.flows.features import apply as feast_apply

        return feast_apply(get_settings())

    @task
    def materialize(build: dict) -> dict:
        """Newest window of every series to the online store, never older over newer."""
        from seqops.core.settings import get_settings
        from seqops.flows.features import materialize as run

        result = run(get_settings(), build["dataset"])
        print(result)
        return result

    @task(retries=0)
    def parity(materialized: dict, params=None) -> dict:
        """The gate: historical vs online, value by value; any mismatch fails (no retry)."""
        from airflow.sdk.exceptions import AirflowFailException

        from seqops.core.settings import get_settings
        from seqops.flows.features import parity as check_parity

        sample = int((params or {}).get("parity_sample", 200))
        result = check_parity(get_settings(), materialized["dataset"], sample)
        print(result.summary())
        if not result.ok:
            for row in result.mismatches:
                print(row)
            raise AirflowFailException(result.summary())
        return {k: v for k, v in result.to_dict().items() if k != "mismatches"}

    @task(outlets=[FEATURES])
    def emit_features(checked: dict, outlet_events=None) -> dict:
        """Announce the refreshed features of one dataset."""
        extra = {"datasets": [checked["dataset"]], "parity_samples": checked["samples"]}
        outlet_events[FEATURES].extra = extra
        return extra

    names = datasets()
    builds = build_windows.expand(dataset=names)
    applied = apply(builds)
    materialized = materialize.expand(build=builds)
    applied >> materialized
    checked = parity.expand(materialized=materialized)
    emit_features.expand(checked=checked)


materialize_features()
