"""Importers: turn outside files into batches of the canonical long format.

The canonical format is ``series_id, timestamp (ISO 8601 with offset), value[, covariates]``.
Importers write batch files plus a ``.meta.json`` sidecar that declares the batch interval, and
return a report of every repair they made, so nothing they change is silent.

PJM raw-file policy (see README, "Data policy"):

* Each file holds one zone: ``Datetime, <ZONE>_MW``. Date formats differ between files
  (``dd-mm-YYYY HH:MM`` or ``YYYY-mm-dd HH:MM:SS``); each file is parsed with the one explicit format
  that parses every row, never guessed per row.
* Timestamps are local wall-clock hours in ``America/New_York``. They are converted to UTC:
  a label that does not exist locally (the spring-forward hour) is shifted forward to the first
  valid instant; a label that occurs twice on a fall-back day is the repeated hour, so its first
  occurrence in file order is placed one hour earlier in UTC than its second; a single ambiguous
  label is read as daylight time. Every such repair is counted in the report.
* Rows out of order are sorted. Missing hours stay missing (the validation suite reports gaps).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

PJM_ZONES = ("AEP", "COMED", "DAYTON", "DEOK", "DOM", "DUQ", "EKPC")
PJM_FORMATS = ("%d-%m-%Y %H:%M", "%Y-%m-%d %H:%M:%S")


@dataclass
class ImportReport:
    """What an importer did: rows in and out, and each repair with its count."""

    source: str
    rows_read: int = 0
    rows_written: int = 0
    rows_held_back: int = 0
    series: list[str] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)

    def count(self, repair: str, n: int) -> None:
        if n:
            self.repairs[repair] = self.repairs.get(repair, 0) + int(n)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_held_back": self.rows_held_back,
            "series": self.series,
            "repairs": self.repairs,
            "batches": self.batches,
        }


class SourceFormatError(ValueError):
    """A source file cannot be imported; the message names the file and what to do."""


def _parse_wall_clock(raw: pd.Series, path: Path) -> pd.Series:
    import pandas as pd

    for fmt in PJM_FORMATS:
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce")
        if parsed.notna().all():
            return parsed
    bad = raw[pd.to_datetime(raw, format=PJM_FORMATS[0], errors="coerce").isna()].head(3).tolist()
    raise SourceFormatError(
        f"{path}: timestamps match none of the formats {PJM_FORMATS}; examples: {bad}. "
        "Add the file's format to PJM_FORMATS or convert the file first."
    )


def localize_wall_clock(local: pd.Series, tz: str, report: ImportReport) -> pd.Series:
    """Convert naive local wall-clock labels (in file order) to UTC by the documented DST rule."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"local": local.to_numpy()}, index=local.index)
    # Occurrence number of each label in file order: 0 for the first, 1 for a repeat.
    frame["occurrence"] = frame.groupby("local").cumcount()
    utc = pd.Series(
        pd.DatetimeIndex(frame["local"])
        .tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        .tz_convert("UTC"),
        index=frame.index,
    )
    # Labels in the repeated hour: read as daylight time (the first pass of that hour).
    ambiguous = utc.isna()
    if ambiguous.any():
        labels = pd.DatetimeIndex(frame.loc[ambiguous, "local"])
        dst = labels.tz_localize(tz, ambiguous=np.ones(len(labels), dtype=bool))
        utc.loc[ambiguous] = dst.tz_convert("UTC")
    report.count("ambiguous_hour_read_as_daylight_time", int(ambiguous.sum()))
    labels = pd.DatetimeIndex(frame["local"])
    shifted = labels.tz_localize(tz, nonexistent="NaT", ambiguous=np.ones(len(labels), dtype=bool)).isna()
    report.count("nonexistent_hour_shifted_forward", int(shifted.sum()))
    # A label seen twice: the first occurrence is the hour before the clock went back.
    repeated = frame["local"].duplicated(keep=False)
    first_of_pair = repeated & (frame["occurrence"] == 0)
    utc.loc[first_of_pair] = utc.loc[first_of_pair] - pd.Timedelta(hours=1)
    report.count("repeated_fall_back_hour_split", int(first_of_pair.sum()))
    return utc


