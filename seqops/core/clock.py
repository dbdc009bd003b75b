"""The platform clock: real time, or the moment a replay has reached.

A replay of held-back data (``seqops replay``) lands hours that are years old; the serving side
judges freshness (the TTL) against "now". The replay sets the clock to the newest hour it landed,
in ``SEQOPS_HOME/run/clock.json``, and every process of the platform (DAG tasks, the service)
reads the same moment. Without a replay the clock is the wall clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from seqops.core.settings import Settings


def now(settings: Settings) -> datetime:
    """The platform's current moment (UTC)."""
    path = settings.run_dir / "clock.json"
    if path.exists():
        return datetime.fromisoformat(json.loads(path.read_text())["now"])
    return datetime.now(UTC)


def set_clock(settings: Settings, moment: datetime | None) -> None:
    """Move the platform clock to ``moment`` (tz-aware), or back to real time with None."""
    from seqops.core.store import write_atomic

    path = settings.run_dir / "clock.json"
    if moment is None:
        path.unlink(missing_ok=True)
        return
    if moment.tzinfo is None:
        raise ValueError("the clock needs a tz-aware moment")
    write_atomic(path, json.dumps({"now": moment.astimezone(UTC).isoformat()}))
