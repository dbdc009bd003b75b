"""The router: which model answers for which series, the same for online and batch forecasts.

Modes (``seqops.registry.registry.Route``, set on the registered model by the promotion flow):

* ``champion``: the ``champion`` alias serves every series (the ``challenger`` when there is no
  champion yet: the first model);
* ``shadow``: the champion serves; the challenger forecasts the same inputs off the served path,
  logged with ``served = False`` and never returned;
* ``canary``: a stable hash of ``series_id`` sends ``canary_share`` of the series to the challenger;
  the champion still forecasts those series off the served path (logged, not returned), so the
  canary is judged on paired forecasts of the same series and origins.

Models load by alias and reload when an alias moves (:meth:`Router.refresh`): the new model is
loaded first and swapped in one assignment, so no request fails; a model that fails to load leaves
the last good one serving and the reason in :attr:`Router.errors`.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from seqops.core.settings import Settings

if TYPE_CHECKING:
    from seqops.features.store import OnlineWindows
    from seqops.registry.packaging import ForecasterBundle
    from seqops.serving.log import LoggedForecast

CHAMPION, CHALLENGER = "champion", "challenger"


def canary_arm(series_id: str, share: float) -> str:
    """The arm a series gets in canary mode: stable across processes and restarts (sha256, not hash())."""
    bucket = int(hashlib.sha256(series_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return CHALLENGER if bucket < share else CHAMPION


@dataclass(frozen=True)
class LoadedModel:
    alias: str
    name: str
    version: str
    run_id: str
    bundle: ForecasterBundle
    loaded_at: float


@dataclass(frozen=True)
class SeriesForecast:
    """What one series gets back: the served forecast and where it came from."""

    series_id: str
    origin: datetime
    arm: str
    model_name: str
    model_version: str
    alias: str
    forecast: list[float]
    timestamps: list[str]


class ForecastError(ValueError):
    """A request the router cannot answer; ``problems`` says why, per series (a 4xx)."""

    def __init__(self, message: str, problems: dict[str, str]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class Router:
    """Forecasts for one dataset from the Feast online store, routed by the registry's aliases."""

    settings: Settings
    dataset: str
    refresh_s: float = 30.0
    models: dict[str, LoadedModel] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    route: Any = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader: Any = None  # the dataset's Feast online reader, resolved on refresh
    _background: threading.Thread | None = None

    def refresh_in_background(self) -> None:
        """Check aliases and route every ``refresh_s`` on a daemon thread, never on a request's path
        (a registry round trip or a model load would otherwise stall the request that triggers it)."""
        if self._background is not None or self.refresh_s <= 0:  # 0: every request checks (tests)
            return

        def loop() -> None:
            while True:
                time.sleep(self.refresh_s)
                try:
                    self.refresh(force=True)
                except Exception as exc:  # keep serving what is loaded; say why on /v1/models
                    self.errors["refresh"] = f"refresh failed: {exc}"
                else:
                    self.errors.pop("refresh", None)

        self._background = threading.Thread(target=loop, name=f"refresh-{self.dataset}", daemon=True)
        self._background.start()

    # ---- models -----------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload a model whose alias moved, and the route; keep the last good model on failure."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s:
            return
        with self._lock:
            if not force and now - self._checked < self.refresh_s:
                return
            self._checked = now
            from seqops.registry.packaging import load_bundle
            from seqops.registry.registry import Registry, get_route

            registry = Registry(self.settings)
            self.route = get_route(registry, self.dataset)
            models = dict(self.models)
            for alias in (CHAMPION, CHALLENGER):
                try:
                    version = registry.by_alias(self.dataset, alias)
                except Exception as exc:  # registry unreachable: keep serving what is loaded
                    self.errors[alias] = f"registry: {exc}"
                    continue
                if version is None:
                    models.pop(alias, None)
                    continue
                current = models.get(alias)
                if current is not None and current.version == version.version:
                    continue
                try:
                    bundle = load_bundle(f"models:/{version.name}/{version.version}")
                except Exception as exc:
                    self.errors[alias] = (
                        f"version {version.version} failed to load ({exc}); still serving "
                        + (f"version {current.version}" if current else "nothing for this alias")
                    )
                    continue
                models[alias] = LoadedModel(alias, version.name, version.version, version.run_id, bundle, now)
                self.errors.pop(alias, None)
            loaded = any(self.models.get(a) is not m for a, m in models.items())
            self.models = models  # one assignment: a request sees the old set or the new, never half
            if loaded and self._background is not None:  # a long-lived service: keep the heap frozen
                freeze_heap()
            try:  # the reader depends on settings that may change between checks (the store config)
                from seqops.features.store import online_reader

                self._reader = online_reader(self.dataset, self.settings)
            except Exception:  # feature store not readable yet: read_online resolves it per request
                self._reader = None

    def served_model(self) -> LoadedModel | None:
        """The model that answers in champion mode: the champion, else the first model (challenger)."""
        return self.models.get(CHAMPION) or self.models.get(CHALLENGER)

    @property
    def ready(self) -> bool:
        return self.served_model() is not None

    # ---- forecasting -------------------------------------------------------------------------------
    def _assign(self, series_ids: list[str]) -> tuple[dict[str, LoadedModel], dict[str, LoadedModel]]:
        """(served model per series, shadow model per series) under the current route."""
        models, route = self.models, self.route
        served = self.served_model()
        if served is None:
            raise ForecastError("no model to serve: register one (train_forecaster)", {})
        challenger, champion = models.get(CHALLENGER), models.get(CHAMPION)
        mode = route.mode if route is not None else "champion"
        has_both = champion is not None and challenger is not None and challenger.version != champion.version
        serving = dict.fromkeys(series_ids, served)
        shadow: dict[str, LoadedModel] = {}
        if has_both and mode == "shadow":
            shadow = dict.fromkeys(series_ids, challenger)
        elif has_both and mode == "canary":
            for sid in series_ids:
                if canary_arm(sid, route.canary_share) == CHALLENGER:
                    serving[sid] = challenger
                    shadow[sid] = champion  # the champion's forecast of a canary series: paired evidence
        return serving, shadow

    def forecast(
        self,
        series_ids: list[str],
        *,
        as_of: datetime | None = None,
        request_id: str,
        source: str = "online",
        shadow_later: list | None = None,
        windows: OnlineWindows | None = None,
    ) -> tuple[list[SeriesForecast], list[LoggedForecast]]:
        """Forecast ``series_ids`` from their online windows at ``as_of``.

        Returns:
            The served forecasts and the log rows of the served arm. The shadow arm's work is
            appended to ``shadow_later`` as :class:`ShadowJob` objects (run them off the served
            path, many at once with :func:`shadow_rows`), or computed now when ``shadow_later`` is
            None. ``windows``: the series' online windows when the caller has read them already
            (read at ``as_of``).

        Raises:
            ForecastError: a series has no usable window (unknown, missing, stale, torn), or no
                model is loaded; ``problems`` names each series and why.
        """
        (answer,) = self.forecast_many(
            [(request_id, series_ids)], as_of=as_of, source=source, shadow_later=shadow_later, windows=windows
        )
        if isinstance(answer, ForecastError):
            raise answer
        return answer

    def forecast_many(
        self,
        requests: list[tuple[str, list[str]]],
        *,
        as_of: datetime | None = None,
        source: str = "online",
        shadow_later: list | None = None,
        windows: OnlineWindows | None = None,
    ) -> list[tuple[list[SeriesForecast], list[LoggedForecast]] | ForecastError]:
        """:meth:`forecast` for several requests (request id, series ids) at one ``as_of``, with one
        online read and one forward pass per model for all of them; the answers equal those of one
        request at a time (rows are independent in the model). Returns, per request, its served
        forecasts and log rows, or the :class:`ForecastError` that refuses it."""
        from seqops.core.clock import now
        from seqops.features.store import read_online

        as_of = as_of or now(self.settings)  # the platform clock: a replay's moment, else real time
        if self._background is None:
            self.refresh()
        asked = [[str(s) for s in ids] for _, ids in requests]
        union = list(dict.fromkeys(sid for ids in asked for sid in ids))
        if not union:
            return [ForecastError("no series requested", {}) for _ in requests]
        if windows is not None:  # already read by the caller (the batch forecast), at ``as_of``
            windows = windows.select(union)
        elif self._reader is not None:
            windows = self._reader.read(union, as_of)
        else:
            windows = read_online(self.dataset, union, as_of=as_of, settings=self.settings)
        status = dict(zip(union, windows.status, strict=True))
        usable = [sid for sid in union if status[sid] == "present"]
        try:
            serving, shadow = self._assign(usable)
            unserved = None
        except ForecastError as exc:  # no model: the requests whose series are usable hear it
            serving, shadow, unserved = {}, {}, exc
        mode = self.route.mode if self.route is not None else "champion"
        row = {sid: k for k, sid in enumerate(union)}
        forecasts: dict[str, SeriesForecast] = {}
        for model, idx in _groups(serving, usable):
            rows = [row[usable[i]] for i in idx]
            for i, pred in zip(rows, _predict(model, windows, rows), strict=True):
                forecasts[union[i]] = _series_forecast(model, windows, i, pred)

        answers: list = []
        for (request_id, _), ids in zip(requests, asked, strict=True):
            unique = list(dict.fromkeys(ids))
            problems = {sid: status[sid] for sid in unique if status[sid] != "present"}
            if not ids:
                answers.append(ForecastError("no series requested", {}))
            elif problems:
                answers.append(
                    ForecastError(
                        f"{len(problems)} of {len(unique)} series have no usable features at "
                        f"{windows.as_of.isoformat()}",
                        problems,
                    )
                )
            elif unserved is not None:
                answers.append(unserved)
            else:
                out = [forecasts[sid] for sid in unique]
                logged = [
                    _logged(self.dataset, request_id, f, serving[f.series_id], True, mode, source)
                    for f in out
                ]
                jobs = [
                    ShadowJob(
                        self.dataset,
                        request_id,
                        mode,
                        source,
                        model,
                        windows.select([unique[i] for i in idx]),
                    )
                    for model, idx in _groups(shadow, unique)
                ]
                if jobs and shadow_later is None:
                    logged.extend(shadow_rows(jobs))
                elif jobs:
                    shadow_later.extend(jobs)
                answers.append((out, logged))
        return answers


