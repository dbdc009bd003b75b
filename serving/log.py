"""The prediction log: every forecast served or shadowed, its lineage, and later its actuals.

SQLite under ``SEQOPS_HOME/serving/`` (embedded) or PostgreSQL (``SEQOPS_PREDICTION_LOG_URL``), through
SQLAlchemy Core. A forecast is acknowledged only after its rows are committed; (request_id,
series_id, arm) is unique, so a retried request or batch never logs a forecast twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from seqops.core.settings import Settings

_ENGINES: dict[str, Any] = {}


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
        out = asdict(self)
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
        engine = _ENGINES.get(url)
        if engine is None:
            if url.startswith("sqlite:///"):
                settings.serving_dir.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, pool_pre_ping=True)
            _ENGINES[url] = engine
        self.engine = engine
        self.metadata = MetaData()
        self.table = _table(self.metadata)
        self.metadata.create_all(engine, checkfirst=True)

    def record(self, forecasts: Iterable[LoggedForecast]) -> int:
        """Insert forecasts in one transaction; ones already logged (same request, series, arm) are kept."""
        rows = [f.row() for f in forecasts]
        if not rows:
            return 0
        from sqlalchemy import select, tuple_

        keys = {(r["request_id"], r["series_id"], r["arm"]) for r in rows}
        t = self.table
        with self.engine.begin() as conn:
            present = {
                tuple(k)
                for k in conn.execute(
                    select(t.c.request_id, t.c.series_id, t.c.arm).where(
                        tuple_(t.c.request_id, t.c.series_id, t.c.arm).in_(list(keys))
                    )
                )
            }
            fresh = [r for r in rows if (r["request_id"], r["series_id"], r["arm"]) not in present]
            if fresh:
                conn.execute(t.insert(), fresh)
        return len(fresh)

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
