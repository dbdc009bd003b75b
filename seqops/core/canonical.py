"""The canonical long format, and reading batch files into it without losing or hiding a row.

Canonical rows are ``series_id`` (non-empty text), ``timestamp`` (ISO 8601 with an offset or ``Z``,
stored as UTC), ``value`` (finite float) and optional numeric covariate columns. A missing
observation is a missing row, never a NaN.

Three steps, each strict about one thing:

* :func:`read_batch` turns a file into a table of untouched cells (CSV: every cell is text) plus
  ``_row``, the line number to point people at. A file that is not a table raises
  :class:`BatchReadError` with what is wrong and what to do. :func:`iter_batch` reads the same
  table as consecutive chunks of rows, so a big batch is never held whole.
* :func:`coerce` types the columns for validation and drops nothing: unparseable cells become
  NaT/NaN, and the raw text stays beside them (``_timestamp_raw``, ``_value_raw``).
* :func:`to_canonical` keeps only the canonical columns of a validated frame, sorted.
"""

from __future__ import annotations

import array
import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("series_id", "timestamp", "value")
#: columns the curated store adds to every row (lineage), and its partition column
LINEAGE_COLUMNS: tuple[str, ...] = ("batch_id", "landed_at")
PARTITION_COLUMN = "month"
RESERVED_COLUMNS: tuple[str, ...] = (*LINEAGE_COLUMNS, PARTITION_COLUMN)
_EXACT_INT = 2**53  # float64 holds every integer up to here exactly
ROW = "_row"
TIMESTAMP_RAW = "_timestamp_raw"
VALUE_RAW = "_value_raw"

DEFAULT_MAX_BATCH_MB = 500.0
#: rows per chunk of :func:`iter_batch`: what validation and publish hold of a batch at a time.
#: Parsed and typed, a row takes ~1 KB while its chunk is worked on (measured: publish of 8 M rows
#: peaked at 569 MB with 250,000-row chunks, 351 MB with 65,536).
CHUNK_ROWS = 65_536
_MB = 1024 * 1024
_DISTINCT_CACHED = 100_000  # distinct cells per column stored once; beyond it a column counts as distinct
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")

# ISO 8601 date and time WITH a UTC offset or Z: 2014-01-01T05:00:00Z, 2014-01-01 00:00-05:00,
# 2014-01-01T05:00:00.250+0530. A date alone or a time without an offset is not canonical.
_ISO_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)"
)
_ISO_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")


class BatchReadError(ValueError):
    """The file cannot be read as a table at all; the message says what is wrong and what to do."""


def covariate_columns(frame: pd.DataFrame) -> list[str]:
    """Extra data columns: everything but the required columns and ``_``-prefixed helpers."""
    return [c for c in frame.columns if c not in REQUIRED_COLUMNS and not str(c).startswith("_")]


def raw_column(column: str) -> str:
    """Name of the helper column that keeps ``column``'s raw text after :func:`coerce`."""
    return f"_{column}_raw"


# ---- reading ---------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB // 10 else f"{n} bytes"