@dataclass(frozen=True)
class ShadowJob:
    """The off-path forecasts of one request: ``model`` forecasts ``windows`` (logged, not served)."""

    dataset: str
    request_id: str
    mode: str
    source: str
    model: LoadedModel
    windows: OnlineWindows


def shadow_rows(jobs: list[ShadowJob]) -> list[LoggedForecast]:
    """The log rows of many shadow jobs, with one forward pass per model version.

    A forward pass over a batch of windows costs little more than over one, so a service that
    gathers the shadow jobs of concurrent requests scores them for a fraction of the served cost.
    The forecasts equal those of one job at a time: rows are independent in the model.
    """
    import dataclasses

    by_version: dict[tuple[str, str], list[ShadowJob]] = {}
    for job in jobs:
        by_version.setdefault((job.model.alias, job.model.version), []).append(job)
    rows: list[LoggedForecast] = []
    for group in by_version.values():
        model, parts = group[0].model, [job.windows for job in group]
        windows = parts[0]
        if len(parts) > 1:
            windows = dataclasses.replace(
                parts[0],
                series_ids=tuple(s for p in parts for s in p.series_ids),
                x=np.concatenate([p.x for p in parts]),
                calendar=np.concatenate([p.calendar for p in parts]),
                scale=np.concatenate([p.scale for p in parts]),
                window_end=np.concatenate([p.window_end for p in parts]),
                status=tuple(s for p in parts for s in p.status),
            )
        preds = _predict(model, windows, list(range(len(windows.series_ids))))
        i = 0
        for job in group:
            for _ in job.windows.series_ids:
                sf = _series_forecast(model, windows, i, preds[i])
                rows.append(_logged(job.dataset, job.request_id, sf, model, False, job.mode, job.source))
                i += 1
    return rows


