"""The ``train_forecaster`` stage: Feast training set -> fit -> backtest -> MLflow -> registry.

Plain functions, called by the DAG (one task each) and by ``seqops train``. Training data comes
only from the Feast training feature service (historical retrieval); the backtest folds are
retrieved the same way, after the training targets end, so nothing the model is scored on was
seen in training. Every run logs its parameters, per-epoch metrics, backtest metrics, a
forecast-vs-actual plot, the data snapshot (hash and range), the feature service and the git
commit, and the model in a format that loads for inference and for further training. The
registered version becomes ``challenger`` and waits for approval.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqops.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from seqops.core.windows import WindowSet
    from seqops.training.config import TrainConfig

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainPlan:
    """Which origins train, which validate, which are backtest folds (all UTC ISO strings)."""

    dataset: str
    train_start: str
    train_end: str  # last training origin: its targets end before the first fold origin
    fold_origins: list[str]
    origin_stride: int
    snapshot: dict[str, Any]

    def to_dict(self) -> dict:
        return asdict(self)


def code_version() -> dict[str, str]:
    """Tags naming the code that trained: the seqops version, and the git commit of an editable checkout."""
    from importlib.metadata import version

    from seqops.core.resources import source_checkout

    tags = {"seqops.version": version("seqops")}
    checkout = source_checkout()
    if checkout is not None:
        try:
            head = subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            ).stdout.strip()
        except OSError:
            head = ""
        if head:
            tags["mlflow.source.git.commit"] = head + ("-dirty" if dirty else "")
    return tags


def data_snapshot(settings: Settings, dataset: str) -> dict[str, Any]:
    """The curated data version training reads: table version, a hash of its files, its range."""
    from seqops.core.store import CuratedStore

    store = CuratedStore(settings)
    version = store.version(dataset)
    if version is None:
        raise RuntimeError(f"no curated data for dataset {dataset!r}: ingest batches first")
    files = store.files(dataset, version)
    frame = store.read(dataset, version=version, columns=["series_id", "timestamp"])
    return {
        "sha256": hashlib.sha256("\n".join(files).encode()).hexdigest(),
        "table": store.table_uri(dataset),
        "table_version": version,
        "files": len(files),
        "rows": int(len(frame)),
        "series": int(frame["series_id"].nunique()),
        "start": frame["timestamp"].min().isoformat(),
        "end": frame["timestamp"].max().isoformat(),
    }


def plan(
    settings: Settings,
    dataset: str,
    *,
    folds: int = 4,
    history_days: int | None = 730,
    origin_stride: int = 1,
) -> TrainPlan:
    """Choose fold origins at the end of the data, and the training origins before them."""
    import pandas as pd

    from seqops.features.tables import read_index

    spec = settings.window(dataset)
    step = pd.Timedelta(spec.step)
    horizon = spec.horizon * step
    index = read_index(settings, dataset)
    if index.empty:
        raise RuntimeError(f"no windows for {dataset!r}: run materialize_features first")
    last_origin = index["window_end"].max() - horizon  # the last origin with H known targets
    folds_at = [last_origin - (folds - 1 - k) * horizon for k in range(folds)]
    train_end = folds_at[0] - horizon  # targets of the last training origin end at the first fold
    first = index["window_end"].min()
    train_start = max(first, train_end - pd.Timedelta(days=history_days)) if history_days else first
    if train_end <= train_start:
        raise RuntimeError(
            f"{dataset!r} has too little history for {folds} backtest folds of {spec.horizon} steps"
        )
    return TrainPlan(
        dataset=dataset,
        train_start=train_start.isoformat(),
        train_end=train_end.isoformat(),
        fold_origins=[o.isoformat() for o in folds_at],
        origin_stride=origin_stride,
        snapshot=data_snapshot(settings, dataset),
    )


def _origin_pairs(settings: Settings, dataset: str, start: str, end: str, stride: int) -> pd.DataFrame:
    import pandas as pd

    from seqops.features.tables import read_index

    index = read_index(settings, dataset).rename(columns={"window_end": "origin"})
    keep = (index["origin"] >= pd.Timestamp(start)) & (index["origin"] <= pd.Timestamp(end))
    pairs = index[keep]
    if stride > 1:
        hours = (pairs["origin"] - pd.Timestamp(start)) // pd.Timedelta(hours=1)
        pairs = pairs[hours % stride == 0]
    return pairs.reset_index(drop=True)


def training_set(settings: Settings, the_plan: TrainPlan, progress: Progress = print) -> WindowSet:
    """Training windows by Feast historical retrieval (the training feature service)."""
    from seqops.features.training_set import build_training_set

    pairs = _origin_pairs(
        settings, the_plan.dataset, the_plan.train_start, the_plan.train_end, the_plan.origin_stride
    )
    progress(
        f"retrieving {len(pairs):,} training windows from Feast ({the_plan.train_start} .. "
        f"{the_plan.train_end})"
    )
    last = [0]

    def report(done: int, total: int) -> None:
        if done - last[0] >= 50_000 or done == total:
            progress(f"  historical retrieval {done:,}/{total:,} rows")
            last[0] = done

    return build_training_set(the_plan.dataset, pairs, settings=settings, progress=report)


def fold_set(settings: Settings, the_plan: TrainPlan, series_ids: tuple[str, ...]) -> WindowSet:
    """The backtest folds' windows and targets, by the same historical retrieval."""
    import pandas as pd

    from seqops.features.tables import read_index
    from seqops.features.training_set import build_training_set

    index = read_index(settings, the_plan.dataset).rename(columns={"window_end": "origin"})
    wanted = index[index["origin"].isin(pd.to_datetime(the_plan.fold_origins, utc=True))]
    return build_training_set(the_plan.dataset, wanted, series_ids=series_ids, settings=settings)


