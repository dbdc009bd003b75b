"""The online prediction service (FastAPI): ``POST /v1/forecast``, ``/healthz``, ``/readyz``, ``/metrics``.

Every forecast is read from the Feast online store, routed (champion, shadow, canary) and committed
to the prediction log before the response is sent; the shadow arm runs after the response, off the
served path, in a process of its own (``seqops.serving.shadow``). Requests need ``Authorization:
Bearer <token>`` (``SEQOPS_SERVING_TOKEN``, generated into ``SEQOPS_HOME/secrets`` by the launcher);
the probes answer without it and say nothing but status.

    uvicorn --factory seqops.serving.app:create_app   (or: seqops serve)
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.
import asyncio
import json
import logging
import secrets as pysecrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from seqops.core.secrets import stored_secret
from seqops.core.settings import Settings

#: Requests for at most this many series are answered on the event loop, together; larger ones in a thread.
INLINE_SERIES = 16


def create_app(
    settings: Settings | None = None,
    *,
    datasets: list[str] | None = None,
    token: str | None = None,
    refresh_s: float | None = None,
):
    """The service for ``datasets`` (default: every feature dataset) under these settings.

    ``refresh_s``: how often a router checks the registry for moved aliases and a new route
    (default ``settings.serving_refresh_s``).
    """
    from fastapi import Depends, FastAPI, HTTPException, Request, Response
    from fastapi.concurrency import run_in_threadpool
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
    from pydantic import BaseModel, Field

    from seqops.serving.log import PredictionLog
    from seqops.serving.router import ForecastError, Router, freeze_heap
    from seqops.serving.shadow import ShadowProcess, ShadowScorer

    if settings is None:
        from seqops.core.settings import get_settings

        settings = get_settings()
    names = datasets or settings.feature_datasets()
    expected = token or _token(settings)
    every = settings.serving_refresh_s if refresh_s is None else refresh_s
    routers = {name: Router(settings, name, refresh_s=every) for name in names}
    log = PredictionLog(settings)
    process: dict[str, int] = {}  # what startup changed in the process, restored at shutdown

    metrics = CollectorRegistry()
    latency = Histogram(
        "seqops_forecast_latency_seconds",
        "Served forecast latency (feature read, model, log commit), per model arm",
        ["dataset", "model", "version", "arm"],
        registry=metrics,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
    requests_total = Counter(
        "seqops_forecast_requests_total",
        "Forecast requests by outcome",
        ["dataset", "code"],
        registry=metrics,
    )
    errors_total = Counter(
        "seqops_forecast_errors_total", "Series refused, by reason", ["dataset", "reason"], registry=metrics
    )
    freshness = Gauge(
        "seqops_feature_freshness_seconds",
        "Now minus the newest window end served (data freshness lag)",
        ["dataset"],
        registry=metrics,
    )
    model_info = Gauge(
        "seqops_model_loaded",
        "Loaded model versions (1 = loaded)",
        ["dataset", "alias", "version"],
        registry=metrics,
    )
    shadow_seconds = Histogram(
        "seqops_shadow_latency_seconds",
        "Shadow forecasts (off the served path): from the answer to the shadow rows committed",
        ["dataset"],
        registry=metrics,
    )
    shadow_dropped = Counter(
        "seqops_shadow_dropped_total",
        "Shadow forecasts not made because the shadow queue was full",
        ["dataset"],
        registry=metrics,
    )

    batch_size = Histogram(
        "seqops_forecast_batch_requests",
        "Requests answered together (one feature read, one forward pass per model, one log commit)",
        ["dataset"],
        registry=metrics,
        buckets=(1, 2, 4, 8, 16, 32, 64),
    )
    shadow_failed = Counter(
        "seqops_shadow_failed_total",
        "Shadow forecasts lost because scoring or logging them failed (the service log says why)",
        ["dataset"],
        registry=metrics,
    )

    shadow_process = ShadowProcess(settings)
    scorer = ShadowScorer(
        shadow_process.score,
        observe=lambda dataset, seconds: shadow_seconds.labels(dataset).observe(seconds),
        failed=lambda dataset, count: shadow_failed.labels(dataset).inc(count),
    )

    bearer = HTTPBearer(auto_error=False)

    # async: a plain comparison, so it runs on the event loop instead of taking a worker thread
    async def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not pysecrets.compare_digest(credentials.credentials, expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    class ForecastRequest(BaseModel):
        dataset: str = Field(description="A dataset with materialized features.")
        series_ids: list[str] = Field(min_length=1, max_length=10_000)
        as_of: datetime | None = Field(None, description="Serving moment (tz-aware); default now.")

    app = FastAPI(title="seqops prediction service", version="1")
    app.state.shadow_process = shadow_process

    @app.on_event("startup")
    def _load() -> None:
        import torch

        from seqops.features.store import online_reader

        # One thread per forward pass: a request forecasts a few series, where splitting one small
        # matrix product over cores costs more than it saves, and concurrent requests use the cores.
        process["torch_threads"] = torch.get_num_threads()
        torch.set_num_threads(1)

        for name, router in routers.items():
            router.refresh(force=True)
            try:  # open the feature store now (import feast takes seconds), not on the first request
                online_reader(name, settings)
            except Exception as exc:
                router.errors["features"] = f"feature store not readable yet: {exc}"
            router.refresh_in_background()
        if any(r.route is not None and r.route.mode != "champion" for r in routers.values()):
            try:  # shadow work from the first request on: start its process now
                shadow_process.warm()
            except Exception:  # the served arm does not need it; each shadow batch tries again
                logging.getLogger(__name__).exception(
                    "the shadow scoring process did not start; serving goes on, shadow batches retry it"
                )
        freeze_heap()  # after the imports and the models: see freeze_heap

    @app.on_event("shutdown")
    def _drain() -> None:
        import gc

        import torch

        scorer.close()
        shadow_process.close()
        # give the process back as it was (an app run inside another program, e.g. a test session)
        torch.set_num_threads(process.get("torch_threads", torch.get_num_threads()))
        gc.unfreeze()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, Any]:
        ready = {name: router.ready for name, router in routers.items()}
        if not any(ready.values()):  # ready once some dataset has a model; per dataset in the body
            response.status_code = 503
        return {"status": "ready" if any(ready.values()) else "not ready", "datasets": ready}

    @app.get("/metrics", dependencies=[Depends(authorized)])
    def metrics_endpoint() -> Response:
        for name, router in routers.items():
            for alias, model in router.models.items():
                model_info.labels(name, alias, model.version).set(1)
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    def models() -> dict[str, Any]:
        return {
            name: {
                "route": vars(router.route) if router.route is not None else None,
                "models": {a: {"name": m.name, "version": m.version} for a, m in router.models.items()},
                "errors": router.errors,
            }
            for name, router in routers.items()
        }

    def refusal(dataset: str, exc: ForecastError) -> HTTPException:
        for reason in set(exc.problems.values()) or {"no_model"}:
            errors_total.labels(dataset, reason).inc()
        code = 422 if exc.problems else 503
        requests_total.labels(dataset, str(code)).inc()
        return HTTPException(code, {"error": str(exc), "series": exc.problems})

    def answer_many(
        dataset: str, as_of: datetime | None, items: list[tuple[ForecastRequest, str]]
    ) -> list[Response | HTTPException]:
        """Forecast requests (body, request id) of one dataset and moment together, commit their
        rows to the log in one transaction, then answer each (blocking: the caller picks the thread)."""
        began = time.perf_counter()
        later: list = []
        answers = routers[dataset].forecast_many(
            [(request_id, body.series_ids) for body, request_id in items], as_of=as_of, shadow_later=later
        )
        # committed before any answer: every acknowledged forecast is in the log
        log.record([row for a in answers if not isinstance(a, ForecastError) for row in a[1]])
        elapsed = time.perf_counter() - began
        batch_size.labels(dataset).observe(len(items))
        out: list[Response | HTTPException] = []
        for (_, request_id), answer in zip(items, answers, strict=True):
            if isinstance(answer, ForecastError):
                out.append(refusal(dataset, answer))
                continue
            served = answer[0]
            for f in served:
                latency.labels(dataset, f.model_name, f.model_version, f.arm).observe(elapsed)
            newest = max(f.origin for f in served)
            freshness.labels(dataset).set((datetime.now(UTC) - newest).total_seconds())
            requests_total.labels(dataset, "200").inc()
            payload = {
                "request_id": request_id,
                "dataset": dataset,
                "forecasts": [
                    {
                        "series_id": f.series_id,
                        "origin": f.origin.isoformat(),
                        "model": {"name": f.model_name, "version": f.model_version, "alias": f.alias},
                        "arm": f.arm,
                        "timestamps": f.timestamps,
                        "forecast": f.forecast,
                    }
                    for f in served
                ],
            }
            # plain JSON types already: skip FastAPI's generic encoder, which walks every float
            out.append(Response(json.dumps(payload), media_type="application/json"))
        if later and not scorer.submit(later):  # scored and logged off the served path
            shadow_dropped.labels(dataset).inc(len(later))
        return out

    def answer(body: ForecastRequest, request_id: str) -> Response:
        (result,) = answer_many(body.dataset, body.as_of, [(body, request_id)])
        if isinstance(result, HTTPException):
            raise result
        return result

    # Requests for a few series are answered on the event loop, together: the requests that arrived
    # while the last ones were answered are waiting when the loop comes back, and one feature read,
    # one forward pass and one commit for all of them cost little more than for one (dynamic
    # batching, as in Triton or Ray Serve, with no added wait: a lone request is answered at once).
    waiting: dict[tuple[str, datetime | None], list[tuple[ForecastRequest, str, asyncio.Future]]] = {}

    def answer_waiting() -> None:
        batches = dict(waiting)
        waiting.clear()
        for (dataset, as_of), items in batches.items():
            try:
                results = answer_many(dataset, as_of, [(body, request_id) for body, request_id, _ in items])
            except Exception as exc:  # a fault (the log, the feature store): every request hears it
                results = [exc] * len(items)
            for (_, _, future), result in zip(items, results, strict=True):
                if future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    @app.post("/v1/forecast", dependencies=[Depends(authorized)])
    async def forecast(body: ForecastRequest, request: Request) -> Response:
        if body.dataset not in routers:
            requests_total.labels(body.dataset, "404").inc()
            raise HTTPException(
                404, f"unknown dataset {body.dataset!r}; served: {', '.join(sorted(routers))}"
            )
        if body.as_of is not None and body.as_of.tzinfo is None:
            raise HTTPException(422, "as_of must carry a UTC offset, e.g. 2018-08-01T00:00:00Z")
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        if len(body.series_ids) > INLINE_SERIES:
            return await run_in_threadpool(answer, body, request_id)
        # A few series take about a millisecond of CPU: answering on the event loop saves the hop to
        # a worker thread and the GIL hand-offs between threads, which cost more.
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not waiting:  # the first waiting request: answer them all once the loop has read the rest
            loop.call_soon(answer_waiting)
        waiting.setdefault((body.dataset, body.as_of), []).append((body, request_id, future))
        return await future

    return app


def _token(settings: Settings) -> str:
    """The service token: the setting, else the one generated into home (created on first use)."""
    if settings.serving_token is not None:
        return settings.serving_token.get_secret_value()
    return stored_secret(settings, "serving_token", lambda: pysecrets.token_urlsafe(32))
