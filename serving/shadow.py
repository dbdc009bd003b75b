"""Shadow scoring off the served path, in batches.

The service answers a request first; its shadow work (the challenger in shadow mode, the champion's
paired forecast of a canary series) goes to one scorer thread. The scorer gathers the jobs that
arrive within ``LINGER_S`` of the first (up to ``MAX_BATCH``), scores them together
(``shadow_rows``: one forward pass per model version) and logs them in one commit, so the jobs of
many requests share a pass and the shadow arm costs the served one little.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqops.serving.log import PredictionLog
    from seqops.serving.router import ShadowJob

#: Jobs scored in one pass at most (a bounded forward pass and commit).
MAX_BATCH = 256
#: How long the scorer gathers jobs after the first before it scores them: a pass over a few dozen
#: windows costs about what a pass over one does, so waiting a little saves most of the shadow work.
LINGER_S = 0.05


class ShadowScorer:
    """One daemon thread that scores and logs shadow jobs; :meth:`submit` returns a future.

    The queue is bounded: when shadow scoring cannot keep up, new jobs are refused (``submit``
    returns None, ``dropped`` counts them) rather than letting memory grow; the served path never
    waits on it.
    """

    def __init__(self, log: PredictionLog, *, linger_s: float = LINGER_S, max_queued: int = 10_000) -> None:
        self.log, self.linger_s = log, linger_s
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def submit(self, jobs: list[ShadowJob]) -> Future | None:
        """Queue one request's jobs; the future resolves once their rows are committed."""
        done: Future = Future()
        try:
            self._queue.put_nowait((jobs, done))
        except queue.Full:
            self.dropped += len(jobs)
            return None
        return done

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
            batch = [first]
            stop = False
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
            try:
                self.log.record(shadow_rows([job for jobs, _ in batch for job in jobs]))
            except BaseException as exc:  # every waiting request's background task hears of it
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)
            if stop:
                return
