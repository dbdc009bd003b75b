"""The ``monitor_drift`` flow: is the champion still looking at the world it was trained on?

One check judges one period (``drift_period_days``, ending at the newest curated data) of one
dataset, three ways:

- **input**: each series' level against like-for-like reference periods cut from the champion's
  training data (the same hours of the week, the same season of earlier years where the training
  data reaches back that far), with Benjamini-Hochberg across series (``seqops.monitoring.statistics``);
- **error**: each series' live error (the champion's logged forecasts with their actuals) against its
  backtest error, one-sided, with the same false-discovery control;
- **pooled columns** through Evidently with pinned methods (load, the deviation from the
  like-for-like profile, forecasts and errors, all series together): the reviewable report.

The decision (retrain, or why not) follows from the per-series tests, the history of earlier checks
(drift must persist ``drift_persist_hours`` of data time) and the last request (a cooldown of
``drift_cooldown_hours``; a challenger already in promotion absorbs new requests). Each check is a
run in the ``seqops-<dataset>-drift`` MLflow experiment (tagged with the champion version), a folder
of self-contained HTML under ``SEQOPS_HOME/monitoring/<dataset>/<check>/`` and a run in the
Evidently workspace. ``seqops drift ...`` and the DAG call these functions.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.core.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Decisions a check can reach; only ``retrain`` emits the retrain Asset.
DECISIONS = ("no_champion", "quiet", "watch", "cooldown", "absorbed", "retrain")


def _ts(value: Any) -> pd.Timestamp:
    import pandas as pd

    out = pd.Timestamp(value)
    return out.tz_localize("UTC") if out.tzinfo is None else out.tz_convert("UTC")


def _reference_range(
    champion_tags: dict[str, str], horizon_span: timedelta
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The champion's training data: from its data start to the targets of its last training origin."""
    start = _ts(champion_tags["data_start"])
    train_end = champion_tags.get("train_origins", "").split("..")[-1] or champion_tags["data_end"]
    return start, _ts(train_end) + horizon_span


