"""Ingestion stages: land -> validate -> publish (or quarantine). Plain functions, no Airflow.

The ``ingest_sequences`` DAG and ``seqops ingest`` call the same functions. Invariants:

* every batch is copied into the raw store before anything else happens (nothing is lost);
* a batch is published whole (one Delta commit) or quarantined whole, never both: rows landed =
  rows accepted + rows quarantined;
* every outcome after landing is a verdict: a failure while validating or publishing quarantines
  the batch with the reason, never leaves a traceback and a half-written state;
* every stage is idempotent: a landing (same bytes, name and interval) published once stays
  published; one not yet published is validated afresh (a fixed policy gives a fresh verdict).
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from seqops.core.memory import release
from seqops.core.settings import Settings
from seqops.core.store import (
    BatchRef,
    CuratedStore,
    LandingZone,
    Quarantine,
    RawStore,
    raw_file,
    write_atomic,
)


class BatchRejected(RuntimeError):
    """A batch failed validation; it is in the quarantine. The message says why and where."""

    def __init__(self, outcome: IngestOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@dataclass
class IngestOutcome:
    """What happened to one batch. Small and JSON-able (XCom, ``--json``)."""

    dataset: str
    batch_id: str
    source: str
    accepted: bool
    rows_landed: int
    rows_accepted: int
    rows_quarantined: int
    raw_path: str
    report_dir: str
    quarantine_path: str | None
    message: str
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    table_version: int | None = None  # the curated table version that published it

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The one-line JSON summary of ``seqops ingest --json``."""
        keys = (
            "dataset",
            "batch_id",
            "source",
            "accepted",
            "rows_landed",
            "rows_accepted",
            "rows_quarantined",
            "quarantine_path",
            "report_dir",
            "errors",
            "warnings",
            "table_version",
        )
        data = {key: getattr(self, key) for key in keys}
        data["status"] = "accepted" if self.accepted else "rejected"
        return data


def report_dir(settings: Settings, ref: BatchRef) -> Path:
    """Where a batch's validation report lives, accepted or not."""
    return settings.data_dir / "reports" / ref.dataset / ref.batch_id


def land_file(
    settings: Settings,
    path: Path,
    dataset: str,
    *,
    interval: tuple[str | None, str | None] | None = None,
) -> BatchRef:
    """Copy one file into the raw store (content-addressed, once) and return its reference.

    Raises:
        UnknownDatasetError: ``dataset`` is not declared (nothing is landed).
        FileNotFoundError, ValueError: no such file, a symlink, or an interval bound without offset.
    """
    settings.dataset(dataset)  # an unknown name is refused before anything is written
    if path.is_symlink():
        raise ValueError(
            f"{path} is a symbolic link; land the file itself (seqops copies what it is given, "
            "and will not follow a link to somewhere else)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of a CSV or Parquet batch")
    declared = interval or LandingZone.declared_interval(path)
    for bound in declared:
        if bound and datetime.fromisoformat(bound).tzinfo is None:
            raise ValueError(
                f"batch interval bound {bound!r} for {path.name} has no UTC offset; "
                "write it like 2020-01-01T00:00:00Z (in --interval-start/--interval-end or .meta.json)"
            )
    return RawStore(settings).put(path, dataset, interval=declared)


def land_pending(
    settings: Settings, dataset: str, *, claimed: Callable[[BatchRef], None] | None = None
) -> list[BatchRef]:
    """Claim every file waiting in ``landing/<dataset>/incoming``: raw copy first, then archive.

    ``claimed(ref)`` is called for each batch between the two (a run records its claim there).
    """
    zone = LandingZone(settings)
    refs = []
    for path in zone.pending(dataset):
        try:
            refs.append(land_file(settings, path, dataset))
        except FileNotFoundError:
            if path.exists():
                raise
            continue  # removed from incoming meanwhile (claimers take turns, so not by one of them)
        if claimed is not None:
            claimed(refs[-1])
        zone.archive(path, dataset)
    return refs


