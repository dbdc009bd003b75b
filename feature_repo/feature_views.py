"""Feature views, four per dataset, all keyed by the ``series`` entity.

``<dataset>_window``   x: Array(Float32) of L values up to and including the window end (one array
                       feature, not L lag columns: ~37x the online write rate, a tenth of the read
                       latency, STACK_NOTES), plus window_end_unix so a reader sees which row it got.
                       The float32 bits written by features.windows come back unchanged from DuckDB,
                       SQLite, PostgreSQL and Redis (tests/test_features*.py).
``<dataset>_calendar`` calendar: Array(Float32) of H x C calendar features of the H target steps.
``<dataset>_scale``    scale_loc, scale_scale: Float32, the per-window scaling pair.
``<dataset>_targets``  y: Array(Float32) of the H values after the origin. Offline only (labels are
                       never served) and used by the training service only.

TTL: the input views live ``ttl_steps`` steps (default 2: the last complete step plus one step of
delivery lag; ``features.config``). An older window is stale: the online read reports it expired
(``features.store.read_online`` enforces the TTL; Feast does not online) and historical retrieval
returns nothing, so both paths agree. The label view lives half a step, so a point-in-time join
returns the targets of exactly the requested origin or nothing, never a neighbour's.
"""

from data_sources import target_sources, window_sources
from entities import series
from feast import FeatureView, Field
from feast.types import Array, Float32, Int64

from features.config import feature_datasets, names, window_spec

#: dataset -> {"window"|"calendar"|"scale"|"targets": FeatureView}
views = {}

for _dataset in feature_datasets():
    _n, _spec = names(_dataset), window_spec(_dataset)
    _tags = {
        "seqops.dataset": _dataset,
        "seqops.owner": "features",
        "seqops.window_length": str(_spec.length),
        "seqops.horizon": str(_spec.horizon),
        "seqops.step": str(int(_spec.step.total_seconds())),
    }
    _views = {
        "window": FeatureView(
            name=_n.window,
            entities=[series],
            ttl=_spec.ttl,
            schema=[
                Field(name="x", dtype=Array(Float32), description=f"{_spec.length} values, oldest first"),
                Field(name="window_end_unix", dtype=Int64, description="window end, seconds since epoch"),
            ],
            source=window_sources[_dataset],
            online=True,
            description=f"{_dataset}: the LSTM input window (L={_spec.length}) ending at the event time.",
            tags={**_tags, "seqops.role": "input"},
        ),
        "calendar": FeatureView(
            name=_n.calendar,
            entities=[series],
            ttl=_spec.ttl,
            schema=[
                Field(
                    name="calendar",
                    dtype=Array(Float32),
                    description=f"[H={_spec.horizon}, C={_spec.n_calendar}] row-major, "
                    f"zone {_spec.calendar_tz}",
                ),
            ],
            source=window_sources[_dataset],
            online=True,
            description=f"{_dataset}: calendar features of the {_spec.horizon} steps after the window end.",
            tags={**_tags, "seqops.role": "input", "seqops.calendar_tz": _spec.calendar_tz},
        ),
        "scale": FeatureView(
            name=_n.scale,
            entities=[series],
            ttl=_spec.ttl,
            schema=[
                Field(name="scale_loc", dtype=Float32, description="loc of (x - loc) / scale"),
                Field(name="scale_scale", dtype=Float32, description="scale of (x - loc) / scale"),
            ],
            source=window_sources[_dataset],
            online=True,
            description=f"{_dataset}: per-window scale statistics ({_spec.scaler} scaler).",
            tags={**_tags, "seqops.role": "input", "seqops.scaler": _spec.scaler},
        ),
        "targets": FeatureView(
            name=_n.targets,
            entities=[series],
            ttl=_spec.label_ttl,
            schema=[
                Field(name="y", dtype=Array(Float32), description=f"{_spec.horizon} values after the origin"),
            ],
            source=target_sources[_dataset],
            online=False,
            description=f"{_dataset}: training labels, the {_spec.horizon} values after the origin.",
            tags={**_tags, "seqops.role": "label"},
        ),
    }
    views[_dataset] = _views
    for _fv in _views.values():
        globals()[_fv.name] = _fv
