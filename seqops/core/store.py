"""The data stores under ``SEQOPS_HOME/data``: landing zone, raw copies, curated store, quarantine.

Nothing here validates: it moves bytes and rows, and never deletes a batch. The invariant the
ingestion stages keep with these stores: every landed batch has a raw copy, and ends up either
entirely in the curated store (one Delta Lake commit) or entirely in the quarantine, never both.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from seqops.core.canonical import LINEAGE_COLUMNS, PARTITION_COLUMN, RESERVED_COLUMNS
from seqops.core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import pandas as pd
    import pyarrow as pa
    from deltalake import DeltaTable

BATCH_SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: the curated table's partition column: the UTC month of ``timestamp`` ("2020-01")
PARTITION = PARTITION_COLUMN
#: commit metadata key naming the batch a curated commit published
BATCH_KEY = "seqops.batch_id"
_DATASET_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def check_dataset_name(name: str) -> str:
    """``name`` if it is a safe dataset name (lowercase letters, digits, ``_``); else ValueError."""
    if not _DATASET_NAME.fullmatch(name or ""):
        raise ValueError(
            f"dataset name {name!r} is not valid: use lowercase letters, digits and '_' "
            "(starting with a letter, at most 64 characters), as declared in datasets.toml"
        )
    return name


def batch_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in BATCH_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _temp_beside(path: Path, text: str) -> Path:
    """``text`` written and synced to a uniquely named temporary file in ``path``'s folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(tmp)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new, never half."""
    tmp = _temp_beside(path, text)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _create_once(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` unless it exists (atomic, safe against a concurrent creator)."""
    tmp = _temp_beside(path, text)
    try:
        os.link(tmp, path)  # fails if another process created it first
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def arriving(path: Path, meta: dict | None = None) -> Iterator[Path]:
    """Write a batch file into a landing zone so that no claimer sees it half-written.

    Yields a hidden temporary path beside ``path`` (``.<name>.<random>.part``, which no claim picks
    up; its own for each writer) to write to; ``<name>.meta.json`` is written first, then the file
    moves into place in one step.
    """
    if meta is not None:
        write_atomic(path.with_name(path.name + ".meta.json"), json.dumps(meta, indent=2))
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def landing_id(sha256: str, name: str, interval: tuple[str | None, str | None]) -> str:
    """A landing's id: its bytes, its file name and its declared interval.

    A re-send under a corrected name or interval is a new landing with a fresh verdict; the same
    bytes under the same name and interval are the same landing.
    """
    key = "\n".join([sha256, name, interval[0] or "", interval[1] or ""])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchRef:
    """A landed batch: small enough to pass through XCom."""

    dataset: str
    batch_id: str
    sha256: str
    raw_path: str
    original_name: str
    landed_at: str  # ISO 8601 UTC; the first time this landing happened
    interval_start: str | None = None
    interval_end: str | None = None
    bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BatchRef:
        return cls(**data)


class RawStore:
    """Immutable copies of every batch: ``raw/<dataset>/<sha256><suffix>`` (content-addressed,
    stored once), and one record per landing in ``raw/<dataset>/landings/<batch_id>.json``.

    Under the home, or in the object store when ``SEQOPS_OBJECT_STORE_ROOT`` is set (then a batch's
    ``raw_path`` is its ``s3://`` URI and :func:`raw_file` fetches it on any worker)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.raw_dir
        self.objects = ObjectZone(settings.object_store_root, "raw") if settings.object_store_root else None

    def put(
        self,
        path: Path,
        dataset: str,
        *,
        interval: tuple[str | None, str | None] = (None, None),
    ) -> BatchRef:
        """Copy ``path`` in (its bytes once) and record the landing; landing it again is a no-op."""
        name = check_dataset_name(dataset)
        sha = sha256_of(path)
        batch_id = landing_id(sha, path.name, interval)
        ref = BatchRef(
            dataset=dataset,
            batch_id=batch_id,
            sha256=sha,
            raw_path="",
            original_name=path.name,
            landed_at=datetime.now(UTC).isoformat(),
            interval_start=interval[0],
            interval_end=interval[1],
            bytes=path.stat().st_size,
        )
        if self.objects is not None:
            return self._put_object(path, name, ref)
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{sha}{batch_suffix(path)}"
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{sha[:16]}.", suffix=".part")
            os.close(fd)
            try:
                shutil.copyfile(path, tmp)
                os.chmod(tmp, 0o444)
                os.replace(tmp, target)  # a concurrent copy of the same bytes replaces it with the same
            finally:
                Path(tmp).unlink(missing_ok=True)
        ref = BatchRef(**{**ref.to_dict(), "raw_path": str(target)})
        record = folder / "landings" / f"{batch_id}.json"
        if _create_once(record, json.dumps(ref.to_dict(), indent=2)):
            return ref
        return BatchRef.from_dict(json.loads(record.read_text()))  # landed before: the first landing

    def _put_object(self, path: Path, dataset: str, ref: BatchRef) -> BatchRef:
        from seqops.core.locks import named_lock

        assert self.objects is not None
        key = f"{dataset}/{ref.sha256}{batch_suffix(path)}"
        if not self.objects.exists(key):  # content-addressed: a concurrent writer writes the same bytes
            self.objects.put_file(path, key)
        ref = BatchRef(**{**ref.to_dict(), "raw_path": self.objects.url(key)})
        record = f"{dataset}/landings/{ref.batch_id}.json"
        with named_lock(self.settings, f"raw-landing-{dataset}-{ref.batch_id}"):  # create once
            if self.objects.exists(record):
                return BatchRef.from_dict(json.loads(self.objects.read_text(record)))
            self.objects.put_text(record, json.dumps(ref.to_dict(), indent=2))
        return ref

    def refs(self, dataset: str) -> list[BatchRef]:
        name = check_dataset_name(dataset)
        if self.objects is not None:
            keys = [k for k in self.objects.files(f"{name}/landings") if k.endswith(".json")]
            return [BatchRef.from_dict(json.loads(self.objects.read_text(k))) for k in keys]
        folder = self.root / name / "landings"
        return [BatchRef.from_dict(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


class LandingZone:
    """Where batches arrive: ``landing/<dataset>/incoming/``; claimed files move to ``landed/``."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.landing_dir

    def incoming(self, dataset: str) -> Path:
        path = self.root / check_dataset_name(dataset) / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pending(self, dataset: str) -> list[Path]:
        folder = self.incoming(dataset)
        return sorted(p for p in folder.iterdir() if p.is_file() and batch_suffix(p) in BATCH_SUFFIXES)

    @staticmethod
    def declared_interval(path: Path) -> tuple[str | None, str | None]:
        """The batch interval from ``<file>.meta.json`` (``interval_start``/``interval_end``), if any."""
        meta = path.with_name(path.name + ".meta.json")
        if not meta.exists():
            return (None, None)
        data = json.loads(meta.read_text())
        return (data.get("interval_start"), data.get("interval_end"))

    def archive(self, path: Path, dataset: str) -> None:
        """Move a file that now has a raw copy out of ``incoming`` (kept, never deleted)."""
        done = self.root / check_dataset_name(dataset) / "landed"
        done.mkdir(parents=True, exist_ok=True)
        for item in (path, path.with_name(path.name + ".meta.json")):
            try:
                item.replace(done / item.name)
            except FileNotFoundError:
                pass  # no meta, or the file was removed meanwhile: its raw copy is already made


@dataclass(frozen=True)
class Published:
    """What publishing one batch did: its rows, the table version that holds them, and whether
    this call wrote them (False: an earlier publish of the same batch did)."""

    rows: int
    version: int
    new: bool


def s3_subtree(uri: str):
    """A pyarrow filesystem rooted at ``s3://bucket/key``, configured like every S3 client: from
    ``AWS_*`` variables (``AWS_ENDPOINT_URL`` names an S3-compatible server, else AWS itself)."""
    import pyarrow.fs as pafs

    if not uri.startswith("s3://"):
        raise ValueError(f"object store {uri!r}: only s3:// URIs are supported")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    s3 = pafs.S3FileSystem(endpoint_override=endpoint, region=region)
    return pafs.SubTreeFileSystem(uri.removeprefix("s3://").rstrip("/"), s3)


class ObjectZone:
    """One zone's objects under ``<object_store_root>/<zone>/``, through pyarrow's S3 file system.

    Keys are relative to the zone. Used by the raw and quarantine zones when
    ``SEQOPS_OBJECT_STORE_ROOT`` is set, so workers on other machines read what one wrote.
    """

    def __init__(self, object_root: str, zone: str) -> None:
        self.uri = f"{object_root.rstrip('/')}/{zone}"
        self.fs = s3_subtree(self.uri)

    def url(self, key: str) -> str:
        return f"{self.uri}/{key}"

    def exists(self, key: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(key).type != pafs.FileType.NotFound

    def put_file(self, local: Path, key: str) -> None:
        with local.open("rb") as src, self.fs.open_output_stream(key) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def put_text(self, key: str, text: str) -> None:
        with self.fs.open_output_stream(key) as dst:
            dst.write(text.encode())

    def read_text(self, key: str) -> str:
        with self.fs.open_input_stream(key) as src:
            return src.read().decode()

    def get_file(self, key: str, local: Path) -> None:
        """Download ``key`` to ``local`` in one step (a temporary file beside it, then a rename)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as dst, self.fs.open_input_stream(key) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def files(self, prefix: str) -> list[str]:
        """Keys of every object under ``prefix`` (recursive), sorted."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(prefix, allow_not_found=True, recursive=True)
        return sorted(i.path for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File)

    def folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under ``prefix``."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(prefix, allow_not_found=True)
        return sorted(
            i.base_name for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.Directory
        )

    def put_tree(self, local: Path, prefix: str) -> None:
        for item in sorted(local.rglob("*")):
            if item.is_file():
                self.put_file(item, f"{prefix}/{item.relative_to(local).as_posix()}")

    def move_tree(self, src: str, dst: str) -> None:
        for key in self.files(src):
            self.fs.copy_file(key, f"{dst}/{key.removeprefix(src).lstrip('/')}")
            self.fs.delete_file(key)
        self.fs.delete_dir(src)  # and the folder markers pyarrow leaves behind


def raw_file(settings: Settings, raw_path: str) -> Path:
    """A local file with a raw copy's bytes: the path itself, or (object store) a cached download.

    The cache is content-addressed (the raw key is the bytes' SHA-256), so it is never stale.
    """
    if not raw_path.startswith("s3://"):
        return Path(raw_path)
    object_root = (settings.object_store_root or "").rstrip("/")
    if not raw_path.startswith(f"{object_root}/raw/"):
        raise ValueError(f"raw copy {raw_path} is outside this platform's object store {object_root!r}")
    key = raw_path.removeprefix(f"{object_root}/raw/")
    local = settings.data_dir / "cache" / "raw" / key
    if not local.exists():
        ObjectZone(object_root, "raw").get_file(key, local)
    return local


class SeriesRange(NamedTuple):
    """A published series' value range and its span in days."""

    min: float
    max: float
    days: float


class CuratedStore:
    """Validated rows only: one Delta Lake table per dataset at ``curated/<dataset>/``.

    Every published batch is one Delta commit (all of its rows visible, or none), an upsert on
    (series_id, timestamp) in which the batch landed last wins, so a later batch corrects an earlier
    one and re-publishing an older batch changes nothing. New covariate columns evolve the schema.
    The commit carries the batch id; its table version is the data version a training run or a
    forecast records, and ``read(..., version=v)`` reads the table as it was then. The table is
    partitioned by the UTC month of ``timestamp`` so a merge rewrites only the months it touches.
    """

    def __init__(self, settings: Settings) -> None:
        self.root = settings.curated_dir
        self.object_root = settings.object_store_root  # s3://bucket/prefix: the tables live there

    def table_uri(self, dataset: str) -> str:
        name = check_dataset_name(dataset)
        if self.object_root:
            return f"{self.object_root.rstrip('/')}/curated/{name}"
        return str(self.root / name)

    def _arrow(self, table: DeltaTable, dataset: str):
        """The table's current files as a pyarrow dataset.

        On S3, read through pyarrow's own S3 filesystem: Delta's default file handler leaves Rust
        threads behind that abort the interpreter at exit (delta-io/delta-rs#2184).
        """
        if not self.object_root:
            return table.to_pyarrow_dataset()
        return table.to_pyarrow_dataset(filesystem=s3_subtree(self.table_uri(dataset)))

    def _table(self, dataset: str, version: int | None = None) -> DeltaTable | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.table_uri(dataset), version=version)
        except TableNotFoundError:
            return None

    def version(self, dataset: str) -> int | None:
        """The table's current version (None before the first batch)."""
        table = self._table(dataset)
        return None if table is None else table.version()

    def published(self, dataset: str) -> dict[str, int]:
        """Every published batch of ``dataset`` and the table version that published it."""
        table = self._table(dataset)
        if table is None:
            return {}
        return {c[BATCH_KEY]: int(c["version"]) for c in table.history() if c.get(BATCH_KEY)}

    def batch_version(self, dataset: str, batch_id: str) -> int | None:
        """The version whose commit published ``batch_id``, or None if it never was."""
        return self.published(dataset).get(batch_id)

    def files(self, dataset: str, version: int | None = None) -> list[str]:
        """The data files of the table (at ``version``): unique names, so they identify the data."""
        table = self._table(dataset, version)
        return sorted(table.file_uris()) if table is not None else []

    def has_batch(self, dataset: str, batch_id: str) -> bool:
        return self.batch_version(dataset, batch_id) is not None

    def write(
        self,
        dataset: str,
        ref: BatchRef,
        frame: pd.DataFrame | Callable[[], Iterator[pd.DataFrame]],
        *,
        rows: int | None = None,
    ) -> Published:
        """Publish a validated canonical frame of ``ref`` as one commit; idempotent per batch.

        Args:
            dataset: the curated table.
            ref: the batch; its id and landing time go into the commit and every row (lineage).
            frame: the rows (:func:`seqops.core.canonical.to_canonical`), whole, or a function
                returning them as consecutive chunks: called once per commit attempt, its chunks
                stream into the commit, so the batch is never held whole.
            rows: how many rows the chunks hold (the commit records it); a stream of another
                count fails before its commit, leaving the table as it was. Not for a frame.

        Returns:
            The rows the batch holds and the table version that published them (the earlier
            version when the batch was published before: nothing is written twice).
        """
        import pandas as pd
        from deltalake import CommitProperties, write_deltalake
        from deltalake.exceptions import CommitFailedError, DeltaError

        streams: list[_ArrowStream] = []
        if isinstance(frame, pd.DataFrame):
            whole = _arrow_source(frame, ref)
            rows = whole.num_rows

            def source() -> pa.RecordBatchReader:
                return whole.to_reader(max_chunksize=_WRITE_CHUNK_ROWS)  # streamed: less buffered
        else:
            if rows is None:
                raise ValueError("a stream of chunks needs the rows it holds (rows=...)")

            def source() -> pa.RecordBatchReader:
                streams.append(_ArrowStream(frame(), ref, rows))
                return streams[-1].reader

        commit = CommitProperties(
            custom_metadata={BATCH_KEY: ref.batch_id, "seqops.rows": str(rows)}, max_commit_retries=20
        )
        for _ in range(20):  # a concurrent writer (another ingest) can win a commit race: re-check, retry
            done = self.batch_version(dataset, ref.batch_id)
            if done is not None:
                return Published(rows=rows, version=done, new=False)
            table = self._table(dataset)
            try:
                if table is None:
                    write_deltalake(
                        self.table_uri(dataset),
                        source(),
                        partition_by=[PARTITION],
                        mode="error",
                        commit_properties=commit,
                    )
                else:
                    (
                        table.merge(
                            source(),
                            "t.month = s.month AND t.series_id = s.series_id AND t.timestamp = s.timestamp",
                            source_alias="s",
                            target_alias="t",
                            merge_schema=True,
                            commit_properties=commit,
                        )
                        .when_matched_update_all(predicate="s.landed_at >= t.landed_at")
                        .when_not_matched_insert_all()
                        .execute()
                    )
            except (CommitFailedError, FileExistsError):
                continue
            except DeltaError as exc:
                if "already exists" in str(exc):
                    continue
                if streams and streams[-1].error is not None:
                    raise streams[-1].error from exc  # the stream's own error, not Delta's wrapping
                raise
            version = self.batch_version(dataset, ref.batch_id)
            if version is not None:
                return Published(rows=rows, version=version, new=True)
        raise RuntimeError(
            f"batch {ref.batch_id}: could not commit to {self.table_uri(dataset)} (20 races lost)"
        )

    def read(
        self,
        dataset: str,
        *,
        series_ids: Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        with_lineage: bool = False,
        version: int | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Curated rows, one per (series_id, timestamp), sorted; ``[start, end)`` filters timestamps.

        ``version`` reads the table as that commit left it (time travel).
        """
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        table = self._table(dataset, version)
        if table is None:
            return pd.DataFrame(
                {
                    "series_id": pd.Series(dtype="string"),
                    "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
                    "value": pd.Series(dtype="float64"),
                }
            )
        data = self._arrow(table, dataset)
        expr = None
        if start is not None:
            cond = ds.field("timestamp") >= pd.Timestamp(start).tz_convert("UTC")
            expr = cond if expr is None else expr & cond
        if end is not None:
            cond = ds.field("timestamp") < pd.Timestamp(end).tz_convert("UTC")
            expr = cond if expr is None else expr & cond
        wanted = columns if columns is None or series_ids is None else sorted({*columns, "series_id"})
        arrow = data.to_table(filter=expr, columns=wanted)
        if series_ids is not None:
            # filtered after the scan: files a merge wrote hold ids as string_view, and Arrow cannot
            # compare their statistics with a string literal (pushdown would raise)
            ids = arrow.column("series_id").cast(pa.string())
            arrow = arrow.filter(pc.is_in(ids, value_set=pa.array([str(s) for s in series_ids], pa.string())))
            if columns is not None:
                arrow = arrow.select(columns)
        frame = arrow.to_pandas()
        if columns is None:
            drop = [PARTITION] if with_lineage else [PARTITION, *LINEAGE_COLUMNS]
            frame = frame.drop(columns=[c for c in drop if c in frame.columns])
            first = ["series_id", "timestamp", "value"]
            frame = frame[first + [c for c in frame.columns if c not in first]]
        keys = [c for c in ("series_id", "timestamp") if c in frame.columns]
        return frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame

    def value_ranges(self, dataset: str) -> dict[str, SeriesRange]:
        """Each published series' value range and how many days of it are published (first to last
        timestamp), aggregated by Arrow (no pandas frame of values)."""
        import pyarrow as pa

        table = self._table(dataset)
        if table is None:
            return {}
        arrow = self._arrow(table, dataset).to_table(columns=["series_id", "timestamp", "value"])
        arrow = arrow.set_column(0, "series_id", arrow.column("series_id").cast(pa.string()))
        grouped = (
            arrow.group_by("series_id")
            .aggregate([("value", "min"), ("value", "max"), ("timestamp", "min"), ("timestamp", "max")])
            .to_pydict()
        )
        return {
            sid: SeriesRange(float(lo), float(hi), (last - first).total_seconds() / 86400)
            for sid, lo, hi, first, last in zip(
                grouped["series_id"],
                grouped["value_min"],
                grouped["value_max"],
                grouped["timestamp_min"],
                grouped["timestamp_max"],
                strict=True,
            )
        }

    def series(self, dataset: str) -> set[str]:
        frame = self.read(dataset, columns=["series_id"])
        return set(frame["series_id"].astype(str)) if len(frame) else set()


_WRITE_CHUNK_ROWS = 131_072  # rows per record batch streamed to the Delta writer


def _arrow_source(frame: pd.DataFrame, ref: BatchRef):
    """The batch as the Arrow table a commit writes: its columns, the lineage and the month.

    Built column by column in Arrow (compact strings; the month by Arrow's strftime, the lineage
    as one value repeated): through a pandas copy a 2,000,000-row batch took ~450 MB more.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    clash = sorted(set(frame.columns) & set(RESERVED_COLUMNS))
    if clash:
        raise ValueError(f"columns {clash} are reserved for lineage; rename them in the source")
    n = len(frame)
    timestamp = pa.array(frame["timestamp"].dt.tz_convert("UTC").astype("datetime64[us, UTC]"))
    columns = {
        "series_id": pa.array(frame["series_id"].to_numpy(dtype=object), type=pa.string()),
        "timestamp": timestamp,
        "value": pa.array(frame["value"].to_numpy(dtype="float64")),
    }
    for name in frame.columns:
        if name not in columns:
            columns[name] = pa.array(frame[name].to_numpy())
    landed = np.full(n, _timestamp_us(ref.landed_at).tz_localize(None).to_datetime64(), "datetime64[us]")
    columns["batch_id"] = pa.array(np.full(n, ref.batch_id, dtype=object), type=pa.string())
    columns["landed_at"] = pa.array(landed, type=pa.timestamp("us")).cast(timestamp.type)
    columns[PARTITION] = pc.strftime(timestamp, format="%Y-%m", locale="C")
    return pa.table(columns)


class _ArrowStream:
    """Chunks as one stream of record batches for a commit (:func:`_arrow_source` of each, in the
    first chunk's schema). The first chunk is read at once, so a bad column fails before the commit
    starts; a failure later (a count other than ``rows`` included) fails the commit from inside,
    so nothing commits, and is kept in :attr:`error` (Delta reports it wrapped in its own)."""

    def __init__(self, chunks: Iterator[pd.DataFrame], ref: BatchRef, rows: int) -> None:
        import pyarrow as pa

        self.error: Exception | None = None
        first = _arrow_source(next(chunks), ref)
        self.reader = pa.RecordBatchReader.from_batches(first.schema, self._batches(first, chunks, ref, rows))

    def _batches(
        self, first: pa.Table, chunks: Iterator[pd.DataFrame], ref: BatchRef, rows: int
    ) -> Iterator[pa.RecordBatch]:
        try:
            seen, table = 0, first
            while table is not None:
                seen += table.num_rows
                yield from table.cast(first.schema).to_batches(max_chunksize=_WRITE_CHUNK_ROWS)
                chunk = next(chunks, None)
                table = None if chunk is None else _arrow_source(chunk, ref)
            if seen != rows:
                raise ValueError(f"{seen} rows read but {rows} were accepted")
        except Exception as exc:
            self.error = exc
            raise


def _timestamp_us(iso: str) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(datetime.fromisoformat(iso)).tz_convert("UTC").as_unit("us")


class Quarantine:
    """Rejected batches, whole: ``quarantine/<dataset>/<batch_id>/`` with the batch and its reports.

    A batch that a later validation accepts (after a policy change) is released: its folder moves
    to ``quarantine/<dataset>/_released/<batch_id>-<time>/``, so nothing is lost and the quarantine
    and the curated store never both hold it. With ``SEQOPS_OBJECT_STORE_ROOT`` the zone is in the
    object store: the folder is written under the home, then :meth:`seal` uploads it, and the
    object store answers :meth:`holds`, :meth:`batches` and :meth:`release`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.quarantine_dir
        self.objects = (
            ObjectZone(settings.object_store_root, "quarantine") if settings.object_store_root else None
        )

    def folder(self, dataset: str, batch_id: str) -> Path:
        """The batch's folder under the home (in object-store mode, where it is written first)."""
        return self.root / check_dataset_name(dataset) / batch_id

    def location(self, dataset: str, batch_id: str) -> str:
        """Where a person finds the quarantined batch (the dataset's quarantine for an empty id):
        its object-store URI, or its folder."""
        if self.objects is not None:
            return self.objects.url(f"{check_dataset_name(dataset)}/{batch_id}/" if batch_id else dataset)
        return str(self.folder(dataset, batch_id) if batch_id else self.root / check_dataset_name(dataset))

    def put(self, ref: BatchRef, reports: Path | None = None) -> Path:
        """Copy the batch (and the ``reports`` folder's files) in; return the folder to add to.

        The caller calls :meth:`seal` once the folder is complete.
        """
        folder = self.folder(ref.dataset, ref.batch_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"batch{batch_suffix(Path(ref.raw_path))}"
        if not target.exists():
            shutil.copyfile(raw_file(self.settings, ref.raw_path), target)
        write_atomic(folder / "batch.json", json.dumps(ref.to_dict(), indent=2))
        for item in reports.iterdir() if reports is not None else ():
            if item.is_dir():
                shutil.copytree(item, folder / item.name, dirs_exist_ok=True)
            else:
                shutil.copyfile(item, folder / item.name)
        return folder

    def seal(self, dataset: str, batch_id: str) -> str:
        """Upload the finished folder to the object store (if any); return :meth:`location`."""
        if self.objects is not None:
            self.objects.put_tree(self.folder(dataset, batch_id), f"{check_dataset_name(dataset)}/{batch_id}")
        return self.location(dataset, batch_id)

    def holds(self, dataset: str, batch_id: str) -> bool:
        if self.objects is not None:
            return self.objects.exists(f"{check_dataset_name(dataset)}/{batch_id}/batch.json")
        return self.folder(dataset, batch_id).is_dir()

    def release(self, dataset: str, batch_id: str) -> str | None:
        """Move a quarantined batch out (it was accepted after all); return where it went."""
        name = check_dataset_name(dataset)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        folder = self.folder(dataset, batch_id)
        local_target = self.root / name / "_released" / f"{batch_id}-{stamp}"
        if folder.is_dir():
            local_target.parent.mkdir(parents=True, exist_ok=True)
            folder.replace(local_target)
        if self.objects is not None:
            if not self.holds(dataset, batch_id):
                return None
            target = f"{name}/_released/{batch_id}-{stamp}"
            self.objects.move_tree(f"{name}/{batch_id}", target)
            return self.objects.url(f"{target}/")
        return str(local_target) if local_target.is_dir() else None

    def batches(self, dataset: str) -> list[str]:
        name = check_dataset_name(dataset)
        if self.objects is not None:
            return [b for b in self.objects.folders(name) if not b.startswith("_")]
        root = self.root / name
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