def _live_frames(
    settings: Settings,
    dataset: str,
    version: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    level: dict[str, float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's logged forecasts in ``[start, end)``: one row per forecast step (relative to the
    series' level) and one row per forecast with its error once actuals arrived."""
    import numpy as np
    import pandas as pd

    from seqops.serving.log import PredictionLog

    rows = PredictionLog(settings).between(
        dataset, start.to_pydatetime(), end.to_pydatetime(), model_version=version
    )
    steps, errors = [], []
    for r in rows:
        scale = level.get(r["series_id"])
        if not scale:
            continue
        forecast = np.asarray(r["forecast"], dtype=float)
        steps.append(forecast / scale)
        if r["actual"] is not None:
            err = np.abs(forecast - np.asarray(r["actual"], dtype=float)) / scale
            errors.append((r["series_id"], r["origin"], float(err.mean()), err))
    forecast_rel = pd.Series(np.concatenate(steps) if steps else np.array([]), dtype=float)
    err_frame = pd.DataFrame(errors, columns=["series_id", "origin", "error", "steps"])
    return pd.DataFrame({"forecast": forecast_rel}), err_frame


def _backtest_frames(
    settings: Settings, run_id: str, level: dict[str, float]
) -> tuple[pd.Series, pd.DataFrame]:
    """The champion's backtest forecasts (relative to level) and errors per (series, fold origin)."""
    import numpy as np
    import pandas as pd

    from seqops.registry.tracking import download

    try:
        path = download(settings, run_id, "backtest/backtest_forecasts.csv")
    except Exception:  # a champion registered without a backtest: no error reference
        return pd.Series(dtype=float), pd.DataFrame(columns=["series_id", "origin", "error"])
    bt = pd.read_csv(path)
    bt["series_id"] = bt["series_id"].astype(str)
    scale = bt["series_id"].map(level)
    bt = bt[scale.notna() & (scale > 0)]
    scale = scale[bt.index]
    rel = (bt["model"] / scale).astype(float)
    bt = bt.assign(error=np.abs(bt["model"] - bt["actual"]) / scale)
    per_fold = bt.groupby(["series_id", "origin"], as_index=False)["error"].mean()
    return rel.reset_index(drop=True), per_fold


def _padded(groups: dict[str, list[float]], ids: list[str]) -> np.ndarray:
    import numpy as np

    width = max([len(v) for v in groups.values()] + [1])
    out = np.full((len(ids), width), np.nan)
    for i, sid in enumerate(ids):
        values = groups.get(sid, [])
        out[i, : len(values)] = values
    return out


def check(
    settings: Settings,
    dataset: str,
    *,
    as_of: datetime | str | None = None,
    progress: Any = print,
) -> dict[str, Any]:
    """Run one drift check of ``dataset``; returns an XCom-safe summary (the report's paths included).

    ``as_of`` ends the judged period (default: one step after the newest curated value). A check of
    the same dataset and period that already ran returns its recorded result (a retried task logs
    nothing twice).
    """
    import numpy as np
    import pandas as pd

    from seqops.core.store import CuratedStore
    from seqops.monitoring.statistics import aligned, error_increase, level_shift, reference_periods
    from seqops.registry.registry import Registry
    from seqops.registry.tracking import drift_experiment, find_runs

    settings.dataset(dataset)
    spec = settings.window(dataset)
    registry = Registry(settings)
    champion = registry.by_alias(dataset, "champion")
    if champion is None:
        return {
            "dataset": dataset,
            "decision": "no_champion",
            "headline": f"{dataset}: no champion yet, nothing to judge; checks start once one is approved",
            "retrain": False,
        }
    store = CuratedStore(settings)
    if as_of is None:
        newest = store.read(dataset, columns=["timestamp"])["timestamp"].max()
        if pd.isna(newest):
            raise LookupError(f"the curated store holds no {dataset!r} data: ingest some first")
        as_of = _ts(newest).floor(spec.step) + spec.step
    end = _ts(as_of)
    check_id = f"{end:%Y%m%dT%H%M}"
    earlier = find_runs(
        settings,
        drift_experiment(dataset),
        where=f"tags.`seqops.check_id` = '{check_id}' "
        f"and tags.`seqops.champion_version` = '{champion.version}'",
    )
    if earlier and earlier[0]["status"] == "FINISHED":
        progress(f"check {check_id} of {dataset} already ran (MLflow run {earlier[0]['run_id']})")
        return _recorded(settings, earlier[0]["run_id"])

    period = timedelta(days=settings.drift_period_days)
    start = end - period
    ref_start, ref_end = _reference_range(champion.tags, spec.step * spec.horizon)
    periods = reference_periods(start, end, ref_start, ref_end)
    progress(
        f"{dataset}: judging {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} against {periods.describe()}"
    )
    frame = store.read(dataset, start=min(s for s, _ in periods.reference), end=end)
    current_frame = frame[frame["timestamp"] >= start]
    ids = sorted(current_frame["series_id"].astype(str).unique())
    if not ids:
        raise LookupError(f"no {dataset!r} data in {start} .. {end}: nothing to judge")
    ref = aligned(frame, periods.reference, ids, spec.step)  # [P, S, T]
    cur = aligned(frame, [periods.current], ids, spec.step)[0]  # [S, T]
    level_test = level_shift(ref, cur, ids, alpha=settings.drift_fdr, min_effect=settings.drift_min_effect)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = {sid: float(np.nanmean(ref[:, i, :])) for i, sid in enumerate(ids)}

    # ---- live forecasts and errors vs the backtest ------------------------------------------------
    live_fc, live_err = _live_frames(settings, dataset, champion.version, start, end, level)
    bt_fc, bt_err = _backtest_frames(settings, champion.run_id, level)
    live_blocks = (
        live_err.assign(day=pd.to_datetime(live_err["origin"]).dt.floor("D"))
        .groupby(["series_id", "day"])["error"]
        .mean()
        .groupby(level=0)
        .apply(list)
        .to_dict()
        if len(live_err)
        else {}
    )
    bt_blocks = bt_err.groupby("series_id")["error"].apply(list).to_dict() if len(bt_err) else {}
    error_test = error_increase(
        _padded(live_blocks, ids),
        _padded(bt_blocks, ids),
        ids,
        alpha=settings.drift_fdr,
        min_effect=settings.drift_min_effect,
    )

    # ---- the pooled Evidently report --------------------------------------------------------------
    from seqops.monitoring.drift import add_to_workspace, column_drift, pooled_frames

    pooled_current, pooled_reference = pooled_frames(
        ref,
        cur,
        {
            "forecast": (live_fc["forecast"].to_numpy(), bt_fc.to_numpy()),
            # live: every forecast step; backtest: fold means (its steps are not kept per fold)
            "error": (
                np.concatenate(list(live_err["steps"])) if len(live_err) else np.array([]),
                bt_err["error"].to_numpy(),
            ),
        },
    )
    pinned = {c: (settings.drift_method, settings.drift_threshold) for c in pooled_current.columns}
    report = column_drift(
        pooled_current,
        pooled_reference,
        pinned,
        name=f"{dataset} drift {check_id}",
        metadata={"dataset": dataset, "champion_version": champion.version, "as_of": end.isoformat()},
        tags=[dataset, f"champion-v{champion.version}"],
    )

    # ---- decision ---------------------------------------------------------------------------------
    drifted_now = bool(level_test.any_drift or error_test.drifted.any())
    history = find_runs(
        settings, drift_experiment(dataset), where=f"tags.`seqops.champion_version` = '{champion.version}'"
    )
    decision, why = decide(
        settings,
        drifted_now=drifted_now,
        as_of=end,
        history=[h["tags"] for h in history if "seqops.as_of" in h["tags"]],
        pending=_pending_challenger(registry, dataset, champion.version),
    )
    result = {
        "dataset": dataset,
        "check_id": check_id,
        "as_of": end.isoformat(),
        "period": [start.isoformat(), end.isoformat()],
        "reference": periods.describe(),
        "champion_version": champion.version,
        "series": len(ids),
        "input_drifted": {s: _fmt(level_test, s) for s in level_test.drifted_series},
        "common": _common(level_test.common),
        "error_drifted": {s: _fmt(error_test, s) for s in error_test.drifted_series},
        "untested": {"input": level_test.untested, "error": error_test.untested},
        "columns": [c.line() for c in report.columns],
        "drifted": drifted_now,
        "decision": decision,
        "why": why,
        "retrain": decision == "retrain",
    }
    result["headline"] = headline(result, settings)
    result["reason"] = _reason(result)

    # ---- write: folder, MLflow run, Evidently workspace -----------------------------------------------
    folder = settings.drift_dir / dataset / check_id
    folder.mkdir(parents=True, exist_ok=True)
    report.save_html(folder / "evidently.html")
    tables = {"input": level_test.table(), "error": error_test.table()}
    for name, table in tables.items():
        table.to_csv(folder / f"{name}_per_series.csv", index=False)
    chosen = (level_test.drifted_series or list(level_test.table()["series_id"]))[:6]
    stamps = pd.date_range(start, periods=cur.shape[1], freq=spec.step)
    from seqops.monitoring.plots import plot_level_check

    plot_level_check(
        ref,
        cur,
        ids,
        chosen,
        stamps,
        folder / "level.png",
        labels={s: _fmt(level_test, s) for s in chosen},
        title=f"{dataset}: current period vs like-for-like reference",
    )
    try:
        result["workspace_run"] = add_to_workspace(
            settings.drift_dir / "workspace",
            f"seqops {dataset} drift",
            report,
            description=f"Drift checks of {dataset}'s champion (seqops monitor_drift)",
        )
    except Exception as exc:  # the workspace is a view; the report and the run are the record
        progress(f"could not add the report to the Evidently workspace: {exc}")
    result["report"] = str(folder / "summary.html")
    (folder / "summary.html").write_text(summary_html(result, tables, folder / "level.png"))

    from seqops.registry.tracking import tracked_run

    with tracked_run(
        settings, dataset, experiment=drift_experiment(dataset), run_name=f"{dataset}-{check_id}"
    ) as run:
        run.set_tags(
            {
                "seqops.dataset": dataset,
                "seqops.check_id": check_id,
                "seqops.as_of": end.isoformat(),
                "seqops.champion_version": champion.version,
                "seqops.drifted": str(drifted_now).lower(),
                "seqops.decision": decision,
                "seqops.retrain_requested": str(decision == "retrain").lower(),
                "mlflow.note.content": result["headline"],
            }
        )
        run.log_metrics(
            {
                "input_drifted_series": float(level_test.drifted.sum()),
                "error_drifted_series": float(error_test.drifted.sum()),
                "series": float(len(ids)),
                **{f"evidently.{c.column}.score": c.score for c in report.columns},
            }
        )
        result["mlflow_run_id"] = run.run_id
        (folder / "check.json").write_text(json.dumps(result, indent=1, default=str))
        run.log_artifacts(str(folder), "drift")
    registry.set_tags(
        dataset, champion.version, {"seqops.last_drift_run": run.run_id, "seqops.last_drift": decision}
    )
    progress(result["headline"])
    return result


def _fmt(test: Any, sid: str) -> str:
    i = test.series_ids.index(sid)
    own = "" if test.own_shift is None else f", {test.own_shift[i]:+.1%} beyond the common move"
    return (
        f"{test.relative_shift[i]:+.1%}{own} ({test.current[i]:.4g} vs {test.expected[i]:.4g} expected; "
        f"q={test.q_value[i]:.3g})"
    )


def _common(common: Any) -> dict[str, Any] | None:
    if common is None:
        return None
    return {
        "drifted": common.drifted,
        "relative_shift": round(common.relative_shift, 4),
        "q_value": round(common.q_value, 4),
        "text": f"all series together {common.relative_shift:+.1%} (q={common.q_value:.3g})",
    }


def _pending_challenger(registry: Any, dataset: str, champion_version: str) -> str | None:
    challenger = registry.by_alias(dataset, "challenger")
    if challenger is None or int(challenger.version) <= int(champion_version):
        return None
    if challenger.tags.get("validation_status") == "pending_approval":
        return challenger.version
    return None


def decide(
    settings: Settings,
    *,
    drifted_now: bool,
    as_of: pd.Timestamp,
    history: list[dict[str, str]],
    pending: str | None,
) -> tuple[str, str]:
    """The decision and its reason, from this check, the earlier checks' tags and the registry.

    Time is data time (each check's ``as_of``), so a fast-forwarded replay behaves like live data.
    """
    if not drifted_now:
        return "quiet", "no series drifted at the configured false-discovery rate"
    past = sorted((h for h in history if _ts(h["seqops.as_of"]) < as_of), key=lambda h: h["seqops.as_of"])
    since = as_of
    for h in reversed(past):  # walk back over the unbroken run of drifted checks
        if h.get("seqops.drifted") != "true":
            break
        since = _ts(h["seqops.as_of"])
    seen = as_of - since
    persist = timedelta(hours=settings.drift_persist_hours)
    if seen < persist:
        return "watch", (
            f"drift seen for {seen / timedelta(hours=1):.0f} h of data "
            f"(checks since {since:%Y-%m-%d %H:%M}); "
            f"a retrain needs {settings.drift_persist_hours:g} h"
        )
    requested = [_ts(h["seqops.as_of"]) for h in past if h.get("seqops.retrain_requested") == "true"]
    cooldown = timedelta(hours=settings.drift_cooldown_hours)
    if requested and as_of - max(requested) < cooldown:
        return "cooldown", (
            f"a retrain was requested at {max(requested):%Y-%m-%d %H:%M}; the next may follow "
            f"{settings.drift_cooldown_hours:g} h after it"
        )
    if pending:
        return "absorbed", f"challenger version {pending} is already in promotion; it absorbs this request"
    return "retrain", (
        f"drift persisted {seen / timedelta(hours=1):.0f} h of data (>= {settings.drift_persist_hours:g} h)"
    )


def _reason(result: dict[str, Any]) -> str:
    parts = []
    if (result.get("common") or {}).get("drifted"):
        parts.append(result["common"]["text"])
    if result["input_drifted"]:
        parts.append(f"input level of {', '.join(sorted(result['input_drifted']))}")
    if result["error_drifted"]:
        parts.append(f"error of {', '.join(sorted(result['error_drifted']))}")
    return f"drift {result['check_id']}: " + ("; ".join(parts) or "none")


def _found(result: dict[str, Any], n: int) -> list[str]:
    found = []
    if (result.get("common") or {}).get("drifted"):
        found.append("the level of all series together")
    if result["input_drifted"]:
        found.append(f"the level of {len(result['input_drifted'])} of {n} series")
    if result["error_drifted"]:
        found.append(f"the error of {len(result['error_drifted'])} of {n} series")
    return found


def headline(result: dict[str, Any], settings: Settings) -> str:
    """The first lines of a report: what drifted, how sure, what happens next."""
    n = result["series"]
    lines = [
        f"{result['dataset']}, {result['period'][0][:16]} .. {result['period'][1][:16]} UTC, champion "
        f"v{result['champion_version']}: "
        + (
            f"DRIFT: {'; '.join(_found(result, n))} (false-discovery rate {settings.drift_fdr:g})."
            if result["drifted"]
            else f"no drift in {n} series (false-discovery rate {settings.drift_fdr:g})."
        )
    ]
    common = result.get("common") or {}
    if common.get("drifted"):
        lines.append(f"  input: {common['text']}")
    for kind in ("input", "error"):
        for sid, text in list(result[f"{kind}_drifted"].items())[:5]:
            lines.append(f"  {kind} {sid}: {text}")
    next_step = {
        "retrain": "retrain requested (seqops_retrain Asset)",
        "watch": "no retrain yet",
        "cooldown": "no retrain (cooldown)",
        "absorbed": "no new retrain",
        "quiet": "nothing to do",
    }[result["decision"]]
    lines.append(f"Next: {next_step}: {result['why']}.")
    return "\n".join(lines)


def summary_html(result: dict[str, Any], tables: dict[str, pd.DataFrame], plot: Path) -> str:
    """A self-contained page: the headline first, the figure, the per-series tables, links."""
    import base64
    import html

    image = base64.b64encode(plot.read_bytes()).decode() if plot.exists() else ""
    sections = "".join(
        f"<h2>{name} per series</h2>{table.round(4).to_html(index=False, border=0)}"
        for name, table in tables.items()
    )
    columns = "".join(f"<li>{html.escape(c)}</li>" for c in result["columns"])
    colour = "#b00020" if result["drifted"] else "#1b5e20"
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1100px}"
        f"pre{{font-size:1.05em;border-left:4px solid {colour};padding-left:1em}}"
        "table{border-collapse:collapse;font-size:.85em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(result['dataset'])} drift {result['check_id']}</title>"
        f"<style>{style}</style></head><body><pre>{html.escape(result['headline'])}</pre>"
        f"<p>Reference: {html.escape(result['reference'])}. Champion version "
        f"{result['champion_version']}. The decision comes from the per-series tests below. Pooled "
        f"over all series, for review (Evidently, pinned methods; "
        f'<a href="evidently.html">the full Evidently report</a>):</p><ul>{columns}</ul>'
        f'<img alt="current vs reference" src="data:image/png;base64,{image}" style="max-width:100%">'
        f"{sections}</body></html>"
    )


