"""Training-serving parity: the historical (training) path and the online (serving) path must give
the same numbers for the same series at the same moment.

:func:`check_parity` compares, element by element and bit for bit (float32 bit patterns, so NaN
and -0.0 count too), the model inputs of the serving feature service (window ``x``, its end,
``calendar``, ``scale_loc``, ``scale_scale``) as returned by

* the training path: Feast point-in-time historical retrieval (``seqops.features.store.historical``, the
  call ``seqops.features.training_set`` uses), and
* the serving path: the online store read with the TTL enforced (``seqops.features.store.read_online``).

Samples:

1. **latest**: up to ``sample`` random series, each at its newest window end, against the real
   online store. The online row must be that window (an older one means materialization is behind).
2. **replay** (when ``sample`` exceeds the number of series, e.g. 7 PJM zones): the remaining
   samples are drawn as random past moments. The online store only ever holds the newest row, so
   the moments are replayed in time order into a scratch store (same declarations and offline
   store, private registry and SQLite online store): materialize up to the moment, read online as
   of it, compare with historical retrieval at it, for every series. Absent on both sides (a gap,
   an expired window) counts as agreement; absent on one side is a mismatch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

from seqops.core.settings import Settings

MAX_REPORTED = 20


@dataclass
class ParityResult:
    """Counts of a parity check and the first mismatching values."""

    dataset: str
    samples: int = 0  # (series, moment) pairs compared
    latest_samples: int = 0
    replay_samples: int = 0
    replay_moments: int = 0
    both_present: int = 0
    both_absent: int = 0
    mismatched_samples: int = 0
    elements_compared: int = 0
    mismatched_elements: int = 0
    mismatches: list[dict] = field(default_factory=list)  # the first MAX_REPORTED
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No mismatch, and at least one present value was actually compared."""
        return self.mismatched_samples == 0 and self.both_present > 0

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (
            f"parity {verdict} for {self.dataset}: {self.samples} samples ({self.latest_samples} latest, "
            f"{self.replay_samples} replayed at {self.replay_moments} moments), {self.both_present} compared "
            f"({self.elements_compared} values), {self.both_absent} absent on both sides, "
            f"{self.mismatched_samples} mismatching samples / {self.mismatched_elements} values"
        )


