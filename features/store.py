"""The one module that talks to Feast (STYLE 5): configuration, apply, materialize, reads.

Everything else in seqops calls these functions and gets the project's own types back
(:class:`ApplyResult`, :class:`OnlineWindows`, Arrow tables with documented columns), so a Feast
upgrade touches this file and ``feature_repo/``.

Configuration: ``feature_repo/feature_store.yaml`` (embedded) or
``feature_repo/feature_store.production.yaml`` (``SEQOPS_PROFILE=production``) is rendered in
memory with the values from seqops settings (``${SEQOPS_HOME}``, the production URLs), so no path
depends on the current directory and no password is written to disk. The declarations are
built on every :func:`apply` by ``seqops.feature_repo.declarations(declared_sources(settings))``,
so they reflect the settings passed in.

``import feast`` costs ~11 s: it happens inside the functions, never at import of this module.
"""

from __future__ import annotations

import io
import logging
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from seqops.core.settings import Settings
from seqops.feature_repo.names import names

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from seqops.core.datasets import WindowSpec

log = logging.getLogger(__name__)
_lock = threading.Lock()
_stores: dict[tuple[str, str], FeatureStore] = {}


class SourceSchemaError(ValueError):
    """A source table does not match its declared feature types, or has duplicate keys."""


# ---- configuration -------------------------------------------------------------------------------
def repo_dir(settings: Settings) -> Path:
    """The Feast repo shipped in the package (``feature_repo/``: store configurations, declarations)."""
    from seqops.core.resources import feature_repo_dir

    return feature_repo_dir()


def production_env(settings: Settings) -> dict[str, str]:
    """The variables ``feature_store.production.yaml`` needs, split out of the seqops settings.

    Export them to run plain ``feast -f feature_repo/feature_store.production.yaml`` commands.
    """
    missing = [
        name
        for name, value in {
            "SEQOPS_FEAST_REGISTRY_URL": settings.feast_registry_url,
            "SEQOPS_FEAST_OFFLINE_PG_URL": settings.feast_offline_pg_url,
            "SEQOPS_FEAST_ONLINE_REDIS": settings.feast_online_redis,
        }.items()
        if not value
    ]
    if missing:
        raise RuntimeError("the production feature store needs " + ", ".join(missing))
    assert settings.feast_registry_url and settings.feast_offline_pg_url and settings.feast_online_redis
    pg = urlsplit(settings.feast_offline_pg_url.get_secret_value())
    query = parse_qs(pg.query)
    registry = settings.feast_registry_url.get_secret_value()
    if registry.startswith("postgresql://"):
        registry = "postgresql+psycopg://" + registry.removeprefix("postgresql://")
    return {
        "SEQOPS_FEAST_REGISTRY_URL": registry,
        "SEQOPS_FEAST_PG_HOST": pg.hostname or "127.0.0.1",
        "SEQOPS_FEAST_PG_PORT": str(pg.port or 5432),
        "SEQOPS_FEAST_PG_DATABASE": pg.path.lstrip("/") or "postgres",
        "SEQOPS_FEAST_PG_USER": unquote(pg.username or ""),
        "SEQOPS_FEAST_PG_PASSWORD": unquote(pg.password or ""),
        "SEQOPS_FEAST_PG_SSLMODE": query.get("sslmode", ["prefer"])[0],
        "SEQOPS_FEAST_ONLINE_REDIS": settings.feast_online_redis,
    }


def config_text(settings: Settings) -> str:
    """The feature_store.yaml of the current profile with every ``${VAR}`` filled in."""
    production = settings.profile == "production"
    template = repo_dir(settings) / ("feature_store.production.yaml" if production else "feature_store.yaml")
    values = {"SEQOPS_HOME": str(settings.home.resolve())}
    if production:
        values |= production_env(settings)
    # substitute() raises on a variable we do not know: a typo fails here, not as a strange path.
    return string.Template(template.read_text()).substitute(values)


def repo_config(settings: Settings) -> RepoConfig:
    """The Feast ``RepoConfig`` of the current profile (rendered, not read from the cwd)."""
    import yaml
    from feast.repo_config import RepoConfig

    raw = yaml.safe_load(config_text(settings))
    config = RepoConfig(**raw)
    config.repo_path = repo_dir(settings)
    return config