def read_batch(path: Path, *, max_bytes: int | None = None) -> pd.DataFrame:
    """Read one batch file into a table of untouched cells plus ``_row``.

    CSV (``.csv``, ``.csv.gz``) is read as UTF-8 text with every cell kept as a string, so nothing
    is coerced silently (``"NA"`` stays ``"NA"``); ``_row`` is the file's line number of the row
    (header = line 1). Parquet (``.parquet``) keeps its column types; ``_row`` is the row index + 1.
    The whole table at once: :func:`iter_batch` reads it chunk by chunk.

    Args:
        path: the batch file; the suffix decides the format.
        max_bytes: size limit of the file (and of a ``.csv.gz``'s decompressed text); default
            500 MB (``Settings.max_batch_bytes``, ``SEQOPS_MAX_BATCH_MB``, is what ingestion passes).

    Returns:
        The table with a 0..n-1 index and an int64 ``_row`` column.

    Raises:
        BatchReadError: the file is empty, too big, binary, corrupt, ragged or not comma-separated.
        FileNotFoundError: there is no such file.
    """
    chunks = list(iter_batch(path, max_bytes=max_bytes))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def iter_batch(
    path: Path, *, max_bytes: int | None = None, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """:func:`read_batch`'s table as consecutive chunks of at most ``chunk_rows`` rows (default
    :data:`CHUNK_ROWS`), each with its own 0..k-1 index; a batch without rows gives one empty chunk.

    A problem found only at the end of the file (a ragged line, a missing final line break, an
    integer beyond 2^53 in a Parquet column) raises :class:`BatchReadError` after the chunks before
    it, with the message :func:`read_batch` gives: a caller judges the batch only once the iteration
    ends without an error.

    Raises:
        BatchReadError, FileNotFoundError: as :func:`read_batch`, on the first ``next()``
        or later.
    """
    path = Path(path)
    limit = int(DEFAULT_MAX_BATCH_MB * _MB) if max_bytes is None else max_bytes
    chunk_rows = chunk_rows or CHUNK_ROWS
    size = path.stat().st_size
    if size == 0:
        raise BatchReadError("file is empty (0 bytes): nothing was written; re-export the batch")
    if size > limit:
        raise BatchReadError(
            f"file is {_size(size)}, over the {_size(limit)} limit of one batch "
            "(SEQOPS_MAX_BATCH_MB); split it into smaller batches"
        )
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        chunks = _read_parquet(path, chunk_rows)
    elif name.endswith(_CSV_SUFFIXES):
        chunks = _read_csv(path, limit, chunk_rows)
    else:
        raise BatchReadError(
            f"unsupported file type {path.name!r}: send CSV (.csv, .csv.gz) or Parquet (.parquet)"
        )
    yield from chunks


def _check_names(columns: list[str]) -> None:
    """Refuse a batch whose header names a seqops helper or lineage column."""
    reserved = [c for c in columns if str(c).startswith("_")]
    if reserved:
        raise BatchReadError(
            f"column {reserved[0]!r} is reserved: names starting with '_' are seqops helper columns; "
            "rename or drop it"
        )
    lineage = [c for c in columns if str(c) in RESERVED_COLUMNS]
    if lineage:
        raise BatchReadError(
            f"column {lineage[0]!r} is reserved: the curated store writes {', '.join(RESERVED_COLUMNS)} "
            "itself (lineage); rename the column"
        )


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, path.stat().st_size - 4))
        tail = fh.read(4)
    if head != b"PAR1":
        raise BatchReadError(
            f"not a Parquet file: it starts with {head!r}, not b'PAR1'; check the file type "
            "(a CSV must be named .csv)"
        )
    if tail != b"PAR1":
        raise BatchReadError(
            "Parquet file is truncated or corrupt: its footer magic bytes are missing "
            "(the upload was cut short?); re-send the whole file"
        )
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BatchReadError(f"Parquet file is truncated or corrupt: {exc}; re-send the file") from exc
    names = schema.names
    duplicated = [c for c in names if names.count(c) > 1]
    if duplicated:
        raise BatchReadError(f"column {duplicated[0]!r} appears more than once; keep one")
    if "series_id" in names and pa.types.is_floating(schema.field("series_id").type):
        raise BatchReadError(
            "series_id is a floating-point column: ids 7.0 and 7 would become two series; "
            "write series_id as text or as an integer column"
        )
    _check_names(names)
    integers = [n for n in names if n != "series_id" and pa.types.is_integer(schema.field(n).type)]
    beyond_exact: dict[str, tuple[int, object, int]] = {}  # column -> (first row, its value, count)
    offset = 0
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas(integer_object_nulls=True)  # ids 1, 2, null stay "1", "2"
            for name in integers:
                # (uint64 beyond int64 fails the cast: reported as corrupt)
                column = batch.column(name).cast(pa.int64())
                beyond = pc.greater(pc.abs(column), pa.scalar(_EXACT_INT, pa.int64())).fill_null(False)
                big = np.flatnonzero(beyond.to_numpy(zero_copy_only=False))
                if len(big):
                    first = beyond_exact.get(name, (offset + big[0] + 1, frame[name].iloc[big[0]], 0))
                    beyond_exact[name] = (*first[:2], first[2] + len(big))
            frame[ROW] = np.arange(offset + 1, offset + len(frame) + 1, dtype="int64")
            offset += len(frame)
            if not beyond_exact:
                yield frame
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BatchReadError(f"Parquet file is truncated or corrupt: {exc}; re-send the file") from exc
    for name in integers:  # judged on the whole file: the first offending column names its count
        if name in beyond_exact:
            row, value, count = beyond_exact[name]
            raise BatchReadError(
                f"column {name!r} row {row} holds {value}, beyond the integers float64 holds "
                f"exactly (2^53); {count} such value(s). Send them as floating point on purpose, "
                "or rescale"
            )
    if offset == 0:
        empty = schema.empty_table().to_pandas(integer_object_nulls=True)
        empty[ROW] = np.zeros(0, dtype="int64")
        yield empty