def _groups(assignment: dict[str, LoadedModel], ids: list[str]) -> list[tuple[LoadedModel, list[int]]]:
    by_version: dict[tuple[str, str], tuple[LoadedModel, list[int]]] = {}
    for i, sid in enumerate(ids):
        model = assignment.get(sid)
        if model is not None:
            by_version.setdefault((model.alias, model.version), (model, []))[1].append(i)
    return list(by_version.values())


@functools.lru_cache(maxsize=8)
def _positions(series_ids: tuple[str, ...]) -> dict[str, int]:
    """Series id -> the model's embedding row, once per model (not per request: 10k series)."""
    return {s: k for k, s in enumerate(series_ids)}


def _predict(model: LoadedModel, windows: OnlineWindows, idx: list[int]) -> np.ndarray:
    """The model's point forecasts for rows ``idx`` of the online windows: the training inputs, exactly."""
    from seqops.core.windows import WindowSet
    from seqops.training.train import predict

    bundle = model.bundle
    sel = np.asarray(idx)
    position = _positions(bundle.series_ids)
    n_cal = bundle.n_calendar
    calendar = windows.calendar[sel] if n_cal else np.zeros((len(sel), bundle.config.horizon, 0), np.float32)
    ws = WindowSet(
        x=windows.x[sel],
        y=np.full((len(sel), bundle.config.horizon), np.nan, np.float32),
        series_idx=np.array([position.get(windows.series_ids[i], -1) for i in idx], dtype=np.int64),
        origin=windows.window_end[sel].astype("datetime64[ns]"),
        calendar=calendar,
        scale=windows.scale[sel],
        series_ids=bundle.series_ids,
        step=bundle.step,
        calendar_tz=bundle.calendar_tz,
    )
    pred = predict(bundle.model, ws)
    if pred.ndim == 3:  # quantile model: serve the median
        qs = bundle.config.quantiles
        pred = pred[..., int(np.argmin([abs(q - 0.5) for q in qs]))]
    return pred