def open_store(settings: Settings) -> FeatureStore:
    """A ``FeatureStore`` for the current profile, cached per rendered configuration."""
    from feast import FeatureStore

    text = config_text(settings)
    key = (str(repo_dir(settings)), text)
    with _lock:
        store = _stores.get(key)
        if store is None:
            if settings.profile != "production":
                settings.features_dir.mkdir(parents=True, exist_ok=True)
            store = FeatureStore(repo_path=str(repo_dir(settings)), config=repo_config(settings))
            _stores[key] = store
    return store


@contextmanager
def scratch_store(settings: Settings) -> Iterator[FeatureStore]:
    """A throw-away store: the profile's offline store and declarations, a private registry and
    online store (SQLite files in a temporary folder, deleted on exit).

    The parity replay materializes past moments into it; the real online store is never touched.
    """
    import shutil
    import tempfile

    import yaml
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from seqops.feature_repo import declarations

    folder = Path(tempfile.mkdtemp(prefix="seqops-scratch-"))
    try:
        raw = yaml.safe_load(config_text(settings))
        raw["registry"] = {
            "registry_type": "sql",
            "path": f"sqlite:///{folder / 'registry.db'}",
            "cache_ttl_seconds": 60,
        }
        raw["online_store"] = {"type": "sqlite", "path": str(folder / "online.db")}
        config = RepoConfig(**raw)
        config.repo_path = repo_dir(settings)
        store = FeatureStore(repo_path=str(repo_dir(settings)), config=config)
        _sync(store, declarations(declared_sources(settings)))
        store.refresh_registry()
        yield store
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- apply ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyResult:
    """What the registry holds after :func:`apply`."""

    project: str
    datasets: list[str]
    entities: list[str]
    data_sources: list[str]
    feature_views: list[str]
    feature_services: list[str]
    registry: str

    def to_dict(self) -> dict:
        return asdict(self)


def declared_sources(settings: Settings) -> dict[str, Any]:
    """Per feature dataset, its window geometry and where its source tables are."""
    from seqops.feature_repo import DatasetSources
    from seqops.features.tables import targets_path, windows_path

    production = settings.profile == "production"
    return {
        dataset: DatasetSources(
            spec=settings.window(dataset),
            windows_path=None if production else str(windows_path(settings, dataset)),
            targets_path=None if production else str(targets_path(settings, dataset)),
            postgres=production,
        )
        for dataset in settings.feature_datasets()
    }


def _sync(store: FeatureStore, objects: list[Any]) -> None:
    """``FeatureStore.apply`` of the declared objects, deleting registered ones no longer declared.

    What ``feast apply`` does for a repo folder, through Feast's public SDK.
    """
    from feast.feature_view import DUMMY_ENTITY_NAME

    declared = {(type(o).__name__, o.name) for o in objects}
    registered = [
        *store.list_feature_services(),
        *store.list_feature_views(),
        *store.list_data_sources(),
        *[e for e in store.list_entities() if e.name != DUMMY_ENTITY_NAME],
    ]
    stale = [o for o in registered if (type(o).__name__, o.name) not in declared]
    store.apply(objects, objects_to_delete=stale, partial=False)


