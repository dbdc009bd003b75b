"""Airflow Assets that connect the DAGs (data-aware scheduling). Light: safe for DAG top level.

The event contract, the same for every asset: ``extra["datasets"]`` is the sorted list of datasets
the event is about. Retrain events add ``reason`` (and ``report`` when drift asked for it).
:func:`datasets_of` reads it (and the single ``"dataset"`` key an outside system may send).
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Validated rows were published to the curated store (emitted by ``ingest_sequences``).
CURATED = Asset(name="seqops_curated", uri="seqops://curated")
#: Features were materialized to the online store (emitted by ``materialize_features``).
FEATURES = Asset(name="seqops_features", uri="seqops://features")
#: A retrain was requested (drift, or a person): consumed by ``train_forecaster``.
RETRAIN = Asset(name="seqops_retrain", uri="seqops://retrain")
#: A challenger was registered (``train_forecaster``): consumed by ``promote_forecaster``;
#: ``extra["version"]`` is its registry version.
CHALLENGER = Asset(name="seqops_challenger", uri="seqops://challenger")


def datasets_of(extra: dict | None) -> list[str]:
    """The datasets one asset event names."""
    extra = extra or {}
    names = set(extra.get("datasets") or [])
    if extra.get("dataset"):
        names.add(extra["dataset"])
    return sorted(names)


def requested_datasets(params: dict | None, triggering_asset_events: dict | None, what: str) -> list[str]:
    """The datasets a run is for: the ``dataset`` param, else those its triggering events name.

    Raises AirflowSkipException (the run skips with the reason) when neither names one.
    """
    chosen = (params or {}).get("dataset")
    if chosen:
        return [chosen]
    names: set[str] = set()
    for events in (triggering_asset_events or {}).values():
        for event in events:
            names.update(datasets_of(event.extra))
    if not names:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"no dataset named by the param or the {what} events")
    return sorted(names)
