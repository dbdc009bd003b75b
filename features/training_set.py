"""Training sets through Feast historical retrieval: point-in-time correct ``WindowSet``s.

The trainer gets exactly what the serving path would have served at each origin (same feature
views, same rows, same float32 bits), plus the targets from the label view. Retrieval is
``seqops.features.store.historical`` (Feast's point-in-time join on DuckDB or PostgreSQL), cut into
entity chunks at series boundaries to bound memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seqops.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from seqops.core.windows import WindowSet


@dataclass(frozen=True)
class TrainingSetStats:
    """How a training set was built (for logs and the benchmark)."""

    requested: int  # (series, origin) pairs asked for
    without_window: int  # no window ends exactly at the origin (a gap, or outside the data)
    without_target: int  # the H values after the origin are not all known (dropped if required)
    rows: int  # rows in the WindowSet
    chunks: int
    seconds: float


def _entity_rows(
    settings: Settings, dataset: str, origins: Sequence | pd.DataFrame | None
) -> tuple[pd.DataFrame, int]:
    """The (series_id, origin) pairs to retrieve, restricted to origins that have a window."""
    import pandas as pd

    from seqops.features.tables import read_index

    index = read_index(settings, dataset).rename(columns={"window_end": "origin"})
    if origins is None:
        wanted = index
        requested = len(index)
    elif isinstance(origins, pd.DataFrame):
        wanted = origins[["series_id", "origin"]].copy()
        wanted["series_id"] = wanted["series_id"].astype(str)
        wanted["origin"] = pd.to_datetime(wanted["origin"], utc=True).astype("datetime64[us, UTC]")
        requested = len(wanted)
        wanted = wanted.merge(index, on=["series_id", "origin"], how="inner")
    else:
        stamps = pd.to_datetime(pd.Series(list(origins)), utc=True).astype("datetime64[us, UTC]").unique()
        ids = index["series_id"].unique()
        requested = len(stamps) * len(ids)
        wanted = index[index["origin"].isin(stamps)]
    wanted = wanted.drop_duplicates(["series_id", "origin"])
    return wanted.rename(columns={"origin": "event_timestamp"}).reset_index(drop=True), requested


def build_training_set(
    dataset: str,
    origins: Sequence | pd.DataFrame | None = None,
    *,
    series_ids: Sequence[str] | None = None,
    require_target: bool = True,
    calendar: bool = True,
    chunk_rows: int = 50_000,
    settings: Settings,
    progress: Callable[[int, int], Any] | None = None,
    stats: list | None = None,
) -> WindowSet:
    """A ``seqops.core.windows.WindowSet`` for (series, forecast origin) pairs, by historical retrieval.

    Args:
        dataset: the dataset (its windows built and its views applied).
        origins: None = every origin that has a window (and, with ``require_target``, targets);
            a sequence of timestamps = these origins in every series; a frame with ``series_id``
            and ``origin`` = these pairs. Pairs without a window ending exactly at the origin are
            skipped (counted in ``stats``).
        series_ids: the series index of ``series_idx`` (a trained model's); unknown series get -1.
            None = the sorted ids in the result.
        require_target: drop origins whose H targets are not all known (else their ``y`` is NaN).
        calendar: include the calendar features (else ``calendar`` has C = 0).
        chunk_rows: entity rows per Feast call.
        settings: platform settings.
        progress: optional ``progress(done_rows, total_rows)`` callback.
        stats: if given, a :class:`TrainingSetStats` is appended to it.

    Returns:
        WindowSet with x [N, L] float32, y [N, H] float32, series_idx [N] int64, origin [N]
        datetime64[ns] (UTC, naive), calendar [N, H, C] float32, scale [N, 2] float32; ordered by
        series, then origin.
    """
    import numpy as np

    from seqops.core.windows import WindowSet
    from seqops.features import store

    began = time.perf_counter()
    spec = settings.window(dataset)
    store.check_sources(dataset, settings)
    entity, requested = _entity_rows(settings, dataset, origins)
    n_cal = spec.n_calendar if calendar else 0
    parts: list[dict[str, np.ndarray]] = []
    counts = {"has_window": 0, "window_no_target": 0, "chunks": 0}
    if len(entity):
        for table, done, total in store.historical_chunks(
            dataset, entity, service="training", chunk_rows=chunk_rows, settings=settings
        ):
            parts.append(_chunk_arrays(table, spec, calendar, require_target, counts, dataset))
            counts["chunks"] += 1
            if progress is not None:
                progress(done, total)
    if parts:
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        parts.clear()
    else:
        cols = {
            "x": np.zeros((0, spec.length), np.float32),
            "y": np.zeros((0, spec.horizon), np.float32),
            "calendar": np.zeros((0, spec.horizon, n_cal), np.float32),
            "scale": np.zeros((0, 2), np.float32),
            "series_id": np.zeros(0, object),
            "origin": np.zeros(0, "datetime64[ns]"),
        }
    n = len(cols["x"])
    sid = cols["series_id"]
    ids = tuple(series_ids) if series_ids is not None else tuple(sorted(set(sid.tolist())))
    position = {s: i for i, s in enumerate(ids)}
    series_idx = np.fromiter((position.get(s, -1) for s in sid), dtype=np.int64, count=n)
    if stats is not None:
        stats.append(
            TrainingSetStats(
                requested=requested,
                without_window=requested - counts["has_window"],
                without_target=counts["window_no_target"],
                rows=n,
                chunks=counts["chunks"],
                seconds=round(time.perf_counter() - began, 3),
            )
        )
    return WindowSet(
        x=cols["x"],
        y=cols["y"],
        series_idx=series_idx,
        origin=cols["origin"],
        calendar=cols["calendar"],
        scale=cols["scale"],
        series_ids=ids,
        step=np.timedelta64(int(spec.step.total_seconds() * 1e9), "ns"),
        calendar_tz=spec.calendar_tz,
    )


def _chunk_arrays(table, spec, calendar: bool, require_target: bool, counts: dict, dataset: str) -> dict:
    """One retrieved chunk as numpy arrays, sorted, keeping only rows a training sample may use.

    Conversion happens in numpy: reordering or filtering Arrow list columns copies them slowly.
    """
    import numpy as np
    import pyarrow as pa

    n_all = table.num_rows
    origin_ns = table.column("event_timestamp").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    ends = table.column("window_end_unix").fill_null(-1).to_numpy()
    # the point-in-time join may return an older window within the TTL: a sample needs its own
    has_window = ends == origin_ns // 1_000_000_000
    has_target = np.asarray(table.column("y").is_valid(), dtype=bool)
    counts["has_window"] += int(has_window.sum())
    counts["window_no_target"] += int((has_window & ~has_target).sum())
    keep = has_window & has_target if require_target else has_window
    sid_all = np.asarray(table.column("series_id").to_pylist(), dtype=object)
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((origin_ns[rows], sid_all[rows]))]  # by series, then origin

    def matrix(name: str, width: int) -> np.ndarray:
        col = table.column(name).combine_chunks()
        valid = np.asarray(col.is_valid(), dtype=bool)
        values = col.flatten().to_numpy(zero_copy_only=False)  # values of the valid rows only
        if values.size != int(valid.sum()) * width:
            raise ValueError(
                f"{dataset}: feature {name!r} does not have {width} values per row: the window tables "
                "were built with another window spec; rebuild the windows and re-apply"
            )
        if valid.all():
            return values.reshape(n_all, width)[rows]
        out = np.full((n_all, width), np.nan, np.float32)  # only y can be null here: NaN rows
        out[valid] = values.reshape(-1, width)
        return out[rows]

    n = len(rows)
    cal = (
        matrix("calendar", spec.horizon * spec.n_calendar).reshape(n, spec.horizon, spec.n_calendar)
        if calendar
        else np.zeros((n, spec.horizon, 0), np.float32)
    )
    scale = np.stack(
        [
            table.column("scale_loc").fill_null(np.nan).to_numpy().astype(np.float32),
            table.column("scale_scale").fill_null(np.nan).to_numpy().astype(np.float32),
        ],
        axis=1,
    )[rows]
    return {
        "x": matrix("x", spec.length),
        "y": matrix("y", spec.horizon),
        "calendar": cal,
        "scale": scale,
        "series_id": sid_all[rows],
        "origin": origin_ns[rows].astype("datetime64[ns]"),
    }
