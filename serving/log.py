"""The prediction log: every forecast served or shadowed, its lineage, and later its actuals.

SQLite under ``SEQOPS_HOME/serving/`` (embedded) or PostgreSQL (``SEQOPS_PREDICTION_LOG_URL``), through
SQLAlchemy Core. A forecast is acknowledged only after its rows are committed; (request_id,
series_id, arm) is unique, so a retried request or batch never logs a forecast twice.

Concurrent requests of one process share commits (group commit): a writer takes every row waiting
at that moment into one transaction and each request returns once the transaction holding its rows
committed. SQLite allows one writer at a time and its busy handler sleeps up to 100 ms between
retries, so separate commits from many threads queue behind each other's fsyncs and sleeps; one
writer per process never waits on another and pays one commit for many requests. SQLite runs in WAL
mode with ``synchronous=NORMAL``: a commit is in the WAL file before the answer, so it survives a
killed process (a power cut can lose the last commits; the production profile logs to PostgreSQL).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from seqops.core.settings import Settings

_ENGINES: dict[str, Any] = {}
_WRITERS: dict[str, _GroupCommit] = {}
_WRITERS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoggedForecast:
    """One forecast of one series from one origin by one model (one arm)."""

    request_id: str
    dataset: str
    series_id: str
    origin: datetime  # the window end: the feature timestamp the forecast was made from
    model_name: str
    model_version: str
    alias: str
    arm: str  # "champion" or "challenger"
    served: bool  # returned to the caller (False: shadow)
    mode: str  # routing mode at the time
    forecast: list[float]
    step_seconds: int
    source: str = "online"  # "online" or "batch"

    def row(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict would deep-copy the list
        out["forecast"] = json.dumps(self.forecast)
        out["origin"] = self.origin.astimezone(UTC).replace(tzinfo=None)
        out["horizon"] = len(self.forecast)
        out["created_at"] = datetime.now(UTC).replace(tzinfo=None)
        return out


def _table(metadata: Any) -> Any:
    from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, Text, UniqueConstraint

    return Table(
        "predictions",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(128), nullable=False),
        Column("dataset", String(64), nullable=False),
        Column("series_id", String(512), nullable=False),
        Column("origin", DateTime, nullable=False),  # UTC
        Column("horizon", Integer, nullable=False),
        Column("step_seconds", Integer, nullable=False),
        Column("model_name", String(256), nullable=False),
        Column("model_version", String(32), nullable=False),
        Column("alias", String(64), nullable=False),
        Column("arm", String(16), nullable=False),
        Column("served", Boolean, nullable=False),
        Column("mode", String(16), nullable=False),
        Column("source", String(16), nullable=False),
        Column("forecast", Text, nullable=False),  # JSON list of H floats
        Column("actual", Text, nullable=True),  # JSON list of H floats, once they all arrived
        Column("created_at", DateTime, nullable=False),
        Column("actual_at", DateTime, nullable=True),
        UniqueConstraint("request_id", "series_id", "arm", name="one_forecast_per_arm"),
    )


class PredictionLog:
    """Write forecasts, join actuals, read back with lineage."""

    def __init__(self, settings: Settings) -> None:
        from sqlalchemy import MetaData, create_engine

        url = settings.prediction_log_uri
        with _WRITERS_LOCK:
            engine = _ENGINES.get(url)
            if engine is None:
                if url.startswith("sqlite:///"):
                    settings.serving_dir.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, pool_pre_ping=True)
                if engine.dialect.name == "sqlite":
                    _sqlite_wal(engine)
                _ENGINES[url] = engine
        self.engine = engine
        self.metadata = MetaData()
        self.table = _table(self.metadata)
        self.metadata.create_all(engine, checkfirst=True)
        with _WRITERS_LOCK:
            self._writer = _WRITERS.setdefault(url, _GroupCommit(engine, self.table))

    def record(self, forecasts: Iterable[LoggedForecast]) -> int:
        """Insert forecasts, committed when this returns; ones already logged (same request, series,
        arm) are kept as they are. Returns how many rows were new."""
        rows = [f.row() for f in forecasts]
        if not rows:
            return 0
        return self._writer.commit(rows)

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Logged rows matching ``where`` (column = value), oldest first, forecasts decoded."""
        from sqlalchemy import select

        t = self.table
        query = select(t).order_by(t.c.id)
        for column, value in where.items():
            query = query.where(t.c[column] == value)
        with self.engine.connect() as conn:
            return [_decode(dict(r._mapping)) for r in conn.execute(query)]

    def between(
        self, dataset: str, start: datetime, end: datetime, *, model_version: str | None = None
    ) -> list[dict[str, Any]]:
        """Logged rows of ``dataset`` whose origin is in ``[start, end)``, oldest first."""
        from sqlalchemy import select

        t = self.table
        naive = [_naive_utc(start), _naive_utc(end)]
        query = select(t).where(t.c.dataset == dataset, t.c.origin >= naive[0], t.c.origin < naive[1])
        if model_version is not None:
            query = query.where(t.c.model_version == str(model_version))
        with self.engine.connect() as conn:
            return [_decode(dict(r._mapping)) for r in conn.execute(query.order_by(t.c.id))]

    def waiting_for_actuals(self, dataset: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        t = self.table
        query = select(t).where(t.c.dataset == dataset, t.c.actual.is_(None)).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [_decode(dict(r._mapping)) for r in conn.execute(query)]

    def set_actuals(self, actuals: dict[int, list[float]]) -> int:
        from sqlalchemy import update

        t = self.table
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            for row_id, values in actuals.items():
                conn.execute(
                    update(t).where(t.c.id == row_id).values(actual=json.dumps(values), actual_at=now)
                )
        return len(actuals)


class _GroupCommit:
    """One writer per process and database: rows of concurrent callers share a transaction.

    A caller queues its rows; if no transaction is under way it becomes the writer and commits
    everything queued (its own rows and those of callers that arrived meanwhile), else it waits for
    the transaction that takes its rows. A failed transaction fails every caller whose rows it held.
    """

    def __init__(self, engine: Any, table: Any) -> None:
        self.engine, self.table = engine, table
        self._cond = threading.Condition()
        self._queue: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self._writing = False

    def commit(self, rows: list[dict[str, Any]]) -> int:
        ticket: dict[str, Any] = {}
        with self._cond:
            self._queue.append((rows, ticket))
            while "done" not in ticket and self._writing:
                self._cond.wait()
            if "done" not in ticket:  # nobody is writing and ours is still queued: write
                self._writing = True
                batch, self._queue = self._queue, []
        if "done" not in ticket:
            try:
                counts, error = self._write([r for r, _ in batch]), None
            except BaseException as exc:  # every caller in the batch hears of it
                counts, error = [0] * len(batch), exc
            with self._cond:
                for (_, t), n in zip(batch, counts, strict=True):
                    t["done"], t["count"], t["error"] = True, n, error
                self._writing = False
                self._cond.notify_all()
        if ticket["error"] is not None:
            raise ticket["error"]
        return ticket["count"]

    def _write(self, batches: list[list[dict[str, Any]]]) -> list[int]:
        """Insert the batches in one transaction; (request, series, arm) already there is skipped."""
        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        t = self.table
        try:  # the common case, nothing logged before: one statement
            with self.engine.begin() as conn:
                conn.execute(t.insert(), [r for rows in batches for r in rows])
            return [len(rows) for rows in batches]
        except IntegrityError:  # a retried request or a re-run batch: find what is there first
            pass
        requests = sorted({r["request_id"] for rows in batches for r in rows})
        with self.engine.begin() as conn:
            present = set()
            for i in range(0, len(requests), 500):  # bounded IN lists (SQLite's variable limit)
                # by request id alone: the unique index leads with it (a row-value IN list would
                # make SQLite scan the whole table)
                part = requests[i : i + 500]
                query = select(t.c.request_id, t.c.series_id, t.c.arm).where(t.c.request_id.in_(part))
                present |= {tuple(k) for k in conn.execute(query)}
            counts, fresh = [], []
            for rows in batches:
                new = []
                for r in rows:
                    key = (r["request_id"], r["series_id"], r["arm"])
                    if key not in present:
                        present.add(key)  # the same forecast twice in one batch is logged once
                        new.append(r)
                counts.append(len(new))
                fresh.extend(new)
            if fresh:
                conn.execute(t.insert(), fresh)
        return counts


def _sqlite_wal(engine: Any) -> None:
    """WAL journal (readers never block the writer), NORMAL sync (see the module), a busy timeout."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def _naive_utc(moment: datetime) -> datetime:
    """A naive UTC datetime, as the log stores origins."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["forecast"] = json.loads(row["forecast"])
    row["actual"] = json.loads(row["actual"]) if row["actual"] else None
    row["origin"] = row["origin"].replace(tzinfo=UTC)
    return row