def _interval(ref: BatchRef) -> tuple[datetime | None, datetime | None] | None:
    if ref.interval_start is None and ref.interval_end is None:
        return None
    parse = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
    return (parse(ref.interval_start), parse(ref.interval_end))


def _read_and_validate(settings: Settings, ref: BatchRef, now: datetime | None):
    """Read, coerce and validate the raw copy chunk by chunk (validation stages the typed chunks
    on disk, so the batch is never held whole). Returns (result, None) or (None, read error)."""
    from seqops.core.canonical import BatchReadError, coerce, iter_batch
    from seqops.validation.validate import validate_batch

    store = CuratedStore(settings)
    spec = settings.dataset(ref.dataset)
    published = store.value_ranges(ref.dataset)
    # the far-outside rule judges a series only once a seasonal cycle of it is published
    history = {s: (r.min, r.max) for s, r in published.items() if r.days >= spec.history_min_days}
    chunks = iter_batch(raw_file(settings, ref.raw_path), max_bytes=settings.max_batch_bytes)
    try:
        result = validate_batch(
            (coerce(chunk) for chunk in chunks),
            spec,
            batch_id=ref.batch_id,
            interval=_interval(ref),
            known_series=set(published),
            history=history,
            now=now or datetime.now(UTC),
            scratch=settings.data_dir / "scratch",
        )
    except BatchReadError as exc:  # the file is not a table (found at any chunk, its end included)
        return None, str(exc)
    return result, None


def _brief(outcome) -> str:
    from seqops.validation.suites import DERIVED_COLUMNS

    shown = DERIVED_COLUMNS.get(outcome.column, outcome.column)  # the user's column, not a helper's
    column = f"[{shown}]" if shown else ""
    return f"{outcome.rule or outcome.expectation}{column}: {outcome.unexpected_count} rows"


#: how long a stage waits for another process working on the same batch (a big batch's validation
#: takes minutes)
BATCH_LOCK_WAIT_S = 3600.0
_held = threading.local()  # the batch locks this thread holds (a nested stage does not wait on itself)


@contextmanager
def batch_lock(settings: Settings, ref: BatchRef) -> Iterator[None]:
    """Hold one batch's lock: stages of the same batch in other processes (two ingests of one
    file, a DAG task and ``seqops ingest``) wait, so a verdict is never written or read half-way.

    Waits up to an hour: the holder is validating or publishing the same batch, whose verdict the
    waiter then reads instead of working it out again.
    """
    from seqops.core.locks import named_lock

    # one of 256 locks a dataset (a lock file each, embedded, not one per batch ever landed); two
    # batches sharing one merely take turns
    name = f"batch-{ref.dataset}-{ref.batch_id[:2]}"
    held = _held.__dict__.setdefault("names", set())
    if name in held:
        yield
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(named_lock(settings, name, timeout=BATCH_LOCK_WAIT_S))
        except TimeoutError as exc:
            raise TimeoutError(
                f"batch {ref.batch_id} ({ref.original_name}, dataset {ref.dataset}) waited "
                f"{BATCH_LOCK_WAIT_S:g} s for lock {name!r}, held all that time by another ingest (of this "
                f"batch, or of one whose id also starts {ref.batch_id[:2]!r}); nothing of it changed here "
                f"and its raw copy is kept at {ref.raw_path}: ingest the file again later"
            ) from exc
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)


def _locked(stage):
    """Run a stage ``(settings, ref, ...)`` under the batch's lock."""

    @functools.wraps(stage)
    def run(settings: Settings, ref: BatchRef, *args, **kwargs):
        with batch_lock(settings, ref):
            return stage(settings, ref, *args, **kwargs)

    return run


