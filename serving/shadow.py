"""Shadow scoring off the served path: in batches, in a process of its own.

The service answers a request first; its shadow work (the challenger in shadow mode, the champion's
paired forecast of a canary series) goes to a queue, and the request is done: nothing on the served
path waits for shadow work. A gathering thread takes the jobs that arrive within ``LINGER_S`` of the
first (up to ``MAX_BATCH``) and hands them to :class:`ShadowProcess`, which scores them together
(``shadow_rows``: one forward pass per model version) and logs them in one commit, so the jobs of many
requests share a pass.

Scoring runs in a separate process, not a thread of the service: a forward pass holds the GIL, so a
scorer thread stalls the requests being answered (measured: a thread added 23 % to the served p99 at
8 clients); a process runs on another core, at a lower CPU priority (``NICENESS``) so that on a busy
machine the served arm keeps the CPU and the shadow arm takes what is left (when it cannot keep up,
the bounded queue refuses jobs and the service counts them in ``seqops_shadow_dropped_total``).
Shadow rows land in the log shortly after the answer (the ``seqops_shadow_latency_seconds`` histogram
says how long after); the service drains the queue when it stops.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from seqops.core.settings import Settings
    from seqops.features.store import OnlineWindows
    from seqops.serving.router import LoadedModel, ShadowJob

log = logging.getLogger(__name__)

#: Jobs scored in one pass at most (a bounded forward pass and commit).
MAX_BATCH = 256
#: How long the scorer gathers jobs after the first before it scores them: a pass over a few dozen
#: windows costs about what a pass over one does, so waiting a little saves most of the shadow work.
LINGER_S = 0.05
#: The scoring process's nice value: below the service's priority, so the served arm wins the CPU.
NICENESS = 10
#: Model versions the scoring process keeps loaded (the champion and challenger of a few datasets).
MODELS_KEPT = 8


class ShadowScorer:
    """One daemon thread that gathers shadow jobs into batches and hands each to ``score``.

    ``score(jobs)`` scores and logs one batch (:meth:`ShadowProcess.score` in the service). The queue
    is bounded: when shadow scoring cannot keep up, :meth:`submit` refuses new jobs (returns False)
    rather than letting memory grow; the served path never waits on it. A batch that fails is logged
    with its error and its jobs reported to ``failed`` (dataset, count); the thread goes on.
    ``observe`` gets (dataset, seconds from submit to commit).
    """

    def __init__(
        self,
        score: Callable[[list[ShadowJob]], Any],
        *,
        observe: Callable[[str, float], None] | None = None,
        failed: Callable[[str, int], None] | None = None,
        linger_s: float = LINGER_S,
        max_queued: int = 10_000,
    ) -> None:
        self.score, self.observe, self.failed, self.linger_s = score, observe, failed, linger_s
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
                self.score(jobs)
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


class _Task(NamedTuple):
    """A shadow job as it crosses to the scoring process: the model by name and version, not its
    weights (the process loads each version once from the registry)."""

    dataset: str
    request_id: str
    mode: str
    source: str
    alias: str
    name: str
    version: str
    run_id: str
    windows: OnlineWindows


class ShadowProcess:
    """Scores and logs shadow batches in a child process (started on the first batch).

    The child loads model versions from the registry by name and version (``MODELS_KEPT`` at most)
    and writes to the same prediction log. A child that dies (killed, out of memory) is replaced and
    its batch scored again by the new one; a batch that kills the new one too fails (the scorer
    reports it).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: Any = None
        self._lock = threading.Lock()

    def score(self, jobs: list[ShadowJob]) -> int:
        """Score and log ``jobs`` in the child; returns how many rows were new in the log."""
        tasks = [
            _Task(j.dataset, j.request_id, j.mode, j.source, *_identity(j.model), j.windows) for j in jobs
        ]
        return self._call(_score_in_child, tasks)

    def warm(self) -> int:
        """Start the child now (imports and registry client take seconds) instead of on the first
        batch; returns its process id."""
        return self._call(os.getpid)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in the child; a child found dead is replaced and the call made once more
        (safe for a batch: the log keeps one row per request, series and arm, so rows a dying child
        committed are not logged twice)."""
        from concurrent.futures.process import BrokenProcessPool

        pool = self._executor()
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            log.warning("the shadow scoring process died; starting a new one")
        return self._executor().submit(fn, *args).result()  # dies again: raised, replaced next call

    def _executor(self) -> Any:
        with self._lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn: the service runs threads (uvicorn, the log writer), which fork would copy mid-state
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_child,
                    initargs=(self.settings,),
                )
            return self._pool


def _identity(model: LoadedModel) -> tuple[str, str, str, str]:
    return model.alias, model.name, model.version, model.run_id


# ---- the child process -----------------------------------------------------------------------------
_CHILD: dict[str, Any] = {}


def _start_child(settings: Settings) -> None:
    import torch

    from seqops.registry.registry import Registry
    from seqops.serving.log import PredictionLog

    os.nice(NICENESS)
    torch.set_num_threads(1)  # one core for shadow work; the others serve
    Registry(settings)  # points MLflow at the platform's tracking server and registry
    _CHILD.update(settings=settings, log=PredictionLog(settings), models={})


def _score_in_child(tasks: list[_Task]) -> int:
    from seqops.serving.router import ShadowJob, shadow_rows

    jobs = [
        ShadowJob(
            t.dataset, t.request_id, t.mode, t.source, _model(t.alias, t.name, t.version, t.run_id), t.windows
        )
        for t in tasks
    ]
    return _CHILD["log"].record(shadow_rows(jobs))


def _model(alias: str, name: str, version: str, run_id: str) -> LoadedModel:
    from seqops.registry.packaging import load_bundle
    from seqops.serving.router import LoadedModel

    models: dict[tuple[str, str], Any] = _CHILD["models"]
    bundle = models.get((name, version))
    if bundle is None:
        bundle = load_bundle(f"models:/{name}/{version}")
        while len(models) >= MODELS_KEPT:
            models.pop(next(iter(models)))  # the oldest loaded
        models[(name, version)] = bundle
    return LoadedModel(alias, name, version, run_id, bundle, 0.0)