def check_parity(
    dataset: str,
    sample: int = 200,
    seed: int = 0,
    *,
    settings: Settings,
) -> ParityResult:
    """Compare historical and online model inputs for ``sample`` (series, moment) pairs.

    Args:
        dataset: a dataset whose windows are built, applied and materialized.
        sample: number of (series, moment) pairs; beyond the number of series, past moments are
            replayed (module docstring).
        seed: seed of the random choice of series and moments.
        settings: platform settings.

    Returns:
        Counts and up to 20 mismatching values; ``result.ok`` is the verdict.
    """
    import numpy as np

    from seqops.features import store
    from seqops.features.tables import latest_window_ends, read_index

    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    result = ParityResult(dataset=dataset)
    latest = latest_window_ends(settings, dataset)
    if latest.empty or sample <= 0:
        result.seconds = time.perf_counter() - began
        return result

    # 1. latest: distinct random series at their newest window, against the real online store
    chosen = sorted(rng.choice(latest.index.to_numpy(), size=min(sample, len(latest)), replace=False))
    for end, group in latest.loc[chosen].groupby(latest.loc[chosen]):
        ids = list(group.index)
        moment = store.utc(end)
        _compare(result, dataset, ids, moment, settings, None, expect_end=moment)
    result.latest_samples = len(chosen)

    # 2. replay: random past moments, all series at each, in a scratch store
    remaining = sample - len(chosen)
    if remaining > 0:
        index = read_index(settings, dataset)
        ends = np.unique(index["window_end"].to_numpy())
        n_moments = min(len(ends), -(-remaining // len(latest)))  # ceil
        moments = np.sort(rng.choice(ends, size=n_moments, replace=False))
        ttl = settings.window(dataset).ttl
        with store.scratch_store(settings) as scratch:
            previous: datetime | None = None
            left = remaining
            for raw in moments:
                moment = store.utc(raw)
                start = previous if previous is not None else moment - ttl
                store.materialize_range(dataset, start, moment, settings, store=scratch)
                ids = list(latest.index)
                if left < len(ids):
                    ids = sorted(rng.choice(ids, size=left, replace=False))
                _compare(result, dataset, ids, moment, settings, scratch, expect_end=None)
                result.replay_samples += len(ids)
                left -= len(ids)
                previous = moment
        result.replay_moments = n_moments
    result.samples = result.latest_samples + result.replay_samples
    result.seconds = round(time.perf_counter() - began, 3)
    return result


def _compare(
    result: ParityResult,
    dataset: str,
    ids: list[str],
    moment: datetime,
    settings: Settings,
    scratch,
    *,
    expect_end: datetime | None,
) -> None:
    """Compare historical and online inputs of ``ids`` at ``moment``; add to ``result``."""
    import numpy as np
    import pandas as pd

    from seqops.features import store

    online = store.read_online(dataset, ids, as_of=moment, settings=settings, store=scratch)
    entity = pd.DataFrame({"series_id": ids, "event_timestamp": pd.Timestamp(moment)})
    hist = store.historical(dataset, entity, service="serving", settings=settings, store=scratch)
    by_id = {sid: i for i, sid in enumerate(hist.column("series_id").to_pylist())}
    h_x = hist.column("x").to_pylist()
    h_cal = hist.column("calendar").to_pylist()
    h_loc = hist.column("scale_loc").to_pylist()
    h_sc = hist.column("scale_scale").to_pylist()
    h_end = hist.column("window_end_unix").to_pylist()
    for k, sid in enumerate(ids):
        i = by_id[sid]
        hist_present = h_x[i] is not None
        online_present = online.status[k] == "present"
        where = {"series_id": sid, "moment": moment.isoformat()}
        if expect_end is not None and hist_present and h_end[i] != int(expect_end.timestamp()):
            _mismatch(result, where, "historical window_end_unix", h_end[i], int(expect_end.timestamp()))
            continue
        if not hist_present and not online_present:
            result.both_absent += 1
            continue
        if hist_present != online_present:
            _mismatch(result, where, "presence", "present" if hist_present else "absent", online.status[k])
            continue
        pairs = {
            "x": (np.asarray(h_x[i], np.float32), online.x[k]),
            "calendar": (np.asarray(h_cal[i], np.float32), online.calendar[k].reshape(-1)),
            "scale": (np.asarray([h_loc[i], h_sc[i]], np.float32), online.scale[k]),
        }
        online_end = int(online.window_end[k].astype("datetime64[s]").astype(np.int64))
        bad = 0
        result.elements_compared += 1
        if h_end[i] != online_end:
            bad += 1
            _record(result, where, "window_end_unix", None, h_end[i], online_end)
        for name, (h, o) in pairs.items():
            if h.shape != o.shape:
                bad += max(h.size, o.size)
                _record(result, where, name, None, f"shape {h.shape}", f"shape {o.shape}")
                continue
            result.elements_compared += h.size
            differ = np.flatnonzero(h.view(np.uint32) != o.view(np.uint32))  # bit-exact
            bad += differ.size
            for j in differ[:3]:
                _record(result, where, name, int(j), float(h[j]), float(o[j]))
        if bad:
            result.mismatched_samples += 1
            result.mismatched_elements += bad
        else:
            result.both_present += 1


def _mismatch(result: ParityResult, where: dict, what: str, historical, online) -> None:
    result.mismatched_samples += 1
    result.mismatched_elements += 1
    _record(result, where, what, None, historical, online)


def _record(result: ParityResult, where: dict, what: str, index, historical, online) -> None:
    if len(result.mismatches) < MAX_REPORTED:
        result.mismatches.append(
            {**where, "feature": what, "index": index, "historical": historical, "online": online}
        )