@_locked
def validate(settings: Settings, ref: BatchRef, *, now: datetime | None = None) -> IngestOutcome:
    """Validate a landed batch and write its report; quarantine it whole when rejected.

    Does not publish: :func:`publish` does, from the raw copy, only for an accepted batch.
    """
    from seqops.validation.report import write_report

    out_dir = report_dir(settings, ref)
    verdict_file = out_dir / "outcome.json"
    if verdict_file.exists() and CuratedStore(settings).has_batch(ref.dataset, ref.batch_id):
        return IngestOutcome(**json.loads(verdict_file.read_text()))  # published: final
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    rows_read = 0
    try:
        result, read_error = _read_and_validate(settings, ref, now)
    except Exception as exc:  # a crash is a verdict too: the batch is quarantined with the reason
        result, read_error = None, f"validation could not run ({type(exc).__name__}: {exc})"
        rows_read = _count_rows(settings, ref)
    release()  # the batch's frames are gone: publish (often next, in this process) starts low
    return _verdict(settings, ref, out_dir, result, read_error, write_report, rows_read)


def _count_rows(settings: Settings, ref: BatchRef) -> int:
    """The batch's data rows when it can be read at all (so counts reconcile), else 0."""
    from seqops.core.canonical import iter_batch

    try:
        chunks = iter_batch(raw_file(settings, ref.raw_path), max_bytes=settings.max_batch_bytes)
        return sum(len(chunk) for chunk in chunks)
    except Exception:
        return 0


def _verdict(
    settings: Settings, ref: BatchRef, out_dir: Path, result, read_error, write_report, rows_read: int = 0
) -> IngestOutcome:
    """Write the verdict of one batch; quarantine a rejected batch, release an accepted one."""
    if result is None:
        rows = rows_read
        accepted = False
        crashed = rows_read > 0  # readable, but validation itself failed
        errors = [f"{'invalid' if crashed else 'unreadable'}: {read_error}"]
        warnings: list[str] = []
        detail = f"{'cannot validate' if crashed else 'cannot read'} the batch: {read_error}"
        what = f"the whole file ({ref.bytes} bytes, {rows} rows) quarantined, 0 rows published"
        look = "its validation.json"
        (out_dir / "validation.json").write_text(
            json.dumps({"batch": ref.to_dict(), "accepted": False, "read_error": read_error}, indent=2)
        )
    else:
        write_report(result, out_dir)
        rows = result.row_count
        accepted = result.accepted
        errors = [_brief(o) for o in result.errors()]
        warnings = [_brief(o) for o in result.warnings()]
        detail = result.message()
        what = f"{rows} rows quarantined, 0 published"
        look = "data_docs/index.html"
    quarantine_path = None
    released = Quarantine(settings).release(ref.dataset, ref.batch_id) if accepted else None
    if not accepted:
        quarantine = Quarantine(settings)
        quarantine.put(ref, out_dir)
        quarantine_path = quarantine.seal(ref.dataset, ref.batch_id)
        message = (
            f"REJECTED batch {ref.batch_id} ({ref.original_name}, dataset {ref.dataset}): {what}.\n"
            f"{detail}\n"
            f"The batch and its report are in {quarantine_path} (open {look}). Fix the source and land the "
            "corrected file again; nothing from this batch reached the curated store."
        )
    else:
        message = (
            f"ACCEPTED batch {ref.batch_id} ({ref.original_name}, dataset {ref.dataset}): "
            f"{rows} rows published to the curated store.\n{detail}"
        )
        if released is not None:
            message += f"\nAn earlier verdict had quarantined it; that copy moved to {released}."
    outcome = IngestOutcome(
        dataset=ref.dataset,
        batch_id=ref.batch_id,
        source=ref.original_name,
        accepted=accepted,
        rows_landed=rows,
        rows_accepted=rows if accepted else 0,
        rows_quarantined=0 if accepted else rows,
        raw_path=ref.raw_path,
        report_dir=str(out_dir),
        quarantine_path=quarantine_path,
        message=message,
        warnings=warnings,
        errors=errors,
    )
    write_atomic(out_dir / "outcome.json", json.dumps(outcome.to_dict(), indent=2))
    return outcome


