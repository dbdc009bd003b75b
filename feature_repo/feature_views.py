"""Feature views, four per dataset, all keyed by the ``series`` entity.

``<dataset>_window``   x: Array(Float32) of L values up to and including the window end (one array
                       feature, not L lag columns: ~37x the online write rate, a tenth of the read
                       latency, docs/STACK_NOTES.md), plus window_end_unix so a reader sees which row it got.
                       The float32 bits written by seqops.features.tables come back unchanged from DuckDB,
                       SQLite, PostgreSQL and Redis (tests/test_features*.py).
``<dataset>_calendar`` calendar: Array(Float32) of H x C calendar features of the H target steps.
``<dataset>_scale``    scale_loc, scale_scale: Float32, the per-window scaling pair.
``<dataset>_targets``  y: Array(Float32) of the H values after the origin. Offline only (labels are
                       never served) and used by the training service only.

TTL: the input views live ``ttl_steps`` steps (default 2: the last complete step plus one step of
delivery lag; ``datasets.toml``). An older window is stale: the online read reports it expired
(``seqops.features.store.read_online`` enforces the TTL; Feast does not online) and historical retrieval
returns nothing, so both paths agree. The label view lives half a step, so a point-in-time join
returns the targets of exactly the requested origin or nothing, never a neighbour's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import Entity, FeatureView
    from feast.data_source import DataSource

    from seqops.core.datasets import WindowSpec
    from seqops.feature_repo.names import FeatureNames


def feature_views(
    n: FeatureNames, spec: WindowSpec, entity: Entity, window_source: DataSource, target_source: DataSource
) -> dict[str, FeatureView]:
    """``{"window"|"calendar"|"scale"|"targets": FeatureView}`` of one dataset."""
    from feast import FeatureView, Field
    from feast.types import Array, Float32, Int64

    tags = {
        "seqops.dataset": n.dataset,
        "seqops.owner": "features",
        "seqops.window_length": str(spec.length),
        "seqops.horizon": str(spec.horizon),
        "seqops.step": str(int(spec.step.total_seconds())),
    }
    return {
        "window": FeatureView(
            name=n.window,
            entities=[entity],
            ttl=spec.ttl,
            schema=[
                Field(name="x", dtype=Array(Float32), description=f"{spec.length} values, oldest first"),
                Field(name="window_end_unix", dtype=Int64, description="window end, seconds since epoch"),
            ],
            source=window_source,
            online=True,
            description=f"{n.dataset}: the LSTM input window (L={spec.length}) ending at the event time.",
            tags={**tags, "seqops.role": "input"},
        ),
        "calendar": FeatureView(
            name=n.calendar,
            entities=[entity],
            ttl=spec.ttl,
            schema=[
                Field(
                    name="calendar",
                    dtype=Array(Float32),
                    description=f"[H={spec.horizon}, C={spec.n_calendar}] row-major, zone {spec.calendar_tz}",
                ),
            ],
            source=window_source,
            online=True,
            description=f"{n.dataset}: calendar features of the {spec.horizon} steps after the window end.",
            tags={**tags, "seqops.role": "input", "seqops.calendar_tz": spec.calendar_tz},
        ),
        "scale": FeatureView(
            name=n.scale,
            entities=[entity],
            ttl=spec.ttl,
            schema=[
                Field(name="scale_loc", dtype=Float32, description="loc of (x - loc) / scale"),
                Field(name="scale_scale", dtype=Float32, description="scale of (x - loc) / scale"),
            ],
            source=window_source,
            online=True,
            description=f"{n.dataset}: per-window scale statistics ({spec.scaler} scaler).",
            tags={**tags, "seqops.role": "input", "seqops.scaler": spec.scaler},
        ),
        "targets": FeatureView(
            name=n.targets,
            entities=[entity],
            ttl=spec.label_ttl,
            schema=[
                Field(name="y", dtype=Array(Float32), description=f"{spec.horizon} values after the origin"),
            ],
            source=target_source,
            online=False,
            description=f"{n.dataset}: training labels, the {spec.horizon} values after the origin.",
            tags={**tags, "seqops.role": "label"},
        ),
    }