def _recorded(settings: Settings, run_id: str) -> dict[str, Any]:
    """A finished check's result, from its MLflow run's ``drift/check.json``."""
    from seqops.registry.tracking import download

    return json.loads(Path(download(settings, run_id, "drift/check.json")).read_text())


def history(settings: Settings, dataset: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest finished checks of ``dataset``, newest first (from MLflow): one line each."""
    from seqops.registry.tracking import drift_experiment, find_runs

    out = []
    for run in find_runs(settings, drift_experiment(dataset), limit=limit):
        tags = run["tags"]
        if run["status"] != "FINISHED" or "seqops.check_id" not in tags:
            continue
        out.append(
            {
                "mlflow_run_id": run["run_id"],
                "check_id": tags["seqops.check_id"],
                "as_of": tags.get("seqops.as_of"),
                "champion_version": tags.get("seqops.champion_version"),
                "decision": tags.get("seqops.decision"),
                "drifted": tags.get("seqops.drifted") == "true",
                "input_drifted_series": int(run["metrics"].get("input_drifted_series", 0)),
                "error_drifted_series": int(run["metrics"].get("error_drifted_series", 0)),
                "series": int(run["metrics"].get("series", 0)),
            }
        )
    return out


def show(settings: Settings, dataset: str, check_id: str | None = None) -> dict[str, Any]:
    """One check's full result (the latest when ``check_id`` is None), with its report paths."""
    from seqops.registry.tracking import drift_experiment, find_runs

    where = f"tags.`seqops.check_id` = '{check_id}'" if check_id else ""
    runs = [
        r for r in find_runs(settings, drift_experiment(dataset), where=where) if r["status"] == "FINISHED"
    ]
    if not runs:
        raise LookupError(
            f"no drift check of {dataset!r}"
            + (f" with id {check_id!r}" if check_id else "")
            + ": run `seqops drift check --dataset "
            + dataset
            + "` or wait for monitor_drift"
        )
    result = _recorded(settings, runs[0]["run_id"])
    local = settings.drift_dir / dataset / result["check_id"] / "summary.html"
    if not local.exists():  # another machine ran it: use the run's copy
        from seqops.registry.tracking import download

        local = Path(download(settings, runs[0]["run_id"], "drift")) / "summary.html"
    result["report"] = str(local)
    return result
