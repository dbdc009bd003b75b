"""Materialization policy: what range goes to the online store, and the never-backwards guarantee.

The online store holds one row per series and view: the newest window. Feast's
``materialize_incremental`` starts at the last run's end, or at *now - ttl* the first time (no
row of a historical dataset falls in it), and its ``materialize(start, end)`` writes whatever is
newest *inside* the range: a backfill over an old range writes older windows over newer ones in the
SQLite and PostgreSQL online stores, which keep the last write.

:func:`materialize` therefore chooses the range itself:

* start = the oldest of the series' newest windows (or an earlier requested start), so every
  series' newest window is in the range, including one a correction batch just rewrote;
* end = the newest window end, never earlier than the end of any earlier materialization (the
  high-water mark in the registry): a requested end before it is raised to it.

Because Feast writes the newest row per series inside ``[start, end]`` and ``end`` never goes back,
an older window can never replace a newer one. Runs are idempotent.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime

from seqops.core.settings import Settings


@dataclass(frozen=True)
class MaterializeResult:
    """One materialization: the range used and what it wrote."""

    dataset: str
    start: str | None
    end: str | None
    series: int
    rows: int  # rows written to the online store (series x online views)
    requested_end: str | None
    high_water_mark_before: str | None
    end_raised: bool  # a requested end was before the high-water mark and was raised
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def materialize(
    dataset: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings,
) -> MaterializeResult:
    """Bring the online store up to date with the dataset's window table (see module docstring).

    Args:
        dataset: the dataset whose online views to materialize.
        start: an earlier start (a backfill); it only widens the range.
        end: the end of the range (default: the newest window); raised to the high-water mark.
        settings: platform settings.

    Returns:
        The range used and the number of rows written.

    Raises:
        seqops.features.store.SourceSchemaError: the source tables would break parity (nothing written).
    """
    from seqops.feature_repo.names import names
    from seqops.features import store
    from seqops.features.tables import latest_window_ends

    began = time.perf_counter()
    store.check_sources(dataset, settings)
    latest = latest_window_ends(settings, dataset)
    hwm = store.materialized_until(dataset, settings)
    if latest.empty:
        seconds = time.perf_counter() - began
        return MaterializeResult(dataset, None, None, 0, 0, None, _iso(hwm), False, seconds)
    newest, oldest = store.utc(latest.max()), store.utc(latest.min())
    requested_end = store.utc(end) if end is not None else newest
    range_end = max(requested_end, hwm) if hwm is not None else requested_end
    range_start = min(store.utc(start), oldest) if start is not None else oldest
    range_start = min(range_start, range_end)
    store.materialize_range(dataset, range_start, range_end, settings)
    in_range = int(((latest >= range_start) & (latest <= range_end)).sum())
    return MaterializeResult(
        dataset=dataset,
        start=_iso(range_start),
        end=_iso(range_end),
        series=in_range,
        rows=in_range * len(names(dataset).online_views),
        requested_end=_iso(requested_end),
        high_water_mark_before=_iso(hwm),
        end_raised=hwm is not None and requested_end < hwm,
        seconds=round(time.perf_counter() - began, 3),
    )


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None