def apply(settings: Settings) -> ApplyResult:
    """``feast apply`` for seqops: register the declarations, create online tables. Idempotent.

    Objects that were removed from the declarations are removed from the registry, as with
    ``feast apply``. Safe to re-run: an unchanged repo changes nothing.
    """
    from seqops.feature_repo import declarations

    store = open_store(settings)
    objects = declarations(declared_sources(settings))
    _sync(store, objects)
    log.info("feast apply: %d objects declared", len(objects))
    store.refresh_registry()
    return ApplyResult(
        project=store.project,
        datasets=settings.feature_datasets(),
        entities=sorted(e.name for e in store.list_entities()),
        data_sources=sorted(s.name for s in store.list_data_sources()),
        feature_views=sorted(v.name for v in store.list_feature_views()),
        feature_services=sorted(s.name for s in store.list_feature_services()),
        registry=_redact(store.config.registry.path),
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# ---- source checks -------------------------------------------------------------------------------
def declared_arrow_types(dataset: str, settings: Settings) -> dict[str, dict[str, pa.DataType]]:
    """``{source name: {column: arrow type}}`` implied by the registered views of ``dataset``."""
    from feast.types import from_feast_to_pyarrow_type

    store = open_store(settings)
    n = names(dataset)
    out: dict[str, dict[str, pa.DataType]] = {}
    for view in (n.window, n.calendar, n.scale, n.targets):
        fv = store.get_feature_view(view)
        cols = out.setdefault(fv.batch_source.name, {})
        for field in fv.features:
            cols[field.name] = from_feast_to_pyarrow_type(field.dtype)
    return out


def check_sources(dataset: str, settings: Settings) -> dict[str, int]:
    """Refuse a source table that would break training-serving parity.

    * a column whose physical type differs from its declared type (e.g. float64 values declared
      Float32: historical retrieval would return the float64 values, the online store the
      float32-rounded ones);
    * two rows for one series and event timestamp (training and serving may pick different rows).

    Returns:
        Rows per source table.

    Raises:
        SourceSchemaError: on the first problem found, naming the table and column.
    """
    import pyarrow as pa

    store = open_store(settings)
    declared = declared_arrow_types(dataset, settings)
    rows: dict[str, int] = {}
    for source_name, columns in declared.items():
        source = store.get_data_source(source_name)
        actual, keys = _source_schema_and_keys(settings, source)
        for column, want in columns.items():
            have = actual.get(column)
            if have is None:
                raise SourceSchemaError(f"{source_name}: column {column!r} is missing")
            if not _same_type(have, want):
                raise SourceSchemaError(
                    f"{source_name}: column {column!r} is {have} but declared {want}; a declared type "
                    "must match the stored one exactly, or training and serving see different numbers"
                )
        ts = actual.get(source.timestamp_field)
        if settings.profile != "production" and ts != pa.timestamp("us", tz="UTC"):
            raise SourceSchemaError(
                f"{source_name}: {source.timestamp_field} is {ts}; DuckDB needs timestamp[us, UTC]"
            )
        frame = keys
        dup = frame.duplicated(["series_id", source.timestamp_field], keep=False)
        if dup.any():
            first = frame[dup].iloc[0]
            raise SourceSchemaError(
                f"{source_name}: {int(dup.sum())} rows share a (series_id, {source.timestamp_field}), "
                f"e.g. {first['series_id']!r} at {first[source.timestamp_field]}: rows must be unique"
            )
        rows[source_name] = len(frame)
    return rows


def _same_type(have: pa.DataType, want: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_list(have) and pa.types.is_list(want):
        return have.value_type == want.value_type
    return have == want


def _source_schema_and_keys(settings: Settings, source: Any) -> tuple[dict[str, pa.DataType], pd.DataFrame]:
    import pyarrow.parquet as pq

    ts = source.timestamp_field
    if settings.profile == "production":
        import pandas as pd
        import psycopg

        from seqops.features.tables import pg_conninfo

        table = source.get_table_query_string()
        with psycopg.connect(pg_conninfo(settings)) as conn:
            types = dict(
                conn.execute(
                    "SELECT column_name, data_type || CASE WHEN data_type = 'ARRAY' THEN ':' || udt_name "
                    "ELSE '' END FROM information_schema.columns WHERE table_name = %s",
                    (table,),
                ).fetchall()
            )
            keys = pd.DataFrame(
                conn.execute(f"SELECT series_id, {ts} FROM {table}").fetchall(), columns=["series_id", ts]
            )
        return {c: _pg_to_arrow(t) for c, t in types.items()}, keys
    path = source.path
    schema = pq.read_schema(path)
    keys = pq.read_table(path, columns=["series_id", ts]).to_pandas()
    return {f.name: f.type for f in schema}, keys


def _pg_to_arrow(pg_type: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "real": pa.float32(),
        "double precision": pa.float64(),
        "bigint": pa.int64(),
        "integer": pa.int32(),
        "text": pa.string(),
        "timestamp with time zone": pa.timestamp("us", tz="UTC"),
        "ARRAY:_float4": pa.list_(pa.float32()),
        "ARRAY:_float8": pa.list_(pa.float64()),
    }.get(pg_type, pa.null())


# ---- materialization -----------------------------------------------------------------------------
def materialized_until(
    dataset: str, settings: Settings, *, store: FeatureStore | None = None
) -> datetime | None:
    """The latest end of any materialization interval of the dataset's online views (UTC)."""
    store = store or open_store(settings)
    store.refresh_registry()
    ends = []
    for view in names(dataset).online_views:
        fv = store.get_feature_view(view)
        if fv.most_recent_end_time is not None:
            end = fv.most_recent_end_time
            ends.append(end if end.tzinfo else end.replace(tzinfo=UTC))
    return max(ends) if ends else None


def materialize_range(
    dataset: str,
    start: datetime,
    end: datetime,
    settings: Settings,
    *,
    store: FeatureStore | None = None,
) -> None:
    """Feast ``materialize`` of the dataset's online views over ``[start, end]`` (inclusive).

    With ``pull_latest_features`` only the newest row of each series in the range is written.
    Callers wanting the never-older-over-newer guarantee use ``seqops.features.materialize``.
    """
    store = store or open_store(settings)
    chatter = io.StringIO()  # Feast prints a colored progress line per view
    with redirect_stdout(chatter):
        store.materialize(start_date=start, end_date=end, feature_views=list(names(dataset).online_views))
    log.debug("%s", chatter.getvalue())


# ---- reads ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OnlineWindows:
    """Model inputs read from the online store for a list of series, as of one moment.

    ``status`` per series: ``present``; ``missing`` (nothing online); ``expired`` (older than the
    view's TTL at ``as_of``: Feast returns such values as present, this read does not); ``future``
    (the stored window ends after ``as_of``: the online store cannot answer for an earlier moment);
    ``torn`` (the window, calendar and scale views hold rows of different window ends, e.g. a
    materialization stopped half way). Only ``present`` rows carry values; the others are NaN.
    A status PRESENT without a value (the Redis store's answer for an unknown key) is ``missing``.
    """

    dataset: str
    series_ids: tuple[str, ...]
    as_of: datetime
    x: np.ndarray  # [n, L] float32
    calendar: np.ndarray  # [n, H, C] float32
    scale: np.ndarray  # [n, 2] float32, (loc, scale)
    window_end: np.ndarray  # [n] datetime64[ns] UTC, NaT where not present
    status: tuple[str, ...]

    @property
    def present(self) -> np.ndarray:
        import numpy as np

        return np.array([s == "present" for s in self.status], dtype=bool)

    def select(self, series_ids: list[str]) -> OnlineWindows:
        """The rows of ``series_ids`` (each read here), in that order: no second online read."""
        import dataclasses

        import numpy as np

        position = {sid: i for i, sid in enumerate(self.series_ids)}
        idx = np.array([position[sid] for sid in series_ids], dtype=np.int64)
        return dataclasses.replace(
            self,
            series_ids=tuple(series_ids),
            x=self.x[idx],
            calendar=self.calendar[idx],
            scale=self.scale[idx],
            window_end=self.window_end[idx],
            status=tuple(self.status[i] for i in idx),
        )


class OnlineReader:
    """The serving read of one dataset, with everything but the lookup resolved once.

    A prediction service holds one (``online_reader(dataset, settings)``) and calls :meth:`read` per request:
    resolving settings, the window spec and the feature service costs several milliseconds, the
    lookup itself a fraction of one. The feature service is re-resolved after ``refresh_s``, as
    Feast's registry cache would be.
    """

    def __init__(self, dataset: str, store: FeatureStore, spec: WindowSpec, refresh_s: float = 60.0) -> None:
        self.dataset = dataset
        self.store = store
        self.spec = spec
        self.names = names(dataset)
        self.refresh_s = refresh_s
        self._service: Any = None
        self._resolved_at = 0.0

    def _feature_service(self) -> Any:
        now = time.monotonic()
        if self._service is None or now - self._resolved_at > self.refresh_s:
            self._service = self.store.get_feature_service(self.names.serving, allow_cache=True)
            self._resolved_at = now
        return self._service

    def read(self, series_ids: list[str] | tuple[str, ...], as_of: datetime | None = None) -> OnlineWindows:
        """See :func:`read_online`."""
        import numpy as np

        spec, n = self.spec, self.names
        as_of = as_of or datetime.now(UTC)
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        ids = [str(s) for s in series_ids]
        response = self.store.get_online_features(
            features=self._feature_service(), entity_rows={"series_id": ids}, full_feature_names=True
        )
        proto = response.proto
        column = {name: i for i, name in enumerate(proto.metadata.feature_names.val)}
        results = proto.results
        count = len(ids)
        x = np.full((count, spec.length), np.nan, np.float32)
        cal = np.full((count, spec.horizon * spec.n_calendar), np.nan, np.float32)
        scale = np.full((count, 2), np.nan, np.float32)
        ends = np.full(count, np.datetime64("NaT"), dtype="datetime64[ns]")
        status: list[str] = []
        r_x = results[column[f"{n.window}__x"]]
        r_end = results[column[f"{n.window}__window_end_unix"]]
        r_cal = results[column[f"{n.calendar}__calendar"]]
        r_loc = results[column[f"{n.scale}__scale_loc"]]
        r_sc = results[column[f"{n.scale}__scale_scale"]]
        present_code = 1  # FieldStatus.PRESENT
        newest = int(as_of.timestamp())
        oldest = int((as_of - spec.ttl).timestamp())
        for i in range(count):
            codes = (r_x.statuses[i], r_cal.statuses[i], r_loc.statuses[i], r_sc.statuses[i])
            values = (r_x.values[i], r_cal.values[i], r_loc.values[i], r_sc.values[i], r_end.values[i])
            # the Redis store answers an unknown key with status PRESENT and an empty value
            if any(c != present_code for c in codes) or any(v.WhichOneof("val") is None for v in values):
                status.append("missing")
                continue
            stamps = {
                r_x.event_timestamps[i].seconds,
                r_cal.event_timestamps[i].seconds,
                r_loc.event_timestamps[i].seconds,
                r_sc.event_timestamps[i].seconds,
                r_end.values[i].int64_val,
            }
            if len(stamps) != 1:
                status.append("torn")
                continue
            (stamp,) = stamps
            if stamp > newest:
                status.append("future")
                continue
            if stamp < oldest:
                status.append("expired")
                continue
            status.append("present")
            x[i] = r_x.values[i].float_list_val.val
            cal[i] = r_cal.values[i].float_list_val.val
            scale[i, 0] = r_loc.values[i].float_val
            scale[i, 1] = r_sc.values[i].float_val
            ends[i] = np.datetime64(stamp, "s")
        return OnlineWindows(
            dataset=self.dataset,
            series_ids=tuple(ids),
            as_of=as_of,
            x=x,
            calendar=cal.reshape(count, spec.horizon, spec.n_calendar),
            scale=scale,
            window_end=ends,
            status=tuple(status),
        )


_readers: dict[tuple, OnlineReader] = {}


def online_reader(dataset: str, settings: Settings) -> OnlineReader:
    """The cached :class:`OnlineReader` of ``dataset`` for these settings.

    Keyed on what the reader depends on: the rendered store configuration (secrets included) and
    the dataset's window geometry.
    """
    key = (dataset, config_text(settings), settings.window(dataset).model_dump_json())
    with _lock:
        reader = _readers.get(key)
    if reader is None:
        reader = OnlineReader(dataset, open_store(settings), settings.window(dataset))
        with _lock:
            _readers[key] = reader
    return reader


def read_online(
    dataset: str,
    series_ids: list[str] | tuple[str, ...],
    *,
    as_of: datetime | None = None,
    settings: Settings,
    store: FeatureStore | None = None,
) -> OnlineWindows:
    """Read the serving feature service for ``series_ids`` and enforce the TTL at ``as_of``.

    Args:
        dataset: the dataset whose views to read.
        series_ids: the series to read.
        as_of: the serving moment (tz-aware; default now). A value older than ``as_of - ttl`` is
            reported ``expired``, one newer than ``as_of`` is reported ``future``.
        settings: platform settings.
        store: read this store instead of the profile's (the parity replay's scratch store).

    Returns:
        The windows with a per-series status; see :class:`OnlineWindows`.
    """
    if store is not None:
        reader = OnlineReader(dataset, store, settings.window(dataset))
    else:
        reader = online_reader(dataset, settings)
    return reader.read(series_ids, as_of)


def service_features(dataset: str, service: str, settings: Settings) -> list[str]:
    """``view:feature`` references a registered feature service names, in order."""
    store = open_store(settings)
    fs = store.get_feature_service(getattr(names(dataset), service))
    return [f"{p.name}:{f.name}" for p in fs.feature_view_projections for f in p.features]


def historical_chunks(
    dataset: str,
    entity_df: pd.DataFrame,
    *,
    service: str = "training",
    chunk_rows: int = 50_000,
    settings: Settings,
    store: FeatureStore | None = None,
) -> Iterator[tuple[pa.Table, int, int]]:
    """Point-in-time retrieval of a feature service for (series, timestamp) rows, chunk by chunk.

    The rows are sorted by series and time and cut into chunks at series boundaries; each chunk is
    one Feast ``get_historical_features`` call. The point-in-time rule is Feast's, unchanged (each
    entity row gets the newest row at or before its timestamp within the view's TTL); chunking only
    bounds memory (Feast's join carries every candidate row's arrays until it deduplicates, and a
    caller can convert one chunk before the next is fetched).

    Args:
        dataset: whose feature service to read.
        entity_df: ``series_id`` and ``event_timestamp`` (tz-aware) columns.
        service: ``training`` (inputs and targets) or ``serving`` (inputs only).
        chunk_rows: entity rows per Feast call (whole series; a chunk may exceed it by one series).
        settings: platform settings.
        store: read this store instead of the profile's.

    Yields:
        ``(table, rows_done, rows_total)``; the table has ``series_id``, ``event_timestamp`` and
        the service's features (plain names: ``x``, ``window_end_unix``, ``calendar``,
        ``scale_loc``, ``scale_scale`` and, for training, ``y``) in no particular order (a list
        column is costly to reorder in Arrow: sort after converting); a feature is null where no row
        qualified.
    """
    import numpy as np

    store = store or open_store(settings)
    fs = store.get_feature_service(getattr(names(dataset), service), allow_cache=True)
    frame = entity_df[["series_id", "event_timestamp"]].copy()
    frame["series_id"] = frame["series_id"].astype(str)
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    frame = frame.sort_values(["series_id", "event_timestamp"], kind="stable").reset_index(drop=True)
    total = len(frame)
    sid = frame["series_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if total else np.zeros(0, np.int64)
    bounds, begin = [], 0
    for cut in [*starts[1:], total]:
        if cut - begin >= chunk_rows:
            bounds.append((begin, cut))
            begin = cut
    if begin < total:
        bounds.append((begin, total))
    for lo, hi in bounds:
        yield store.get_historical_features(entity_df=frame.iloc[lo:hi], features=fs).to_arrow(), hi, total


def historical(
    dataset: str,
    entity_df: pd.DataFrame,
    *,
    service: str = "training",
    chunk_rows: int = 50_000,
    settings: Settings,
    progress: Any = None,
    store: FeatureStore | None = None,
) -> pa.Table:
    """All chunks of :func:`historical_chunks` as one table, sorted by series and time.

    ``progress``, if given, is called as ``progress(rows_done, rows_total)`` after each chunk.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[pa.Table] = []
    for table, done, total in historical_chunks(
        dataset, entity_df, service=service, chunk_rows=chunk_rows, settings=settings, store=store
    ):
        parts.append(table)
        if progress is not None:
            progress(done, total)
    if not parts:
        raise ValueError("historical retrieval needs at least one entity row")
    table = pa.concat_tables([p.select(parts[0].column_names) for p in parts])
    return table.take(pc.sort_indices(table, [("series_id", "ascending"), ("event_timestamp", "ascending")]))


def utc(ts: Any) -> datetime:
    """A tz-aware UTC ``datetime`` from a datetime, pandas Timestamp or numpy datetime64 (naive = UTC)."""
    import pandas as pd

    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.to_pydatetime()


__all__ = [
    "ApplyResult",
    "OnlineWindows",
    "SourceSchemaError",
    "apply",
    "check_sources",
    "config_text",
    "historical",
    "historical_chunks",
    "online_reader",
    "OnlineReader",
    "materialize_range",
    "materialized_until",
    "open_store",
    "production_env",
    "read_online",
    "repo_config",
    "service_features",
]
