"""Window tables: every input window and target vector of a dataset, built once, before Feast.

Feast cannot build a look-back window itself (a batch transform sees only the rows being
materialized and is skipped in historical retrieval; on-demand views cannot look back in time), so
the pipeline cuts the windows from the curated store and Feast serves them as stored values.

Two Parquet files per dataset under ``SEQOPS_HOME/features/<dataset>/``:

``windows.parquet`` (one row per series and window end, the source of the window, calendar and
scale views)
    ``series_id`` string, ``window_end`` timestamp[us, UTC] (the event timestamp = the forecast
    origin = the time of the last value), ``window_end_unix`` int64 seconds (the same instant as a
    feature, so a reader can see which row it got), ``x`` list<float32> of L values oldest first,
    ``calendar`` list<float32> of H x C calendar features of the H target steps (row-major
    ``[h, c]``), ``scale_loc`` / ``scale_scale`` float32 (the per-window pair of
    ``seqops.core.windows.window_scale``).
``targets.parquet`` (one row per origin whose H next values are all known; the label view)
    ``series_id``, ``origin`` timestamp[us, UTC], ``y`` list<float32> of H values.

Gap rule: the curated store has a missing row where an hour is missing. A window is emitted only
when all L values up to and including its end lie on the regular grid with no hour missing; a
target row only when all H values after the origin are present. A missing hour therefore removes
the L windows that span it and the H origins whose targets span it; nothing is interpolated.

Values are cast to float32 once, here; Feast declares them ``Array(Float32)`` and both stores
return these exact bits (see ``tests/test_features.py``). Timestamps are written as
``timestamp[us, UTC]``: DuckDB cannot read pandas' default nanosecond tz-aware Parquet timestamps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from seqops.core.datasets import CALENDAR_FEATURES, WindowSpec
from seqops.core.settings import Settings
from seqops.feature_repo.names import names

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ROW_GROUP_ROWS = 8192


def windows_path(settings: Settings, dataset: str) -> Path:
    """Absolute path of the window table (DuckDB resolves relative paths from the cwd)."""
    return (settings.features_dir / dataset / "windows.parquet").resolve()


def targets_path(settings: Settings, dataset: str) -> Path:
    return (settings.features_dir / dataset / "targets.parquet").resolve()


def windows_schema(spec: WindowSpec) -> pa.Schema:
    import pyarrow as pa

    meta = {b"seqops.window_spec": spec.model_dump_json().encode()}
    return pa.schema(
        [
            pa.field("series_id", pa.string(), nullable=False),
            pa.field("window_end", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("window_end_unix", pa.int64(), nullable=False),
            pa.field("x", pa.list_(pa.float32()), nullable=False),
            pa.field("calendar", pa.list_(pa.float32()), nullable=False),
            pa.field("scale_loc", pa.float32(), nullable=False),
            pa.field("scale_scale", pa.float32(), nullable=False),
        ],
        metadata=meta,
    )


def targets_schema(spec: WindowSpec) -> pa.Schema:
    import pyarrow as pa

    meta = {b"seqops.window_spec": spec.model_dump_json().encode()}
    return pa.schema(
        [
            pa.field("series_id", pa.string(), nullable=False),
            pa.field("origin", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("y", pa.list_(pa.float32()), nullable=False),
        ],
        metadata=meta,
    )


@dataclass(frozen=True)
class WindowBuild:
    """What :func:`build_windows` wrote: small, for XCom."""

    dataset: str
    windows_path: str
    targets_path: str
    series: int
    windows: int
    targets: int
    first_window_end: str | None
    last_window_end: str | None
    spec: dict

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WindowBuild:
        return cls(**data)


def _fixed_list(values, width: int) -> pa.Array:
    """[N, width] float32 -> list<float32> without a Python loop."""
    import numpy as np
    import pyarrow as pa

    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    offsets = np.arange(0, flat.size + 1, width, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()))


def cut_series(frame: pd.DataFrame, spec: WindowSpec) -> tuple[pa.Table, pa.Table]:
    """Windows and targets of one or more series in canonical long format.

    Args:
        frame: ``series_id``, ``timestamp`` (tz-aware), ``value``; one row per series and timestamp.
        spec: the window geometry.

    Returns:
        (windows, targets) Arrow tables with :func:`windows_schema` / :func:`targets_schema`.
    """
    import numpy as np
    import pyarrow as pa

    from seqops.core.windows import windows_from_frame

    ws = windows_from_frame(
        frame,
        spec.length,
        spec.horizon,
        scaler=spec.scaler,
        calendar=True,
        calendar_tz=spec.calendar_tz,
        freq=spec.step,
        require_target=False,  # the latest windows have no targets yet: serving needs them
    )
    assert ws.n_calendar == len(CALENDAR_FEATURES), "calendar features changed in seqops.core.windows"
    sid = np.asarray(ws.series_ids, dtype=object)[ws.series_idx]
    end_us = ws.origin.astype("datetime64[us]")
    end_ts = pa.array(end_us.astype(np.int64), type=pa.timestamp("us", tz="UTC"))
    windows = pa.Table.from_arrays(
        [
            pa.array(sid, type=pa.string()),
            end_ts,
            pa.array(end_us.astype("datetime64[s]").astype(np.int64), type=pa.int64()),
            _fixed_list(ws.x, spec.length),
            _fixed_list(ws.calendar.reshape(len(ws), -1), spec.horizon * spec.n_calendar),
            pa.array(ws.scale[:, 0], type=pa.float32()),
            pa.array(ws.scale[:, 1], type=pa.float32()),
        ],
        schema=windows_schema(spec),
    )
    known = np.isfinite(ws.y).all(axis=1)
    targets = pa.Table.from_arrays(
        [
            pa.array(sid[known], type=pa.string()),
            pa.array(end_us[known].astype(np.int64), type=pa.timestamp("us", tz="UTC")),
            _fixed_list(ws.y[known], spec.horizon),
        ],
        schema=targets_schema(spec),
    )
    return windows, targets


SERIES_PER_READ = 64  # series read from the curated table per scan: bounds memory and scans


def _series_frames(store, dataset: str, series_ids: list[str]):
    """(series id, its canonical rows) in id order, reading the table once per group of series."""
    for i in range(0, len(series_ids), SERIES_PER_READ):
        group = series_ids[i : i + SERIES_PER_READ]
        block = store.read(dataset, series_ids=group, columns=["series_id", "timestamp", "value"])
        for sid, frame in block.groupby("series_id", sort=True):
            yield sid, frame.reset_index(drop=True)


def build_windows(dataset: str, *, settings: Settings, spec: WindowSpec | None = None) -> WindowBuild:
    """Rebuild the window and target tables of ``dataset`` from the curated store.

    Series by series (read 64 at a time), so memory stays bounded by a group of series. Both
    files are replaced atomically; a rebuild of unchanged curated data writes the same rows. In
    the production profile the tables are then loaded into the PostgreSQL offline store
    (:func:`load_into_postgres`).

    Args:
        dataset: curated dataset name.
        settings: platform settings.
        spec: window geometry (default: ``settings.window(dataset)``).

    Returns:
        Paths and counts of what was written.
    """
    import pyarrow.parquet as pq

    from seqops.core.store import CuratedStore

    spec = spec or settings.window(dataset)
    store = CuratedStore(settings)
    series_ids = sorted(store.series(dataset))
    wpath, tpath = windows_path(settings, dataset), targets_path(settings, dataset)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    wtmp, ttmp = wpath.with_suffix(".parquet.part"), tpath.with_suffix(".parquet.part")
    n_windows = n_targets = n_series = 0
    first: datetime | None = None
    last: datetime | None = None
    wschema, tschema = windows_schema(spec), targets_schema(spec)
    with (
        pq.ParquetWriter(wtmp, wschema, compression="zstd") as wout,
        pq.ParquetWriter(ttmp, tschema, compression="zstd") as tout,
    ):
        for _sid, frame in _series_frames(store, dataset, series_ids):
            windows, targets = cut_series(frame, spec)
            if windows.num_rows:
                wout.write_table(windows, row_group_size=ROW_GROUP_ROWS)
                n_series += 1
                ends = windows.column("window_end")
                lo, hi = ends[0].as_py(), ends[-1].as_py()
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
            if targets.num_rows:
                tout.write_table(targets, row_group_size=ROW_GROUP_ROWS)
            n_windows += windows.num_rows
            n_targets += targets.num_rows
    wtmp.replace(wpath)
    ttmp.replace(tpath)
    build = WindowBuild(
        dataset=dataset,
        windows_path=str(wpath),
        targets_path=str(tpath),
        series=n_series,
        windows=n_windows,
        targets=n_targets,
        first_window_end=first.astimezone(UTC).isoformat() if first else None,
        last_window_end=last.astimezone(UTC).isoformat() if last else None,
        spec=json.loads(spec.model_dump_json()),
    )
    if settings.profile == "production":
        load_into_postgres(build, settings)
    return build


def read_index(settings: Settings, dataset: str) -> pd.DataFrame:
    """``series_id`` and ``window_end`` of every window (no arrays read): which origins exist."""
    import pyarrow.parquet as pq

    path = windows_path(settings, dataset)
    if not path.exists():
        raise FileNotFoundError(f"no window table for {dataset!r} at {path}: build the windows first")
    return pq.read_table(path, columns=["series_id", "window_end"]).to_pandas()


def latest_window_ends(settings: Settings, dataset: str) -> pd.Series:
    """The latest window end of each series (UTC), indexed by ``series_id``."""
    index = read_index(settings, dataset)
    return index.groupby("series_id", sort=True)["window_end"].max()


# ---- production profile: the offline store is PostgreSQL ------------------------------------------
def pg_conninfo(settings: Settings) -> str:
    """libpq URL of the PostgreSQL offline store (``SEQOPS_FEAST_OFFLINE_PG_URL``)."""
    if settings.feast_offline_pg_url is None:
        raise RuntimeError("SEQOPS_FEAST_OFFLINE_PG_URL is not set")
    url = settings.feast_offline_pg_url.get_secret_value()
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def load_into_postgres(build: WindowBuild, settings: Settings) -> None:
    """Replace the dataset's window and target tables in PostgreSQL with the Parquet files' rows.

    One transaction per table: readers see the old rows or the new, never a mix. Float32 values
    travel as their shortest decimal form and PostgreSQL ``real`` parses them back to the same bits.
    """
    import psycopg
    import pyarrow.parquet as pq

    n = names(build.dataset)
    ddl = {
        n.pg_windows_table: (
            "series_id text NOT NULL, window_end timestamptz NOT NULL, window_end_unix bigint NOT NULL, "
            "x real[] NOT NULL, calendar real[] NOT NULL, "
            "scale_loc real NOT NULL, scale_scale real NOT NULL, "
            "PRIMARY KEY (series_id, window_end)",
            build.windows_path,
        ),
        n.pg_targets_table: (
            "series_id text NOT NULL, origin timestamptz NOT NULL, y real[] NOT NULL, "
            "PRIMARY KEY (series_id, origin)",
            build.targets_path,
        ),
    }
    with psycopg.connect(pg_conninfo(settings)) as conn:
        for table, (columns, path) in ddl.items():
            with conn.transaction():
                conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
                conn.execute(f"TRUNCATE {table}")
                parquet = pq.ParquetFile(path)
                cols = parquet.schema_arrow.names
                with conn.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for batch in parquet.iter_batches(batch_size=4096):
                        for row in zip(*(batch.column(c).to_pylist() for c in cols), strict=True):
                            copy.write_row(row)