def _read_text(path: Path, limit: int) -> str:
    """The file's text, refusing binary content and non-UTF-8 bytes with their offset."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise BatchReadError(
                f"gzip stream is truncated or corrupt: {exc}; re-send the file (or name it .csv "
                "if it is not compressed)"
            ) from exc
        if len(data) > limit:
            raise BatchReadError(
                f"decompressed CSV is over the {_size(limit)} limit of one batch "
                "(SEQOPS_MAX_BATCH_MB); split it into smaller batches"
            )
    else:
        data = path.read_bytes()
    if data[:4] == b"PAR1":
        raise BatchReadError("this is a Parquet file named like a CSV; name it .parquet")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise BatchReadError(
            f"not a CSV or Parquet file: bytes at offset {nul} are not text (binary?); "
            "send UTF-8 CSV or Parquet"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BatchReadError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) "
            "cannot be decoded; export the CSV as UTF-8"
        ) from exc


def _read_csv(path: Path, limit: int, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of cells as text, each with the line number of its rows."""
    try:
        with _TextStream(path, limit) as stream:
            yield from _parse_csv(stream, chunk_rows)
    except (UnicodeDecodeError, csv.Error, BatchReadError):
        _read_text(path, limit)  # a more basic problem (binary, not UTF-8, too big) is named first
        raise