def _series_forecast(model: LoadedModel, windows: OnlineWindows, i: int, pred: np.ndarray) -> SeriesForecast:
    end = windows.window_end[i].astype("datetime64[ns]")
    return SeriesForecast(
        series_id=windows.series_ids[i],
        origin=end.astype("datetime64[us]").item().replace(tzinfo=UTC),
        arm=model.alias,
        model_name=model.name,
        model_version=model.version,
        alias=model.alias,
        forecast=pred.astype(float).tolist(),
        timestamps=_stamps(end, model.bundle.step, len(pred)),
    )


@functools.lru_cache(maxsize=64)
def _step(step: str) -> np.timedelta64:
    import pandas as pd

    return np.timedelta64(pd.Timedelta(step).value, "ns")


def _stamps(end: np.datetime64, step: str, n: int) -> list[str]:
    """ISO 8601 UTC times of the ``n`` steps after ``end``, as pandas' ``isoformat`` writes them."""
    delta = _step(step)
    times = end + delta * np.arange(1, n + 1)
    second = np.timedelta64(1, "s")
    if delta % second == np.timedelta64(0) and end.astype("datetime64[s]") == end:  # whole seconds
        return [t + "+00:00" for t in np.datetime_as_string(times, unit="s")]  # numpy: 50x faster
    import pandas as pd

    return [pd.Timestamp(t).tz_localize("UTC").isoformat() for t in times]


def _logged(
    dataset, request_id, sf: SeriesForecast, model: LoadedModel, served, mode, source
) -> LoggedForecast:
    from seqops.serving.log import LoggedForecast

    return LoggedForecast(
        request_id=request_id,
        dataset=dataset,
        series_id=sf.series_id,
        origin=sf.origin,
        model_name=model.name,
        model_version=model.version,
        alias=model.alias,
        arm=model.alias,
        served=served,
        mode=mode,
        forecast=sf.forecast,
        step_seconds=int(_step(model.bundle.step) // np.timedelta64(1, "s")),
        source=source,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def freeze_heap() -> None:
    """Move everything alive now (Feast, MLflow, torch, the models) out of the collector's reach.

    The imports leave millions of objects on the heap; a full collection walks all of them, and the
    allocations of a busy service trigger one every few seconds: 150-200 ms during which no
    request is answered (measured: it was the served p99 in shadow mode). After ``gc.freeze`` a
    collection walks only what requests allocated.
    """
    import gc

    gc.collect()
    gc.freeze()
