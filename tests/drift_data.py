"""Data for the drift tests: a shifted August of PJM load and champion forecasts in the log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

STEP = timedelta(hours=1)


def log_forecasts(
    settings,
    version: str,
    start: str,
    end: str,
    *,
    off: dict[str, float],
    arriving: pd.DataFrame | None = None,
) -> int:
    """Champion forecasts as the batch DAG logs them, from the true values (times ``off``), with actuals
    from the curated store plus ``arriving`` (a batch not ingested yet)."""
    from seqops.core.store import CuratedStore
    from seqops.serving.log import LoggedForecast, PredictionLog

    frame = CuratedStore(settings).read("pjm")
    if arriving is not None:
        extra = arriving.assign(timestamp=pd.to_datetime(arriving["timestamp"], utc=True))
        frame = pd.concat([frame[["series_id", "timestamp", "value"]], extra], ignore_index=True)
    values = {s: g.set_index("timestamp")["value"] for s, g in frame.groupby("series_id")}
    log = PredictionLog(settings)
    rows = []
    for origin in pd.date_range(start, end, freq="h", tz="UTC", inclusive="left"):
        for sid, series in values.items():
            target = series.reindex([origin + (k + 1) * STEP for k in range(24)])
            if target.isna().any():
                continue
            rows.append(
                LoggedForecast(
                    request_id=f"batch:pjm:{origin:%Y-%m-%dT%H}",
                    dataset="pjm",
                    series_id=sid,
                    origin=origin.to_pydatetime(),
                    model_name="seqops-forecaster-pjm",
                    model_version=version,
                    alias="champion",
                    arm="champion",
                    served=True,
                    mode="champion",
                    forecast=[float(v) * off.get(sid, 1.0) for v in target],
                    step_seconds=3600,
                    source="batch",
                )
            )
    written = log.record(rows)
    ids = {r["id"]: r for r in log.waiting_for_actuals("pjm")}
    log.set_actuals(
        {
            i: [
                float(v)
                for v in values[r["series_id"]].reindex(
                    [pd.Timestamp(r["origin"]) + (k + 1) * STEP for k in range(24)]
                )
            ]
            for i, r in ids.items()
        }
    )
    return written


def shifted_august(drifting) -> Path:
    """The held-back August with DOM 40% up, as a canonical batch file."""
    shifted = drifting["root"] / "pjm_2018-08-shifted.csv"
    if not shifted.exists():
        august = pd.read_csv(drifting["august"])
        august.loc[august["series_id"] == "DOM", "value"] *= 1.4
        august.to_csv(shifted, index=False)
    return shifted


def august_arrives(drifting) -> None:
    """August lands with DOM 40% up, and the champion's logged DOM forecasts are 30% off (idempotent)."""
    from seqops.flows.ingest import ingest_file

    settings = drifting["settings"]
    assert ingest_file(settings, shifted_august(drifting), "pjm").accepted
    version = drifting["version"]["version"]
    log_forecasts(settings, version, "2018-07-26", "2018-08-02", off={"DOM": 1.3})
    assert len(logged_rows(settings)) > 300


def logged_rows(settings) -> list:
    from seqops.serving.log import PredictionLog

    return PredictionLog(settings).rows(dataset="pjm")


def three_zones(settings, root, pjm_source, *, champion: bool) -> dict:
    """AEP, DOM and DUQ from February to July 2018 ingested, features materialized, one 1-epoch model
    registered (and made champion when ``champion``); August held back, to arrive later."""
    from seqops.core.importers import import_pjm
    from seqops.flows import train as flow
    from seqops.flows.features import refresh
    from seqops.flows.ingest import ingest_file
    from seqops.registry.registry import CHAMPION, Registry
    from seqops.registry.tracking import init_tracking_store

    report = import_pjm(
        pjm_source, root / "batches", zones=["AEP", "DOM", "DUQ"], since="2018-02-01", period="month"
    )
    *months, august = sorted(report.batches)
    for name in months:
        assert ingest_file(settings, root / "batches" / name, "pjm").accepted
    refresh(settings, "pjm")
    init_tracking_store(settings)
    say = lambda _: None  # noqa: E731
    overrides = {"max_epochs": 1, "time_budget_s": 30}
    trained = flow.train("pjm", overrides=overrides, history_days=90, settings=settings, progress=say)
    evaluated = flow.backtest(trained, settings=settings, progress=say)
    version = flow.register(evaluated, settings=settings, progress=say)
    if champion:
        Registry(settings).set_alias("pjm", CHAMPION, version["version"])
    return {"settings": settings, "august": root / "batches" / august, "root": root, "version": version}