class _TextStream(io.RawIOBase):
    """The file's bytes as a stream (decompressed for ``.gz``), refusing over ``limit`` bytes and
    remembering the last one; read as text through :class:`io.TextIOWrapper` (UTF-8, BOM dropped),
    so a batch is parsed without a copy of its whole text."""

    def __init__(self, path: Path, limit: int) -> None:
        self._file = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
        self._limit, self._seen, self.last = limit, 0, b""
        try:
            head = self._file.peek(4)[:4] if hasattr(self._file, "peek") else b""
        except (OSError, EOFError, zlib.error) as exc:
            self._file.close()
            raise BatchReadError(f"gzip stream is truncated or corrupt: {exc}") from exc
        if head == b"PAR1":
            self._file.close()
            raise BatchReadError("this is a Parquet file named like a CSV; name it .parquet")
        self.text = io.TextIOWrapper(io.BufferedReader(self, 1 << 20), encoding="utf-8-sig", newline="")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        try:
            n = self._file.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise BatchReadError(f"gzip stream is truncated or corrupt: {exc}") from exc
        self._seen += n
        if self._seen > self._limit:
            raise BatchReadError(
                f"decompressed CSV is over the {_size(self._limit)} limit of one batch "
                "(SEQOPS_MAX_BATCH_MB); split it into smaller batches"
            )
        if n:
            self.last = bytes(buffer[n - 1 : n])
            if bytes(buffer[:n]).find(b"\x00") >= 0:
                raise BatchReadError("NUL byte: not text")  # _read_csv names the offset
        return n

    def close(self) -> None:
        self._file.close()
        super().close()

    def __enter__(self) -> _TextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_csv(stream: _TextStream, chunk_rows: int) -> Iterator[pd.DataFrame]:
    # The csv module, not pandas: it reports the physical line each record ends on, so ``_row``
    # stays the true line number across blank lines and quoted newlines.
    reader = csv.reader(stream.text, strict=True)
    header: list[str] | None = None
    # Column by column, each cell text stored once per distinct value of the chunk while a column
    # repeats (ids, timestamps): a list per row and a str per cell took ~250 bytes a row.
    columns: list[list[str]] = []
    distinct: list[dict[str, str] | None] = []
    lines = array.array("q")
    ragged: list[tuple[int, int]] = []
    previous_end = last_start = rows = 0
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            last_start = start
            if header is None:
                header = [name.strip() for name in record]
                _check_header(header)
                columns, distinct = [[] for _ in header], [{} for _ in header]
                continue
            if len(record) != len(header):
                ragged.append((start, len(record)))
                continue
            for k, cell in enumerate(record):
                cache = distinct[k]
                if cache is not None:
                    cell = cache.setdefault(cell, cell)
                    if len(cache) > _DISTINCT_CACHED:  # mostly distinct: stop looking them up
                        distinct[k] = None
                columns[k].append(cell)
            lines.append(start)
            if len(lines) == chunk_rows:
                if not ragged:  # a ragged file is refused at its end: no chunk of it is used
                    yield _csv_chunk(header, columns, lines)
                rows += len(lines)
                columns, distinct = [[] for _ in header], [{} for _ in header]
                lines = array.array("q")
    except csv.Error as exc:
        raise BatchReadError(
            f"CSV is malformed at line {reader.line_num}: {exc} (an unclosed quote, or the file "
            "was cut short?); fix the quoting or re-send the whole file"
        ) from exc
    ends_with_newline = stream.last in (b"\n", b"\r")
    if header is None:
        raise BatchReadError("CSV has no header line: the first line must name the columns")
    if ragged:
        line, count = ragged[0]
        truncated = ragged[-1][0] == last_start and not ends_with_newline
        cut = " The file ends mid-line: it looks truncated; re-send the whole file." if truncated else ""
        more = f" ({len(ragged)} lines in all)" if len(ragged) > 1 else ""
        raise BatchReadError(
            f"line {line} has {count} fields but the header has {len(header)}{more}: rows must "
            f"have one field per column (quote values that contain commas).{cut}"
        )
    if (rows or lines) and not ends_with_newline:
        raise BatchReadError(
            f"the file does not end with a line break: its last line (line {last_start}) may have been "
            "cut short in transfer, and a cut row can still parse (12.5 -> 12). Re-send the whole "
            "file; a complete CSV ends with a newline"
        )
    if lines or not rows:
        yield _csv_chunk(header, columns, lines)


def _check_header(header: list[str]) -> None:
    """Refuse a header that cannot name the columns (read before any data row)."""
    if not any(header):
        raise BatchReadError("CSV has no header line: the first line must name the columns")
    if len(header) == 1:
        for sep in (";", "\t", "|"):
            if sep in header[0]:
                raise BatchReadError(
                    f"CSV is not comma-separated: the header {header[0]!r} is one column "
                    f"containing {sep!r}; write the file with ',' as the delimiter"
                )
    if "" in header:
        raise BatchReadError(
            f"header column {header.index('') + 1} has no name (a trailing comma?); name every column"
        )
    seen = [name for name in header if header.count(name) > 1]
    if seen:
        raise BatchReadError(f"column {seen[0]!r} appears more than once in the header; keep one")
    _check_names(header)


def _csv_chunk(header: list[str], columns: list[list[str]], lines: array.array) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(columns[k], dtype=object) for k, name in enumerate(header)})
    frame[ROW] = np.frombuffer(lines, dtype="int64").copy() if lines else np.zeros(0, dtype="int64")
    return frame


# ---- typing ----------------------------------------------------------------------------------


def _as_text(series: pd.Series) -> pd.Series:
    """Cells as text for reports (None stays None); integers print without a decimal point."""
    return series.astype(object).map(_cell_text).astype(object)


