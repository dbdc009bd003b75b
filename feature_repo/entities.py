"""Entities: one time series of one dataset, keyed by ``series_id``.

Each dataset has its own feature views (see ``feature_views.py``), so the same key in two datasets
never collides in the online store.
"""

from feast import Entity, ValueType

series = Entity(
    name="series",
    join_keys=["series_id"],
    value_type=ValueType.STRING,
    description="One time series (a PJM zone, an M4 series) of one dataset.",
    tags={"seqops.owner": "features"},
)