def _checkpoint_dir(settings: Settings, the_plan: TrainPlan, config: TrainConfig) -> Path:
    """Keyed by data and config, so a retried task resumes the same training from its checkpoint."""
    key = hashlib.sha256(
        json.dumps([the_plan.to_dict(), config.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()[:16]
    return settings.home / "checkpoints" / the_plan.dataset / key


def train(
    dataset: str = "pjm",
    *,
    profile: str = "default",
    overrides: dict[str, Any] | None = None,
    folds: int = 4,
    history_days: int | None = 730,
    origin_stride: int = 1,
    reason: str = "manual",
    trigger_report: str | None = None,
    settings: Settings,
    progress: Progress = print,
) -> dict[str, Any]:
    """Fit a forecaster on Feast training data; log the run and the model to MLflow.

    ``reason`` says why it trains (``manual``, ``schedule``, or the drift check's reason) and
    ``trigger_report`` names the drift report (its MLflow run and HTML) that asked for it; both are
    tags of the run and, through ``register``, of the registered version.

    Returns a small dict (XCom-safe): ``run_id``, ``model_uri``, ``experiment_id``, the plan.
    """
    import numpy as np

    from seqops.core.windows import split_last_origins
    from seqops.feature_repo.names import names
    from seqops.registry.packaging import bundle_from_fit, log_model
    from seqops.registry.tracking import tracked_run
    from seqops.training.config import config_for
    from seqops.training.train import fit

    config = config_for(settings.window(dataset), profile, **(overrides or {}))
    the_plan = plan(settings, dataset, folds=folds, history_days=history_days, origin_stride=origin_stride)
    ws = training_set(settings, the_plan, progress)
    if len(ws) == 0:
        raise RuntimeError(f"Feast returned no training windows for {dataset!r}: check materialize_features")
    train_ws, val_ws = split_last_origins(ws, config.val_origins)
    run_name = f"{dataset}-{reason.split()[0].strip(':')}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with tracked_run(settings, dataset, run_name=run_name) as run:
        run.set_tags(
            {
                "seqops.dataset": dataset,
                "seqops.trigger": reason,
                **({"seqops.trigger_report": trigger_report} if trigger_report else {}),
                "seqops.feature_service": names(dataset).training,
                "seqops.data_snapshot": the_plan.snapshot["sha256"],
                **code_version(),
            }
        )
        run.log_params({f"model.{k}": v for k, v in config.model_dump(mode="json").items()})
        run.log_params(
            {
                "data.snapshot_sha256": the_plan.snapshot["sha256"],
                "data.table_version": the_plan.snapshot["table_version"],
                "data.start": the_plan.snapshot["start"],
                "data.end": the_plan.snapshot["end"],
                "data.series": the_plan.snapshot["series"],
                "data.train_origins": f"{the_plan.train_start}..{the_plan.train_end}",
                "data.train_windows": len(train_ws),
                "data.val_windows": len(val_ws),
                "data.origin_stride": origin_stride,
                "seqops.features.service": names(dataset).training,
            }
        )
        run.log_dict(the_plan.to_dict(), "plan.json")

        logged: set[int] = set()

        def log_epoch(stats) -> None:
            metrics = {"train_loss": stats.train_loss, "val_loss": stats.val_loss, "lr": stats.lr}
            run.log_metrics({**metrics, "windows_per_s": stats.samples_per_s}, step=stats.epoch)
            logged.add(stats.epoch)

        def on_epoch(stats) -> None:
            progress(stats.line())
            log_epoch(stats)

        progress(
            f"training on {len(train_ws):,} windows, validating on {len(val_ws):,} (MLflow run {run.run_id})"
        )
        result = fit(
            train_ws,
            val_ws,
            config,
            checkpoint_dir=_checkpoint_dir(settings, the_plan, config),
            on_epoch=on_epoch,
        )
        resumed = [stats for stats in result.history if stats.epoch not in logged]
        if resumed:  # epochs finished before a restart: their curve belongs to this run too
            progress(f"resumed from a checkpoint after epoch {resumed[-1].epoch}")
            for stats in resumed:
                log_epoch(stats)
        run.log_metrics(
            {
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "train_seconds": result.train_seconds,
            }
        )
        run.set_tags({"seqops.stop_reason": result.stop_reason})
        example = ws.subset(np.arange(min(2, len(ws))))
        info = log_model(
            bundle_from_fit(result, ws),
            name="model",
            example=example,
            metadata={"data_snapshot": the_plan.snapshot["sha256"]},
        )
    return {
        "dataset": dataset,
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "model_uri": info.model_uri,
        "plan": the_plan.to_dict(),
        "trigger": {"reason": reason, **({"report": trigger_report} if trigger_report else {})},
    }


def backtest(trained: dict[str, Any], *, settings: Settings, progress: Progress = print) -> dict:
    """Score the model, naive and seasonal naive on the same folds; log metrics and plots."""
    import numpy as np
    import pandas as pd

    from seqops.core.store import CuratedStore
    from seqops.registry.packaging import load_bundle
    from seqops.registry.registry import Registry
    from seqops.registry.tracking import tracked_run
    from seqops.training.backtest import score_folds
    from seqops.training.plots import plot_forecasts
    from seqops.training.train import predict

    the_plan = TrainPlan(**trained["plan"])
    Registry(settings)  # points MLflow at this home's store: an Airflow task starts a fresh process
    bundle = load_bundle(trained["model_uri"])
    config = bundle.config
    fc = fold_set(settings, the_plan, bundle.series_ids)
    if len(fc) == 0:
        raise RuntimeError("no backtest fold has a full window: nothing to score")
    history = CuratedStore(settings).read(the_plan.dataset)
    pred = predict(bundle.model, fc)
    if pred.ndim == 3:  # quantile model: score the median
        pred = pred[..., int(np.argmin(np.abs(np.array(config.quantiles) - 0.5)))]
    ids = [fc.series_ids[i] for i in fc.series_idx]
    origins = pd.to_datetime(fc.origin).tz_localize("UTC")
    by_series = {sid: g.set_index("timestamp")["value"] for sid, g in history.groupby("series_id")}
    insample = [by_series[s][by_series[s].index <= o].to_numpy() for s, o in zip(ids, origins, strict=True)]
    scores = score_folds(
        fc.x, fc.y, pred, insample=insample, season=config.season, series_ids=ids, origins=origins
    )
    per, summary = scores.per_series, scores.summary
    ts = fc.target_timestamps()
    forecasts = pd.DataFrame(
        {
            "series_id": np.repeat(ids, fc.horizon),
            "origin": np.repeat(
                pd.DatetimeIndex(fc.origin), fc.horizon
            ),  # naive UTC, as seqops.training.plots
            "step": np.tile(np.arange(1, fc.horizon + 1), len(fc)),
            "timestamp": ts.ravel(),
            "actual": fc.y.ravel().astype(np.float64),
            **{name: f.ravel() for name, f in scores.forecasts.items()},
        }
    )
    with tracked_run(settings, the_plan.dataset, run_id=trained["run_id"]) as run:
        for model_name, values in summary.items():
            if isinstance(values, dict):
                run.log_metrics({f"backtest.{model_name}.{k}": v for k, v in values.items()})
        run.log_metrics(
            {
                "backtest.mase_vs_seasonal_naive": summary["mase_ratio"],
                "backtest.mase_vs_best_baseline": summary["mase_vs_best_baseline"],
            }
        )
        run.set_tags({"seqops.best_baseline": summary["best_baseline"]})
        with tempfile.TemporaryDirectory() as tmp:
            per.to_csv(Path(tmp) / "backtest_per_series.csv", index=False)
            forecasts.to_csv(Path(tmp) / "backtest_forecasts.csv", index=False)
            plot = plot_forecasts(
                forecasts[forecasts["origin"] == forecasts["origin"].max()],
                Path(tmp) / "forecast_vs_actual.png",
                history=history,
                title=f"{the_plan.dataset}: forecast vs actual (last backtest fold)",
            )
            run.log_artifacts(tmp, "backtest")
            progress(f"logged {plot.name} to the run's backtest/ artifacts")
    best = summary["best_baseline"]
    progress(
        f"backtest over {len(the_plan.fold_origins)} folds x {len(set(ids))} series: model sMAPE "
        f"{summary['model']['smape']:.3f} MASE {summary['model']['mase']:.3f} | best baseline ({best}) "
        f"sMAPE {summary[best]['smape']:.3f} MASE {summary[best]['mase']:.3f}"
    )
    return {**trained, "backtest": summary}


def register(evaluated: dict[str, Any], *, settings: Settings, progress: Progress = print) -> dict:
    """Register the run's model as a new version tagged with its evidence; it becomes challenger."""
    from seqops.feature_repo.names import names
    from seqops.registry.registry import Registry

    registry = Registry(settings)
    the_plan = TrainPlan(**evaluated["plan"])
    bt = evaluated["backtest"]
    tags = {
        "dataset": the_plan.dataset,
        "data_snapshot": the_plan.snapshot["sha256"],
        "data_version": str(the_plan.snapshot["table_version"]),
        "data_start": the_plan.snapshot["start"],
        "data_end": the_plan.snapshot["end"],
        "train_origins": f"{the_plan.train_start}..{the_plan.train_end}",
        "feature_service": names(the_plan.dataset).training,
        "backtest_folds": ",".join(the_plan.fold_origins),
        **{
            f"backtest_{m}_{k}": f"{v:.6g}"
            for m in ("model", "naive", "seasonal_naive")
            for k, v in bt[m].items()
        },
        "backtest_mase_vs_seasonal_naive": f"{bt['mase_ratio']:.6g}",
        "backtest_best_baseline": bt["best_baseline"],
        **{f"trigger_{k}": v for k, v in evaluated.get("trigger", {}).items()},
        "backtest_mase_vs_best_baseline": f"{bt['mase_vs_best_baseline']:.6g}",
    }
    version = registry.register(the_plan.dataset, evaluated["run_id"], evaluated["model_uri"], tags)
    progress(
        f"registered {version.name} version {version.version} as {', '.join(version.aliases)} "
        f"(validation_status={version.tags.get('validation_status')}); awaiting approval"
    )
    return {
        "name": version.name,
        "version": version.version,
        "aliases": version.aliases,
        "run_id": evaluated["run_id"],
        "model_uri": version.uri,
        "backtest": bt,
    }


def features_ready(dataset: str, *, settings: Settings) -> tuple[bool, str]:
    """Whether ``dataset`` has window tables and a materialized online store, and why not."""
    from seqops.features.tables import windows_path

    if not windows_path(settings, dataset).exists():
        return False, (
            f"no window tables for {dataset!r} yet: ingest data (ingest_sequences) and let "
            f"materialize_features run, or trigger it with dataset={dataset!r}"
        )
    from seqops.features.store import materialized_until

    try:
        until = materialized_until(dataset, settings)
    except Exception as exc:  # registry without this dataset's views
        return (
            False,
            f"the feature views of {dataset!r} are not applied yet ({exc}); run materialize_features",
        )
    if until is None:
        return False, f"the online store of {dataset!r} was never materialized; run materialize_features"
    return True, f"features of {dataset!r} materialized until {until.isoformat()}"