def _cell_text(v: object) -> str | None:
    if isinstance(v, str):
        return v
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Strictly parse ISO 8601 text with an offset or ``Z`` to UTC; anything else becomes NaT."""
    stripped = text.where(text.map(lambda v: isinstance(v, str)), None).str.strip()
    ok = stripped.str.fullmatch(_ISO_WITH_OFFSET.pattern, na=False).astype(bool)
    parsed = pd.to_datetime(stripped.where(ok), utc=True, format="ISO8601", errors="coerce")
    return parsed.astype("datetime64[ns, UTC]")


def describe_timestamp(raw: object) -> str:
    """Why a raw timestamp is not canonical, in a few words (for reports)."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == "":
        return "missing"
    text = str(raw).strip()
    if _ISO_WITH_OFFSET.fullmatch(text):
        return "not a real date/time (out of range?)"
    if _ISO_NAIVE.fullmatch(text):
        return "no UTC offset (naive); write e.g. 2014-01-01T05:00:00Z or ...-05:00"
    return "not ISO 8601 (YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM)"


def _timestamp_column(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(UTC timestamps, raw text) of a timestamp column of any input type."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        typed = column.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return typed, _as_text(column)
    raw = _as_text(column)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        # Parquet timestamps without a zone: the instant is unknown, so they are not canonical.
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]"), raw
    return parse_timestamps(raw), raw


def _numeric_column(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 values, raw text): NaN where the cell is empty or not a number; inf stays inf."""
    raw = _as_text(column)
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("float64"), raw
    stripped = raw.where(raw.map(lambda v: isinstance(v, str)), None).str.strip()
    return pd.to_numeric(stripped, errors="coerce").astype("float64"), raw


def coerce(raw: pd.DataFrame) -> pd.DataFrame:
    """Type a batch for validation, losing no row.

    Args:
        raw: the output of :func:`read_batch`.

    Returns:
        ``series_id`` (text as given; numbers become text), ``timestamp`` (``datetime64[ns, UTC]``;
        NaT unless the cell is ISO 8601 with an offset or ``Z``, or a zone-aware Parquet timestamp),
        ``value`` and covariates (float64; NaN where not a number, inf kept), then ``_row``,
        ``_timestamp_raw``, ``_value_raw`` and ``_<covariate>_raw``. Missing required columns stay
        missing, so the validation suite can report them.
    """
    raw = raw.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    helpers: dict[str, pd.Series] = {}
    if "series_id" in raw:
        out["series_id"] = _as_text(raw["series_id"])
    if "timestamp" in raw:
        out["timestamp"], helpers[TIMESTAMP_RAW] = _timestamp_column(raw["timestamp"])
    if "value" in raw:
        out["value"], helpers[VALUE_RAW] = _numeric_column(raw["value"])
    for name in covariate_columns(raw):
        out[name], helpers[raw_column(name)] = _numeric_column(raw[name])
    row = raw[ROW] if ROW in raw else pd.Series(np.arange(1, len(raw) + 1), index=raw.index)
    frame = pd.DataFrame(out, index=raw.index)
    frame[ROW] = row.astype("int64")
    for name, series in helpers.items():
        frame[name] = series
    return frame


def to_canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns of a validated frame, sorted by (series_id, timestamp).

    Args:
        frame: the output of :func:`coerce` for a batch that validation accepted.

    Returns:
        ``series_id`` (object), ``timestamp`` (``datetime64[us, UTC]``), ``value`` (float64) and
        the covariates, no ``_`` helper columns, index 0..n-1.

    Raises:
        ValueError: a required column is missing or a row is not canonical (validate first).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"not a canonical batch: missing column(s) {', '.join(missing)}")
    columns = [*REQUIRED_COLUMNS, *covariate_columns(frame)]
    out = frame[columns].copy()
    bad = (
        out["series_id"].isna()
        | out["timestamp"].isna()
        | ~np.isfinite(out["value"].to_numpy(dtype="float64", na_value=np.nan))
    )
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} row(s) have no series_id, timestamp or finite value: "
            "validate the batch and publish only an accepted one"
        )
    out["series_id"] = out["series_id"].astype(object)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[us, UTC]")
    out["value"] = out["value"].astype("float64")
    out = out.sort_values(["series_id", "timestamp"], kind="stable").reset_index(drop=True)
    return out
