"""Entities: one time series of one dataset, keyed by ``series_id``.

Each dataset has its own feature views (see ``feature_views.py``), so the same key in two datasets
never collides in the online store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import Entity


def series() -> Entity:
    from feast import Entity, ValueType

    return Entity(
        name="series",
        join_keys=["series_id"],
        value_type=ValueType.STRING,
        description="One time series (a PJM zone, an M4 series) of one dataset.",
        tags={"seqops.owner": "features"},
    )