def read_pjm_zone(path: Path, report: ImportReport, tz: str = "America/New_York") -> pd.DataFrame:
    """One raw PJM file (``<ZONE>_hourly.csv[.gz]``) as a canonical frame in UTC, sorted."""
    import pandas as pd

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if len(raw.columns) != 2 or raw.columns[0] != "Datetime" or not raw.columns[1].endswith("_MW"):
        raise SourceFormatError(f"{path}: expected columns 'Datetime,<ZONE>_MW', found {list(raw.columns)}")
    zone = raw.columns[1].removesuffix("_MW")
    report.rows_read += len(raw)
    local = _parse_wall_clock(raw["Datetime"], path)
    values = pd.to_numeric(raw.iloc[:, 1], errors="coerce")
    if values.isna().any():
        bad = raw.loc[values.isna(), raw.columns[1]].head(3).tolist()
        raise SourceFormatError(f"{path}: non-numeric load values, e.g. {bad}")
    utc = localize_wall_clock(local, tz, report)
    frame = pd.DataFrame({"series_id": zone, "timestamp": utc, "value": values.astype("float64")})
    if not frame["timestamp"].is_monotonic_increasing:
        report.count("files_sorted_into_time_order", 1)
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    collisions = frame.duplicated(["series_id", "timestamp"], keep="last")
    if collisions.any():
        # Only possible if a file repeats a label more than twice: keep the later row, say so.
        report.count("duplicate_after_dst_rule_dropped", int(collisions.sum()))
        frame = frame[~collisions].reset_index(drop=True)
    report.series.append(zone)
    return frame


def pjm_files(source: Path) -> list[Path]:
    files = sorted(p for p in source.iterdir() if p.name.split("_hourly")[0] in PJM_ZONES)
    if not files:
        raise SourceFormatError(
            f"{source}: no PJM files (<ZONE>_hourly.csv[.gz] for zones {', '.join(PJM_ZONES)})"
        )
    return files