@_locked
def publish(settings: Settings, ref: BatchRef) -> int:
    """Write an accepted batch's rows to the curated store (one commit); return its rows.

    Refuses a batch without an accepted verdict, so a rejected batch can never leak rows. A
    failure while publishing leaves the table as it was (the commit is all or nothing) and
    quarantines the batch with the reason (:class:`BatchRejected`). Publishing a published batch
    again writes nothing.
    """
    from seqops.core.canonical import coerce, iter_batch, to_canonical

    verdict_file = report_dir(settings, ref) / "outcome.json"
    if not verdict_file.exists():
        raise RuntimeError(f"batch {ref.batch_id} has no validation verdict; run validate first")
    verdict = json.loads(verdict_file.read_text())
    if not verdict["accepted"]:
        raise BatchRejected(IngestOutcome(**verdict))

    def chunks():  # read afresh for each commit attempt, a chunk at a time
        path = raw_file(settings, ref.raw_path)
        for raw in iter_batch(path, max_bytes=settings.max_batch_bytes):
            yield to_canonical(coerce(raw))

    try:
        # the store counts the streamed rows: another count than the verdict's fails the commit
        done = CuratedStore(settings).write(ref.dataset, ref, chunks, rows=verdict["rows_accepted"])
    except Exception as exc:
        raise BatchRejected(_publish_failed(settings, ref, verdict, exc)) from exc
    verdict["table_version"] = done.version
    write_atomic(verdict_file, json.dumps(verdict, indent=2))
    return done.rows


def _publish_failed(settings: Settings, ref: BatchRef, verdict: dict, exc: Exception) -> IngestOutcome:
    """Quarantine a batch whose publish failed; nothing of it is in the curated store."""
    quarantine = Quarantine(settings)
    folder = quarantine.put(ref)
    where = quarantine.location(ref.dataset, ref.batch_id)
    reason = f"publish failed ({type(exc).__name__}: {exc})"
    rows = verdict["rows_landed"]
    outcome = IngestOutcome(
        **{
            **verdict,
            "accepted": False,
            "rows_accepted": 0,
            "rows_quarantined": rows,
            "quarantine_path": where,
            "errors": [*verdict["errors"], reason],
            "table_version": None,
            "message": (
                f"REJECTED batch {ref.batch_id} ({ref.original_name}, dataset {ref.dataset}): it passed "
                f"validation but {reason}. The curated store is unchanged (0 of {rows} rows published); "
                f"the batch is in {where}. Fix the cause and ingest the file again."
            ),
        }
    )
    text = json.dumps(outcome.to_dict(), indent=2)
    write_atomic(folder / "outcome.json", text)
    quarantine.seal(ref.dataset, ref.batch_id)
    write_atomic(report_dir(settings, ref) / "outcome.json", text)
    return outcome


def ingest_file(
    settings: Settings,
    path: Path,
    dataset: str,
    *,
    interval: tuple[str | None, str | None] | None = None,
    now: datetime | None = None,
) -> IngestOutcome:
    """The whole path for one file: land, validate, then publish or quarantine."""
    ref = land_file(settings, path, dataset, interval=interval)
    with batch_lock(settings, ref):  # a concurrent ingest of the same file waits, then reads this verdict
        outcome = validate(settings, ref, now=now)
        if outcome.accepted:
            try:
                publish(settings, ref)
            except BatchRejected as rejected:
                return rejected.outcome
            return IngestOutcome(**json.loads((report_dir(settings, ref) / "outcome.json").read_text()))
        return outcome


