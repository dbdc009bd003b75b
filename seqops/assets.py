"""Airflow Assets that connect the DAGs (data-aware scheduling). Light: safe for DAG top level.

Events carry ``extra`` with at least ``{"dataset": NAME}`` so a consumer knows what changed.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Validated rows were published to the curated store (emitted by ``ingest_sequences``).
CURATED = Asset(name="seqops_curated", uri="seqops://curated")
#: Features were materialized to the online store (emitted by ``materialize_features``).
FEATURES = Asset(name="seqops_features", uri="seqops://features")
#: A retrain was requested (drift, or a person): consumed by ``train_forecaster``.
RETRAIN = Asset(name="seqops_retrain", uri="seqops://retrain")