def write_batches(
    frame: pd.DataFrame,
    out_dir: Path,
    *,
    prefix: str,
    period: Literal["year", "month", "all"] = "year",
    report: ImportReport | None = None,
) -> list[Path]:
    """Split a canonical frame into interval batches: ``<prefix>_<start>.csv.gz`` + ``.meta.json``."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = frame.sort_values(["series_id", "timestamp"], kind="stable")
    if period == "all":
        groups: Iterable = [(None, frame)]
    else:
        freq = {"year": "YS", "month": "MS"}[period]
        key = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq[0])
        groups = frame.groupby(key, sort=True)
    paths: list[Path] = []
    for label, part in groups:
        if label is None:
            start = part["timestamp"].min().floor("D")
            end = part["timestamp"].max().floor("D") + pd.Timedelta(days=1)
            name = f"{prefix}_all"
        else:
            start = label.start_time.tz_localize("UTC")
            end = (
                label.end_time.ceil("h").tz_localize("UTC")
                if period == "month"
                else ((label + 1).start_time.tz_localize("UTC"))
            )
            name = f"{prefix}_{label}"
        out = part.copy()
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        path = out_dir / f"{name}.csv.gz"
        meta = {"interval_start": start.isoformat(), "interval_end": end.isoformat(), "source": prefix}
        import gzip

        from seqops.core.store import arriving

        with arriving(path, meta) as tmp, tmp.open("wb") as raw:  # out_dir may be a landing zone
            # mtime=0 and the final name in the header keep the bytes, so the batch ids, stable
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as fh:
                fh.write(out.to_csv(index=False).encode())
        paths.append(path)
        if report is not None:
            report.rows_written += len(part)
            report.batches.append(path.name)
    return paths


def import_pjm(
    source: Path,
    out_dir: Path,
    *,
    period: Literal["year", "month", "all"] = "year",
    zones: Iterable[str] | None = None,
    since: str | None = None,
    report_path: Path | None = None,
    tz: str = "America/New_York",
    hold_back_days: int = 0,
    hold_back_path: Path | None = None,
) -> ImportReport:
    """Import raw PJM zone files into canonical interval batches under ``out_dir``.

    ``tz`` is the zone of the raw wall-clock labels (the pjm dataset's ``source_timezone``).
    ``hold_back_days`` > 0 keeps the last days (after the newest timestamp minus that many days) out
    of the batches and writes them, canonical and sorted, to ``hold_back_path``: the live data a
    replay lands later.
    """
    import pandas as pd

    report = ImportReport(source=str(source))
    wanted = set(zones) if zones else None
    frames = []
    for path in pjm_files(source):
        zone = path.name.split("_hourly")[0]
        if wanted is not None and zone not in wanted:
            continue
        frames.append(read_pjm_zone(path, report, tz))
    frame = pd.concat(frames, ignore_index=True)
    if since:
        frame = frame[frame["timestamp"] >= pd.Timestamp(since, tz="UTC")]
    if hold_back_days > 0:
        if hold_back_path is None:
            raise ValueError("hold_back_days needs a hold_back_path")
        cutoff = frame["timestamp"].max() - pd.Timedelta(days=hold_back_days)
        later = frame[frame["timestamp"] > cutoff].sort_values(["timestamp", "series_id"], kind="stable")
        hold_back_path.parent.mkdir(parents=True, exist_ok=True)
        out = later.assign(timestamp=later["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out[["series_id", "timestamp", "value"]].to_csv(hold_back_path, index=False)
        report.rows_held_back = len(later)
        frame = frame[frame["timestamp"] <= cutoff]
    write_batches(frame, out_dir, prefix="pjm", period=period, report=report)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=2))
    return report


def import_table(
    path: Path,
    *,
    layout: Literal["long", "wide"] = "long",
    timestamp_column: str = "timestamp",
    series_column: str = "series_id",
    value_column: str = "value",
    timezone: str | None = None,
) -> pd.DataFrame:
    """A generic CSV/Parquet file (long or wide) as a canonical frame (UTC timestamps).

    Wide layout: one timestamp column and one column per series. Naive timestamps need
    ``timezone``; without it they are refused rather than guessed.
    """
    import pandas as pd

    if path.name.lower().endswith(".parquet"):
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path)
    if timestamp_column not in table.columns:
        raise SourceFormatError(
            f"{path}: no column {timestamp_column!r} (columns: {list(table.columns)}); "
            "pass --timestamp-column"
        )
    if layout == "wide":
        table = table.melt(id_vars=[timestamp_column], var_name="series_id", value_name="value")
        table = table.dropna(subset=["value"])  # a missing observation is a missing row
    else:
        missing = [c for c in (series_column, value_column) if c not in table.columns]
        if missing:
            raise SourceFormatError(f"{path}: missing columns {missing} (columns: {list(table.columns)})")
        table = table.rename(columns={series_column: "series_id", value_column: "value"})
        table = table.dropna(subset=["value"])
    ts = pd.to_datetime(table[timestamp_column], utc=False)
    if ts.dt.tz is None:
        if not timezone:
            raise SourceFormatError(
                f"{path}: timestamps have no offset; pass --timezone (e.g. UTC or Europe/Paris)"
            )
        ts = ts.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    out = pd.DataFrame(
        {
            "series_id": table["series_id"].astype(str),
            "timestamp": ts.dt.tz_convert("UTC"),
            "value": pd.to_numeric(table["value"], errors="coerce"),
        }
    )
    extra = [c for c in table.columns if c not in {timestamp_column, "series_id", "value"}]
    for column in extra:
        out[column] = table[column]
    return out.sort_values(["series_id", "timestamp"], kind="stable").reset_index(drop=True)
