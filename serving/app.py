"""The online prediction service (FastAPI): ``POST /v1/forecast``, ``/healthz``, ``/readyz``, ``/metrics``.

Every forecast is read from the Feast online store, routed (champion, shadow, canary) and committed
to the prediction log before the response is sent; the shadow arm runs after the response, off the
served path. Requests need ``Authorization: Bearer <token>`` (``SEQOPS_SERVING_TOKEN``, generated into
``SEQOPS_HOME/secrets`` by the launcher); the probes answer without it and say nothing but status.

    uvicorn --factory seqops.serving.app:create_app   (or: seqops serve)
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.
import secrets as pysecrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from seqops.core.secrets import stored_secret
from seqops.core.settings import Settings


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
    from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request, Response
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
    from seqops.serving.router import ForecastError, Router

    if settings is None:
        from seqops.core.settings import get_settings

        settings = get_settings()
    names = datasets or settings.feature_datasets()
    expected = token or _token(settings)
    every = settings.serving_refresh_s if refresh_s is None else refresh_s
    routers = {name: Router(settings, name, refresh_s=every) for name in names}
    log = PredictionLog(settings)

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
        "Shadow forecasts (off the served path)",
        ["dataset"],
        registry=metrics,
    )

    bearer = HTTPBearer(auto_error=False)

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not pysecrets.compare_digest(credentials.credentials, expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    class ForecastRequest(BaseModel):
        dataset: str = Field(description="A dataset with materialized features.")
        series_ids: list[str] = Field(min_length=1, max_length=10_000)
        as_of: datetime | None = Field(None, description="Serving moment (tz-aware); default now.")

    app = FastAPI(title="seqops prediction service", version="1")

    @app.on_event("startup")
    def _load() -> None:
        from seqops.features.store import online_reader

        for name, router in routers.items():
            router.refresh(force=True)
            try:  # open the feature store now (import feast takes seconds), not on the first request
                online_reader(name, settings)
            except Exception as exc:
                router.errors["features"] = f"feature store not readable yet: {exc}"

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

    @app.post("/v1/forecast", dependencies=[Depends(authorized)])
    def forecast(body: ForecastRequest, background: BackgroundTasks, request: Request) -> dict[str, Any]:
        router = routers.get(body.dataset)
        if router is None:
            requests_total.labels(body.dataset, "404").inc()
            raise HTTPException(
                404, f"unknown dataset {body.dataset!r}; served: {', '.join(sorted(routers))}"
            )
        if body.as_of is not None and body.as_of.tzinfo is None:
            raise HTTPException(422, "as_of must carry a UTC offset, e.g. 2018-08-01T00:00:00Z")
        began = time.perf_counter()
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        later: list = []
        try:
            served, logged = router.forecast(
                body.series_ids, as_of=body.as_of, request_id=request_id, shadow_later=later
            )
        except ForecastError as exc:
            for reason in set(exc.problems.values()) or {"no_model"}:
                errors_total.labels(body.dataset, reason).inc()
            code = 422 if exc.problems else 503
            requests_total.labels(body.dataset, str(code)).inc()
            raise HTTPException(code, {"error": str(exc), "series": exc.problems}) from None
        log.record(logged)  # committed before the answer: every acknowledged forecast is in the log
        elapsed = time.perf_counter() - began
        for f in served:
            latency.labels(body.dataset, f.model_name, f.model_version, f.arm).observe(elapsed)
        newest = max(f.origin for f in served)
        freshness.labels(body.dataset).set((datetime.now(UTC) - newest).total_seconds())
        requests_total.labels(body.dataset, "200").inc()
        if later:

            def run_shadow() -> None:
                t0 = time.perf_counter()
                for job in later:
                    log.record(job())
                shadow_seconds.labels(body.dataset).observe(time.perf_counter() - t0)

            background.add_task(run_shadow)
        return {
            "request_id": request_id,
            "dataset": body.dataset,
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

    return app


def _token(settings: Settings) -> str:
    """The service token: the setting, else the one generated into home (created on first use)."""
    if settings.serving_token is not None:
        return settings.serving_token.get_secret_value()
    return stored_secret(settings, "serving_token", lambda: pysecrets.token_urlsafe(32))
