"""The promotion flow's first gate: the challenger against the champion on the same recent folds.

The folds are the challenger's backtest origins (after its training data, and after the older
champion's); both models forecast the same windows, and the per-forecast losses (absolute errors
scaled by each series' seasonal in-sample MAE, i.e. MASE terms) go to the paired DM-HLN gate
(``seqops.promotion.statistics.gate``). The first model has no champion: it is judged against the
better of the naive baselines on the same folds. Every gate logs its numbers, the verdict and a
champion-vs-challenger plot to an MLflow run of the comparison.
"""

from __future__ import annotations

from typing import Any

from seqops.core.settings import Settings


def backtest_gate(
    settings: Settings,
    dataset: str,
    challenger: str,
    *,
    champion: str | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.02,
) -> dict[str, Any]:
    """Compare ``challenger`` with ``champion`` (default: the current champion) on the challenger's folds.

    Returns:
        The verdict (``pass``, ``stop`` or ``inconclusive``) with its evidence and the MLflow run id.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from seqops.core.store import CuratedStore
    from seqops.flows.train import TrainPlan, fold_set
    from seqops.promotion.statistics import gate
    from seqops.registry.packaging import load_bundle
    from seqops.registry.registry import CHAMPION, Registry, model_name
    from seqops.registry.tracking import tracked_run
    from seqops.training.baselines import naive, seasonal_naive
    from seqops.training.metrics import seasonal_scale
    from seqops.training.train import predict

    registry = Registry(settings)
    name = model_name(dataset)
    chall = registry.get(name, challenger)
    if champion is None:
        current = registry.by_alias(dataset, CHAMPION)
        champion = current.version if current is not None else None
    plan_dict = registry.client.download_artifacts(chall.run_id, "plan.json")
    import json

    the_plan = TrainPlan(**json.loads(Path(plan_dict).read_text()))
    chall_bundle = load_bundle(f"models:/{name}/{challenger}")
    folds = fold_set(settings, the_plan, chall_bundle.series_ids)
    if len(folds) == 0:
        raise RuntimeError(f"no fold windows for {dataset!r}: materialize features first")
    history = CuratedStore(settings).read(dataset, columns=["series_id", "timestamp", "value"])
    ids = [folds.series_ids[i] for i in folds.series_idx]
    origins = pd.to_datetime(folds.origin).tz_localize("UTC")
    by_series = {sid: g.set_index("timestamp")["value"] for sid, g in history.groupby("series_id")}
    season = chall_bundle.config.season
    scale = seasonal_scale(
        [by_series[s][by_series[s].index <= o].to_numpy() for s, o in zip(ids, origins, strict=True)], season
    )
    challenger_pred = _point(predict(chall_bundle.model, folds), chall_bundle)
    if champion is not None:
        champ_bundle = load_bundle(f"models:/{name}/{champion}")
        champion_pred = _point(predict(champ_bundle.model, folds), champ_bundle)
        against = f"champion v{champion}"
    else:  # the first model: the better naive baseline is the bar
        candidates = {
            "naive": naive(folds.x, folds.horizon),
            "seasonal_naive": seasonal_naive(folds.x, folds.horizon, season),
        }
        errors = {k: np.nanmean(np.abs(folds.y - v) / scale[:, None]) for k, v in candidates.items()}
        best = min(errors, key=errors.get)
        champion_pred, against = candidates[best], f"{best} (no champion yet)"
    y = folds.y.astype(np.float64)
    loss_champion = (np.abs(y - champion_pred) / scale[:, None]).ravel()
    loss_challenger = (np.abs(y - challenger_pred) / scale[:, None]).ravel()
    verdict = gate(loss_champion, loss_challenger, horizon=folds.horizon, alpha=alpha, min_effect=min_effect)
    per_series = (
        pd.DataFrame(
            {
                "series_id": np.repeat(ids, folds.horizon),
                "champion": loss_champion,
                "challenger": loss_challenger,
            }
        )
        .groupby("series_id")[["champion", "challenger"]]
        .mean()
    )
    with tracked_run(settings, dataset, run_name=f"{dataset}-promotion-v{challenger}") as run:
        run.set_tags(
            {
                "seqops.promotion.gate": "backtest",
                "seqops.promotion.challenger": challenger,
                "seqops.promotion.against": against,
                "seqops.promotion.decision": verdict.decision,
            }
        )
        run.log_metrics(
            {
                "gate.mase_champion": verdict.better.mean_champion,
                "gate.mase_challenger": verdict.better.mean_challenger,
                "gate.relative_change": verdict.better.relative_change,
                "gate.dm_statistic": verdict.better.statistic,
                "gate.p_better": verdict.better.p_value,
                "gate.p_worse": verdict.worse.p_value,
            }
        )
        run.log_dict({"against": against, **verdict.to_dict()}, "gate_backtest.json")
        with tempfile.TemporaryDirectory() as tmp:
            per_series.to_csv(Path(tmp) / "per_series_mase.csv")
            _plot(
                per_series,
                against,
                challenger,
                f"backtest gate: {verdict.decision}",
                Path(tmp) / "champion_vs_challenger.png",
            )
            run.log_artifacts(tmp, "gate_backtest")
    return {
        "dataset": dataset,
        "challenger": challenger,
        "against": against,
        "run_id": run.run_id,
        **verdict.to_dict(),
    }


def _point(pred, bundle):
    import numpy as np

    if pred.ndim == 3:
        qs = bundle.config.quantiles
        pred = pred[..., int(np.argmin([abs(q - 0.5) for q in qs]))]
    return pred.astype(np.float64)


def _plot(
    per_series, against: str, challenger: str, decision: str, path, what: str = "MASE on the backtest folds"
) -> None:
    """Per-series MASE, champion (or baseline) beside challenger: what a reviewer looks at first."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6, 0.6 * len(per_series) + 2), 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pos = np.arange(len(per_series))
    ax.bar(pos - 0.2, per_series["champion"], width=0.4, label=against)
    ax.bar(pos + 0.2, per_series["challenger"], width=0.4, label=f"challenger v{challenger}")
    ax.set_xticks(pos, per_series.index, rotation=45, ha="right")
    ax.set_ylabel(what)
    ax.set_title(f"{decision} ({against} vs challenger v{challenger})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def live_pairs(settings: Settings, dataset: str, challenger: str, champion: str, *, since: str | None = None):
    """Paired live forecasts with actuals: the same request and series, forecast by both versions.

    In shadow mode the champion served and the challenger shadowed; in canary mode the challenger
    served its canary series and the champion shadowed them. Returns a frame of
    (request_id, series_id, origin, champion forecast, challenger forecast, actual).
    """
    import pandas as pd

    from seqops.serving.log import PredictionLog

    rows = [r for r in PredictionLog(settings).rows(dataset=dataset) if r["actual"] is not None]
    if since is not None:
        cutoff = pd.Timestamp(since)
        rows = [r for r in rows if pd.Timestamp(r["created_at"]).tz_localize("UTC") >= cutoff]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    key = ["request_id", "series_id"]
    champ = frame[frame["model_version"] == champion][[*key, "origin", "forecast", "actual", "step_seconds"]]
    chall = frame[frame["model_version"] == challenger][[*key, "forecast"]]
    pairs = champ.merge(chall, on=key, suffixes=("_champion", "_challenger"))
    return pairs.drop_duplicates(key)


def live_gate(
    settings: Settings,
    dataset: str,
    challenger: str,
    champion: str,
    *,
    stage: str,
    since: str | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.0,
) -> dict[str, Any]:
    """The shadow or canary gate: the DM-HLN test on paired live forecasts whose actuals arrived.

    Losses are absolute errors scaled by each series' seasonal in-sample MAE (MASE terms), as in
    the backtest gate. Logged to an MLflow run of the comparison.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from seqops.promotion.statistics import gate
    from seqops.registry.tracking import tracked_run

    pairs, loss_champion, loss_challenger, actual = _live_losses(
        settings, dataset, challenger, champion, since
    )
    verdict = gate(
        loss_champion, loss_challenger, horizon=actual.shape[1], alpha=alpha, min_effect=min_effect
    )
    with tracked_run(settings, dataset, run_name=f"{dataset}-promotion-v{challenger}-{stage}") as run:
        run.set_tags(
            {
                "seqops.promotion.gate": stage,
                "seqops.promotion.challenger": challenger,
                "seqops.promotion.against": f"champion v{champion}",
                "seqops.promotion.decision": verdict.decision,
            }
        )
        run.log_metrics(
            {
                "gate.pairs": float(len(pairs)),
                "gate.mase_champion": verdict.better.mean_champion,
                "gate.mase_challenger": verdict.better.mean_challenger,
                "gate.p_better": verdict.better.p_value,
                "gate.p_worse": verdict.worse.p_value,
            }
        )
        run.log_dict({"pairs": len(pairs), **verdict.to_dict()}, f"gate_{stage}.json")
        horizon = actual.shape[1]
        per_series = (
            pd.DataFrame(
                {
                    "series_id": np.repeat(pairs["series_id"].to_numpy(), horizon),
                    "champion": loss_champion,
                    "challenger": loss_challenger,
                }
            )
            .groupby("series_id")[["champion", "challenger"]]
            .mean()
        )
        with tempfile.TemporaryDirectory() as tmp:
            per_series.to_csv(Path(tmp) / "per_series_mase.csv")
            _plot(
                per_series,
                f"champion v{champion}",
                challenger,
                f"{stage} gate: {verdict.decision}",
                Path(tmp) / "champion_vs_challenger.png",
                what=f"MASE on the paired {stage} forecasts",
            )
            run.log_artifacts(tmp, f"gate_{stage}")
    return {"stage": stage, "pairs": int(len(pairs)), "run_id": run.run_id, **verdict.to_dict()}


def _live_losses(settings: Settings, dataset: str, challenger: str, champion: str, since: str | None):
    """(pairs, champion losses, challenger losses, actuals) of the paired live forecasts: absolute
    errors scaled by each series' seasonal in-sample MAE (MASE terms)."""
    import numpy as np

    from seqops.core.store import CuratedStore
    from seqops.training.metrics import seasonal_scale

    pairs = live_pairs(settings, dataset, challenger, champion, since=since)
    if pairs.empty:
        raise RuntimeError(f"no paired live forecasts of v{challenger} and v{champion} with actuals yet")
    spec = settings.window(dataset)
    history = CuratedStore(settings).read(dataset, series_ids=sorted(set(pairs["series_id"])))
    scales = {
        sid: float(seasonal_scale([g["value"].to_numpy()], spec.season)[0])
        for sid, g in history.groupby("series_id")
    }
    scale = pairs["series_id"].map(scales).to_numpy()[:, None]
    actual = np.array(pairs["actual"].tolist(), dtype=np.float64)
    loss_champion = (np.abs(actual - np.array(pairs["forecast_champion"].tolist())) / scale).ravel()
    loss_challenger = (np.abs(actual - np.array(pairs["forecast_challenger"].tolist())) / scale).ravel()
    return pairs, loss_champion, loss_challenger, actual


def canary_regressed(
    settings: Settings, dataset: str, challenger: str, champion: str, since: str, *, pairs: int
) -> bool:
    """An interim look at the canary (``seqops.promotion.statistics.interim_stop``) with ``pairs``
    paired forecasts counted: is the challenger already significantly worse? Then the gate judges
    now, and rolls back, without the full sample. Reads the losses only when a look is due."""
    from seqops.promotion.statistics import interim_look_due, interim_stop

    full = settings.promotion_min_pairs
    if not interim_look_due(pairs, full):
        return False
    _, loss_champion, loss_challenger, actual = _live_losses(settings, dataset, challenger, champion, since)
    return interim_stop(loss_champion, loss_challenger, horizon=actual.shape[1], pairs=pairs, full=full)


# ---- the promote_forecaster flow's steps (one per DAG task) ----------------------------------------
def candidate(settings: Settings, dataset: str, version: str | None) -> dict[str, Any]:
    """The challenger to promote and the champion it faces; refuses one a newer challenger superseded."""
    from seqops.registry.registry import CHALLENGER, CHAMPION, Registry

    registry = Registry(settings)
    current = registry.by_alias(dataset, CHALLENGER)
    if current is None:
        raise LookupError(f"{dataset!r} has no challenger to promote")
    if version is not None and version != current.version:
        raise LookupError(f"version {version} was superseded by challenger version {current.version}")
    champion = registry.by_alias(dataset, CHAMPION)
    return {
        "dataset": dataset,
        "version": current.version,
        "champion": champion.version if champion else None,
    }


def set_stage(settings: Settings, dataset: str, mode: str) -> None:
    """Route the dataset for a promotion stage: shadow, canary or champion only."""
    from seqops.registry.registry import Registry, Route, set_route

    set_route(Registry(settings), dataset, Route(mode=mode, canary_share=settings.promotion_canary_share))


def stop(settings: Settings, dataset: str, version: str, reason: str) -> None:
    """A gate said no: archive the challenger with the reason; the router serves the champion only."""
    from seqops.registry.registry import Registry, reject

    reject(Registry(settings), dataset, version, reason=reason)


def paired_count(settings: Settings, dataset: str, challenger: str, champion: str, since: str) -> int:
    return len(live_pairs(settings, dataset, challenger, champion, since=since))


def evidence_markdown(settings: Settings, cand: dict[str, Any], gates: list[dict[str, Any]]) -> str:
    """The approval body: what a person needs to decide, with links to the MLflow runs."""
    from seqops.registry.registry import Registry

    experiment = Registry(settings).experiment_id(cand["dataset"])
    mlflow = f"http://{settings.host}:{settings.mlflow_port}/#/experiments/{experiment}/runs"
    against = f"champion v{cand['champion']}" if cand["champion"] else "the naive baselines (first model)"
    lines = [
        f"**{cand['dataset']}: challenger v{cand['version']} against {against}**",
        "",
        "| gate | decision | MASE champion | MASE challenger | change | p better | p worse | forecasts "
        "| run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in gates:
        b = g["better"]
        lines.append(
            f"| {g.get('stage', 'backtest')} | {g['decision']} | {b['mean_champion']:.4f} | "
            f"{b['mean_challenger']:.4f} | {b['relative_change']:+.1%} | {b['p_value']:.3g} | "
            f"{g['worse']['p_value']:.3g} | {b['n'] // b['horizon']} | "
            f"[{g['run_id'][:8]}]({mlflow}/{g['run_id']}) |"
        )
    lines += ["", *[f"- {g.get('stage', 'backtest')}: {g['reason']}" for g in gates]]
    lines += ["", "Approve to make it the champion (the current one stays as `previous_champion`)."]
    return "\n".join(lines)


def approve(
    settings: Settings, cand: dict[str, Any], approved_by: str, evidence_run_id: str
) -> dict[str, Any]:
    from seqops.registry.registry import Registry, promote

    promote(
        Registry(settings),
        cand["dataset"],
        cand["version"],
        approved_by=approved_by,
        evidence_run_id=evidence_run_id,
    )
    return {**cand, "promoted": True, "approved_by": approved_by}


def archive_unless_approved(settings: Settings, cand: dict[str, Any]) -> dict[str, Any]:
    """After the approval step: a challenger nobody approved (rejected, or timed out) is archived."""
    from seqops.registry.registry import APPROVED, REJECTED, Registry, model_name

    registry = Registry(settings)
    version = registry.get(model_name(cand["dataset"]), cand["version"])
    status = version.tags.get("validation_status")
    if status == APPROVED:
        return {**cand, "archived": False}
    if status == REJECTED:  # a gate stopped it: keep that gate's reason, only make sure of the route
        set_stage(settings, cand["dataset"], "champion")
        return {**cand, "archived": True, "reason": version.tags.get("rejected_reason")}
    stop(settings, cand["dataset"], cand["version"], "not approved (rejected, or no answer in time)")
    return {**cand, "archived": True}


def roll_back(settings: Settings, dataset: str, reason: str, by: str) -> dict[str, Any]:
    """Put the last approved champion back, with the reason and who asked on the version left.

    The ``rollback_forecaster`` DAG runs it, so a manual rollback has the same audit trail as a
    promotion (the Airflow run names who triggered it); ``seqops promote rollback`` triggers that DAG.
    """
    from seqops.registry.registry import CHAMPION, Registry, rollback

    settings.dataset(dataset)  # an undeclared name is refused with the declared ones
    registry = Registry(settings)
    current = registry.by_alias(dataset, CHAMPION)
    restored = rollback(registry, dataset, reason=f"{reason} (by {by})")
    if current is not None:
        registry.set_tags(dataset, current.version, {"rolled_back_by": by})
    return {
        "dataset": dataset,
        "from_version": current.version if current else None,
        "to_version": restored.version,
        "reason": reason,
        "by": by,
    }
