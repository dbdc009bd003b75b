"""The ``forecast_batch`` flow: every series' next H values through the router, into the log; and
the actuals joined back as they arrive. ``seqops forecast ...`` calls the same functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from seqops.core.settings import Settings


def batch_forecast(settings: Settings, dataset: str, *, as_of: datetime | None = None) -> dict[str, Any]:
    """Forecast every series with a usable online window; log served and shadow forecasts.

    The request id names the dataset and the newest origin, so a re-run of the same batch logs
    nothing twice. Series without a usable window are reported, not forecast.
    """
    from seqops.core.clock import now
    from seqops.features.store import read_online
    from seqops.features.tables import latest_window_ends
    from seqops.serving.log import PredictionLog
    from seqops.serving.router import ForecastError, Router

    settings.dataset(dataset)  # an undeclared name is refused with the declared ones
    as_of = as_of or now(settings)
    router = Router(settings, dataset)
    router.refresh(force=True)
    if not router.ready:  # checked first: with no model there is nothing to judge the features for
        raise ForecastError(f"no model of {dataset!r} to serve: register one (train_forecaster)", {})
    latest = latest_window_ends(settings, dataset)
    ids = sorted(str(s) for s in latest.index)
    windows = read_online(dataset, ids, as_of=as_of, settings=settings)
    usable = [sid for sid, st in zip(ids, windows.status, strict=True) if st == "present"]
    skipped = {sid: st for sid, st in zip(ids, windows.status, strict=True) if st != "present"}
    if not usable:
        raise ForecastError(f"no series of {dataset!r} has a usable online window", skipped)
    newest = max(windows.window_end[[ids.index(s) for s in usable]])
    request_id = f"batch:{dataset}:{str(newest)[:19]}"
    served, logged = router.forecast(
        usable, as_of=as_of, request_id=request_id, source="batch", windows=windows
    )
    written = PredictionLog(settings).record(logged)
    return {
        "dataset": dataset,
        "request_id": request_id,
        "series": len(served),
        "logged": written,
        "already_logged": len(logged) - written,
        "skipped": skipped,
        "models": sorted({f"{f.alias}:{f.model_version}" for f in served}),
    }


def join_actuals(settings: Settings, dataset: str) -> dict[str, Any]:
    """Fill in the actual values of logged forecasts whose horizon has fully arrived."""
    import pandas as pd

    from seqops.core.store import CuratedStore
    from seqops.serving.log import PredictionLog

    log = PredictionLog(settings)
    waiting = log.waiting_for_actuals(dataset)
    if not waiting:
        return {"dataset": dataset, "joined": 0, "waiting": 0}
    ids = sorted({r["series_id"] for r in waiting})
    start = min(r["origin"] for r in waiting)
    frame = CuratedStore(settings).read(dataset, series_ids=ids, start=start)
    values = {sid: g.set_index("timestamp")["value"] for sid, g in frame.groupby("series_id")}
    found: dict[int, list[float]] = {}
    for row in waiting:
        series = values.get(row["series_id"])
        if series is None:
            continue
        step = pd.Timedelta(seconds=row["step_seconds"])
        origin = pd.Timestamp(row["origin"])
        stamps = [origin + (k + 1) * step for k in range(row["horizon"])]
        got = series.reindex(stamps)
        if got.notna().all():
            found[row["id"]] = [float(v) for v in got]
    log.set_actuals(found)
    return {"dataset": dataset, "joined": len(found), "waiting": len(waiting) - len(found)}


def show(settings: Settings, prediction_id: int) -> dict[str, Any]:
    """One logged forecast with its lineage: model version -> training run -> data version."""
    from seqops.registry.registry import Registry
    from seqops.serving.log import PredictionLog

    rows = PredictionLog(settings).rows(id=prediction_id)
    if not rows:
        raise LookupError(f"no logged forecast with id {prediction_id}")
    row = rows[0]
    registry = Registry(settings)
    version = registry.get(row["model_name"], row["model_version"])
    run = registry.client.get_run(version.run_id)
    return {
        **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
        "lineage": {
            "model_uri": version.uri,
            "training_run_id": version.run_id,
            "experiment_id": run.info.experiment_id,
            "data_version": version.tags.get("data_version"),
            "data_snapshot": version.tags.get("data_snapshot"),
            "feature_service": version.tags.get("feature_service"),
            "code": run.data.tags.get("mlflow.source.git.commit") or run.data.tags.get("seqops.version"),
        },
    }