def claim_for_run(settings: Settings, run_id: str | None, *, dataset: str | None = None) -> list[BatchRef]:
    """Land pending batches for one pipeline run, remembering the claim.

    A re-run of the same run id returns the batches it claimed the first time (and claims nothing
    new), so clearing a run re-processes exactly its own batches. Each claim is recorded before its
    file leaves ``incoming``, so a retry of a claim cut short keeps what it had claimed and claims
    the rest: no batch leaves ``incoming`` without belonging to a run.
    """
    from urllib.parse import quote

    from seqops.core.locks import named_lock

    manifest = settings.landing_dir / "_runs" / f"{quote(run_id or 'manual', safe='')}.json"
    # keyed by dataset too: the same bytes, name and interval in two datasets are two batches
    claimed: dict[tuple[str, str], BatchRef] = {}
    if run_id and manifest.exists():
        saved = json.loads(manifest.read_text())
        if isinstance(saved, list):  # written whole, by an earlier seqops: complete
            return [BatchRef.from_dict(item) for item in saved]
        refs = (BatchRef.from_dict(item) for item in saved["refs"])
        claimed = {(ref.dataset, ref.batch_id): ref for ref in refs}
        if saved["complete"]:
            return list(claimed.values())

    def record(ref: BatchRef | None = None) -> None:  # a ref claimed, or None: the claim is complete
        if ref is not None:
            claimed.setdefault((ref.dataset, ref.batch_id), ref)
        if run_id:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            refs = [ref.to_dict() for ref in claimed.values()]
            write_atomic(manifest, json.dumps({"complete": ref is None, "refs": refs}, indent=2))

    if dataset:
        datasets = [dataset]
    elif settings.landing_dir.exists():
        datasets = sorted(p.name for p in settings.landing_dir.iterdir() if (p / "incoming").is_dir())
    else:
        datasets = []
    for name in datasets:
        # one claimer a dataset at a time (the hourly run beside a triggered one or a replay step),
        # so no two both copy a file that one of them then moves away
        with named_lock(settings, f"claim-{name}", timeout=BATCH_LOCK_WAIT_S):
            # each claim recorded before its file leaves incoming
            land_pending(settings, name, claimed=record)
    record()
    return list(claimed.values())


def run_summary(settings: Settings, refs: list[dict]) -> dict:
    """Reconcile a run's batches from their verdicts and the curated store."""
    curated = CuratedStore(settings)
    published_by: dict[str, dict[str, int]] = {}
    published, rejected, pending = [], [], []
    landed = accepted = quarantined = 0
    for item in refs:
        ref = BatchRef.from_dict(item)
        if ref.dataset not in published_by:
            published_by[ref.dataset] = curated.published(ref.dataset)
        verdict_file = report_dir(settings, ref) / "outcome.json"
        if not verdict_file.exists():
            pending.append(ref.batch_id)
            continue
        verdict = json.loads(verdict_file.read_text())
        landed += verdict["rows_landed"]
        accepted += verdict["rows_accepted"]
        quarantined += verdict["rows_quarantined"]
        if not verdict["accepted"]:
            rejected.append(
                {
                    "batch_id": ref.batch_id,
                    "source": ref.original_name,
                    "quarantine_path": verdict["quarantine_path"],
                    "errors": verdict["errors"],
                }
            )
        elif ref.batch_id in published_by[ref.dataset]:
            published.append(
                {"dataset": ref.dataset, "batch_id": ref.batch_id, "rows": verdict["rows_accepted"]}
            )
        else:
            pending.append(ref.batch_id)
    lines = [
        f"{len(refs)} batches: {len(published)} published, {len(rejected)} quarantined, "
        f"{len(pending)} not finished; rows landed {landed} = accepted {accepted} + quarantined {quarantined}"
    ]
    for item in rejected:
        lines.append(
            f"  quarantined {item['batch_id']} ({item['source']}): {'; '.join(item['errors'])} "
            f"-> {item['quarantine_path']}"
        )
    if pending:
        lines.append(
            f"  not finished: {', '.join(pending)} (validate or publish did not complete; the raw copies "
            "are kept: clear this run's failed tasks to finish them)"
        )
    return {
        "batches": len(refs),
        "published": published,
        "rejected": rejected,
        "unfinished": pending,
        "rows_landed": landed,
        "rows_accepted": accepted,
        "rows_quarantined": quarantined,
        "text": "\n".join(lines),
    }
