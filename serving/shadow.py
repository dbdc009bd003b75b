"""Shadow scoring off the served path, in batches.

The service answers a request first; its shadow work (the challenger in shadow mode, the champion's
paired forecast of a canary series) goes to one scorer thread, and the request is done: nothing on
the served path waits for shadow work. The scorer gathers the jobs that arrive within ``LINGER_S``
of the first (up to ``MAX_BATCH``), scores them together (``shadow_rows``: one forward pass per model
version) and logs them in one commit, so the jobs of many requests share a pass and the shadow arm
costs the served one little. Shadow rows therefore land in the log shortly after the answer (the
``seqops_shadow_latency_seconds`` histogram says how long after); the service drains the queue when
it stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqops.serving.log import PredictionLog
    from seqops.serving.router import ShadowJob

log = logging.getLogger(__name__)

#: Jobs scored in one pass at most (a bounded forward pass and commit).
MAX_BATCH = 256
#: How long the scorer gathers jobs after the first before it scores them: a pass over a few dozen
#: windows costs about what a pass over one does, so waiting a little saves most of the shadow work.
LINGER_S = 0.05


class ShadowScorer:
    """One daemon thread that scores and logs shadow jobs.

    The queue is bounded: when shadow scoring cannot keep up, :meth:`submit` refuses new jobs
    (returns False) rather than letting memory grow; the served path never waits on it. A batch that
    fails to score or commit is logged with its error and its jobs reported to ``failed`` (dataset,
    count); the thread goes on. ``observe`` gets (dataset, seconds from submit to commit).
    """

    def __init__(
        self,
        prediction_log: PredictionLog,
        *,
        observe: Callable[[str, float], None] | None = None,
        failed: Callable[[str, int], None] | None = None,
        linger_s: float = LINGER_S,
        max_queued: int = 10_000,
    ) -> None:
        self.log, self.observe, self.failed, self.linger_s = prediction_log, observe, failed, linger_s
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[ShadowJob]) -> bool:
        """Queue one request's shadow jobs; False when the queue is full (they are not made)."""
        try:
            self._queue.put_nowait((jobs, time.perf_counter()))
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Score what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        from seqops.serving.router import shadow_rows

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            deadline = time.monotonic() + self.linger_s
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            jobs = [job for request_jobs, _ in batch for job in request_jobs]
            try:
                self.log.record(shadow_rows(jobs))
            except Exception:
                if self.failed is not None:
                    for request_jobs, _ in batch:
                        self.failed(request_jobs[0].dataset, len(request_jobs))
                log.exception(
                    "shadow scoring failed for %d jobs; the served forecasts are unaffected", len(jobs)
                )
            else:
                if self.observe is not None:
                    done = time.perf_counter()
                    for request_jobs, queued in batch:
                        self.observe(request_jobs[0].dataset, done - queued)
            if stop:
                return
