"""The data stores under ``SEQOPS_HOME/data``: landing zone, raw copies, curated store, quarantine.

Nothing here validates: it moves bytes and rows, and never deletes a batch. The invariant the
ingestion stages keep with these stores: every landed batch has a raw copy, and ends up either
entirely in the curated store or entirely in the quarantine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from seqops.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

BATCH_SUFFIXES = (".csv", ".csv.gz", ".parquet")


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


@dataclass(frozen=True)
class BatchRef:
    """A landed batch: small enough to pass through XCom."""

    dataset: str
    batch_id: str
    sha256: str
    raw_path: str
    original_name: str
    landed_at: str  # ISO 8601 UTC; the first time these bytes landed
    interval_start: str | None = None
    interval_end: str | None = None
    bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BatchRef:
        return cls(**data)


class RawStore:
    """Immutable, content-addressed copies of every batch: ``raw/<dataset>/<sha256><suffix>``."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.raw_dir

    def put(
        self,
        path: Path,
        dataset: str,
        *,
        interval: tuple[str | None, str | None] = (None, None),
    ) -> BatchRef:
        """Copy ``path`` in (once); return its reference. Landing the same bytes again is a no-op."""
        sha = sha256_of(path)
        folder = self.root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{sha}{batch_suffix(path)}"
        meta_path = folder / f"{sha}.json"
        if meta_path.exists():
            return BatchRef.from_dict(json.loads(meta_path.read_text()))
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
        target.chmod(0o444)
        ref = BatchRef(
            dataset=dataset,
            batch_id=sha[:16],
            sha256=sha,
            raw_path=str(target),
            original_name=path.name,
            landed_at=datetime.now(UTC).isoformat(),
            interval_start=interval[0],
            interval_end=interval[1],
            bytes=target.stat().st_size,
        )
        meta_path.write_text(json.dumps(ref.to_dict(), indent=2))
        return ref

    def refs(self, dataset: str) -> list[BatchRef]:
        folder = self.root / dataset
        return [BatchRef.from_dict(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


class LandingZone:
    """Where batches arrive: ``landing/<dataset>/incoming/``; claimed files move to ``landed/``."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.landing_dir

    def incoming(self, dataset: str) -> Path:
        path = self.root / dataset / "incoming"
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
        done = self.root / dataset / "landed"
        done.mkdir(parents=True, exist_ok=True)
        for item in (path, path.with_name(path.name + ".meta.json")):
            if item.exists():
                item.replace(done / item.name)


def _series_dir(root: Path, series_id: str) -> Path:
    return root / f"series_id={quote(series_id, safe='')}"


class CuratedStore:
    """Validated rows only: ``curated/<dataset>/series_id=<id>/batch=<batch_id>.parquet``.

    Files are written per (series, batch), so re-publishing a batch rewrites the same files with the
    same content. Reads resolve overlaps between batches: for one (series_id, timestamp) the row of
    the batch landed last wins, which makes a later batch a correction of an earlier one.
    """

    def __init__(self, settings: Settings) -> None:
        self.root = settings.curated_dir

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / dataset

    def write(self, dataset: str, ref: BatchRef, frame: pd.DataFrame) -> int:
        """Publish a validated canonical frame of ``ref``; return the number of rows written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = frame.copy()
        out["timestamp"] = out["timestamp"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        out["batch_id"] = ref.batch_id
        out["landed_at"] = datetime.fromisoformat(ref.landed_at)
        out["landed_at"] = out["landed_at"].astype("datetime64[us, UTC]")
        written = 0
        for series_id, part in out.groupby("series_id", sort=True):
            folder = _series_dir(self.dataset_dir(dataset), str(series_id))
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"batch={ref.batch_id}.parquet"
            tmp = target.with_name(target.name + ".part")
            table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
            pq.write_table(table, tmp)
            tmp.replace(target)
            written += len(part)
        return written

    def files(self, dataset: str, series_ids: Iterable[str] | None = None) -> list[Path]:
        root = self.dataset_dir(dataset)
        if series_ids is None:
            return sorted(root.glob("series_id=*/batch=*.parquet"))
        return sorted(p for s in series_ids for p in _series_dir(root, s).glob("batch=*.parquet"))

    def read(
        self,
        dataset: str,
        *,
        series_ids: Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        with_lineage: bool = False,
    ) -> pd.DataFrame:
        """Curated rows, one per (series_id, timestamp), sorted; ``[start, end)`` filters timestamps."""
        import pandas as pd
        import pyarrow.dataset as ds

        files = self.files(dataset, series_ids)
        if not files:
            return pd.DataFrame(
                {
                    "series_id": pd.Series(dtype="string"),
                    "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
                    "value": pd.Series(dtype="float64"),
                }
            )
        dataset_ = ds.dataset([str(p) for p in files], format="parquet")
        expr = None
        if start is not None:
            expr = ds.field("timestamp") >= pd.Timestamp(start).tz_convert("UTC")
        if end is not None:
            cond = ds.field("timestamp") < pd.Timestamp(end).tz_convert("UTC")
            expr = cond if expr is None else expr & cond
        frame = dataset_.to_table(filter=expr).to_pandas()
        frame = frame.sort_values(["series_id", "timestamp", "landed_at"], kind="stable")
        frame = frame.drop_duplicates(["series_id", "timestamp"], keep="last").reset_index(drop=True)
        if not with_lineage:
            frame = frame.drop(columns=["batch_id", "landed_at"])
        return frame

    def series(self, dataset: str) -> set[str]:
        from urllib.parse import unquote

        root = self.dataset_dir(dataset)
        return {unquote(p.name.split("=", 1)[1]) for p in root.glob("series_id=*") if p.is_dir()}

    def has_batch(self, dataset: str, batch_id: str) -> bool:
        return any(self.dataset_dir(dataset).glob(f"series_id=*/batch={batch_id}.parquet"))


class Quarantine:
    """Rejected batches, whole: ``quarantine/<dataset>/<batch_id>/`` with the batch and its reports."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.quarantine_dir

    def folder(self, dataset: str, batch_id: str) -> Path:
        return self.root / dataset / batch_id

    def put(self, ref: BatchRef) -> Path:
        """Copy the batch in; the caller writes its reports into the returned folder."""
        folder = self.folder(ref.dataset, ref.batch_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"batch{batch_suffix(Path(ref.raw_path))}"
        if not target.exists():
            shutil.copyfile(ref.raw_path, target)
        (folder / "batch.json").write_text(json.dumps(ref.to_dict(), indent=2))
        return folder

    def batches(self, dataset: str) -> list[str]:
        root = self.root / dataset
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
