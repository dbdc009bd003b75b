"""``seqops replay``: the held-back end of the demo lands as live data, a few hours at a time.

``make up`` keeps the last ``replay_days`` of the PJM demo out of the initial ingestion
(``SEQOPS_HOME/data/replay/pjm/heldback.csv``). Each replay step writes the next ``hours`` hours as
one canonical batch (with its interval in ``.meta.json``) into the landing zone, where the real
``ingest_sequences`` path picks it up, and moves the platform clock to the newest hour landed, so
features materialize, forecasts are made "now" and the actuals of earlier forecasts arrive by
ordinary ingestion. Through Airflow (``seqops.platform.replay``) or inline (:func:`step_inline`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from seqops.core.settings import Settings


def replay_file(settings: Settings, dataset: str) -> Path:
    return settings.data_dir / "replay" / dataset / "heldback.csv"


def _position_file(settings: Settings, dataset: str) -> Path:
    return settings.data_dir / "replay" / dataset / "position.json"


def _held_back(settings: Settings, dataset: str):
    import pandas as pd

    path = replay_file(settings, dataset)
    if not path.exists():
        raise FileNotFoundError(
            f"nothing held back for {dataset!r} at {path}: `make up` on a fresh home holds back the "
            "last days of the demo (SEQOPS_REPLAY_DAYS)"
        )
    frame = pd.read_csv(path, dtype={"series_id": str, "timestamp": str})
    frame["ts"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def position(settings: Settings, dataset: str) -> datetime | None:
    """The newest hour replayed so far (None before the first step)."""
    path = _position_file(settings, dataset)
    return datetime.fromisoformat(json.loads(path.read_text())["replayed_until"]) if path.exists() else None


def status(settings: Settings, dataset: str) -> dict[str, Any]:
    frame = _held_back(settings, dataset)
    done = position(settings, dataset)
    left = frame if done is None else frame[frame["ts"] > done]
    return {
        "dataset": dataset,
        "held_back_rows": len(frame),
        "replayed_until": done.isoformat() if done else None,
        "rows_left": len(left),
        "hours_left": int(left["ts"].nunique()),
    }


def next_batch(settings: Settings, dataset: str, hours: int) -> tuple[Path, datetime] | None:
    """Land the next ``hours`` hours of held-back data as one batch; return it and its newest hour."""
    import pandas as pd

    from seqops.core.store import LandingZone, arriving, write_atomic

    frame = _held_back(settings, dataset)
    done = position(settings, dataset)
    left = frame if done is None else frame[frame["ts"] > done]
    if left.empty:
        return None
    stamps = sorted(left["ts"].unique())[:hours]
    part = left[left["ts"].isin(stamps)]
    first, last = pd.Timestamp(stamps[0]), pd.Timestamp(stamps[-1])
    step = settings.dataset(dataset).step
    incoming = LandingZone(settings).incoming(dataset)
    path = incoming / f"{dataset}_replay_{first:%Y%m%dT%H%M}.csv"
    meta = {
        "interval_start": first.isoformat(),
        "interval_end": (last + timedelta(seconds=step.total_seconds())).isoformat(),
    }
    with arriving(path, meta) as tmp:  # the hourly ingest run never claims it half-written
        part[["series_id", "timestamp", "value"]].to_csv(tmp, index=False)
    write_atomic(_position_file(settings, dataset), json.dumps({"replayed_until": last.isoformat()}))
    return path, last.to_pydatetime()


def step_inline(settings: Settings, dataset: str, hours: int = 24) -> dict[str, Any] | None:
    """One replay step without Airflow: land, ingest, materialize, move the clock, forecast, join."""
    from seqops.core.clock import set_clock
    from seqops.flows.features import refresh
    from seqops.flows.forecast import batch_forecast, join_actuals
    from seqops.flows.ingest import land_pending, publish, validate
    from seqops.serving.router import ForecastError

    landed = next_batch(settings, dataset, hours)
    if landed is None:
        return None
    path, newest = landed
    outcomes = []
    for ref in land_pending(settings, dataset):
        outcome = validate(settings, ref)
        if outcome.accepted:
            publish(settings, ref)
        outcomes.append({"batch_id": ref.batch_id, "accepted": outcome.accepted})
    refresh(settings, dataset)
    set_clock(settings, newest)
    try:
        forecast = batch_forecast(settings, dataset)
    except ForecastError as exc:
        forecast = {"skipped": str(exc), "series": exc.problems}
    return {
        "batch": path.name,
        "clock": newest.isoformat(),
        "ingested": outcomes,
        "forecast": forecast,
        "actuals": join_actuals(settings, dataset),
    }
