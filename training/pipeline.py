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

from seqops.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd

    from training.config import TrainConfig
    from training.windows import WindowSet

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


def git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{commit}{'-dirty' if dirty else ''}"
    except OSError:
        return "unknown"


def data_snapshot(settings: Settings, dataset: str) -> dict[str, Any]:
    """Content hash and range of the curated data the windows were cut from."""
    from seqops.store import CuratedStore

    store = CuratedStore(settings)
    files = store.files(dataset)
    if not files:
        raise RuntimeError(f"no curated data for dataset {dataset!r}: ingest batches first")
    digest = hashlib.sha256()
    for path in files:  # batch files are content-addressed by batch id: names + sizes identify them
        digest.update(str(path.relative_to(store.dataset_dir(dataset))).encode())
        digest.update(str(path.stat().st_size).encode())
    frame = store.read(dataset)
    return {
        "sha256": digest.hexdigest(),
        "files": len(files),
        "rows": int(len(frame)),
        "series": int(frame["series_id"].nunique()),
        "start": frame["timestamp"].min().isoformat(),
        "end": frame["timestamp"].max().isoformat(),
    }


def make_train_config(dataset: str, profile: str = "default", **overrides: Any) -> TrainConfig:
    """The dataset's window geometry (features.config, the single source) + a training profile."""
    from features.config import window_spec
    from training.config import make_config

    spec = window_spec(dataset)
    season = max(1, round(86_400 / spec.step.total_seconds())) if spec.step.total_seconds() < 86_400 else 7
    base = {"input_size": spec.length, "horizon": spec.horizon, "scaler": spec.scaler, "season": season}
    return make_config(profile, **{**base, **overrides})


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

    from features.config import window_spec
    from features.windows import read_index

    spec = window_spec(dataset)
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

    from features.windows import read_index

    index = read_index(settings, dataset).rename(columns={"window_end": "origin"})
    keep = (index["origin"] >= pd.Timestamp(start)) & (index["origin"] <= pd.Timestamp(end))
    pairs = index[keep]
    if stride > 1:
        hours = (pairs["origin"] - pd.Timestamp(start)) // pd.Timedelta(hours=1)
        pairs = pairs[hours % stride == 0]
    return pairs.reset_index(drop=True)


def training_set(settings: Settings, the_plan: TrainPlan, progress: Progress = print) -> WindowSet:
    """Training windows by Feast historical retrieval (the training feature service)."""
    from features.training_set import build_training_set

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

    from features.training_set import build_training_set
    from features.windows import read_index

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
    settings: Settings | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Fit a forecaster on Feast training data; log the run and the model to MLflow.

    Returns a small dict (XCom-safe): ``run_id``, ``model_uri``, ``experiment_id``, the plan.
    """
    import mlflow
    import numpy as np

    from features.config import names
    from training.packaging import bundle_from_fit, log_model
    from training.registry import Registry
    from training.train import fit
    from training.windows import split_last_origins

    settings = settings or get_settings()
    registry = Registry(settings)
    config = make_train_config(dataset, profile, **(overrides or {}))
    the_plan = plan(settings, dataset, folds=folds, history_days=history_days, origin_stride=origin_stride)
    ws = training_set(settings, the_plan, progress)
    if len(ws) == 0:
        raise RuntimeError(f"Feast returned no training windows for {dataset!r}: check materialize_features")
    train_ws, val_ws = split_last_origins(ws, config.val_origins)
    experiment_id = registry.experiment_id(dataset)
    run_name = f"{dataset}-{reason}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.set_tags(
            {
                "seqops.dataset": dataset,
                "seqops.trigger": reason,
                "seqops.feature_service": names(dataset).training,
                "seqops.data_snapshot": the_plan.snapshot["sha256"],
                "mlflow.source.git.commit": git_commit(settings.repo_root),
            }
        )
        mlflow.log_params({f"model.{k}": v for k, v in config.model_dump(mode="json").items()})
        mlflow.log_params(
            {
                "data.snapshot_sha256": the_plan.snapshot["sha256"],
                "data.start": the_plan.snapshot["start"],
                "data.end": the_plan.snapshot["end"],
                "data.series": the_plan.snapshot["series"],
                "data.train_origins": f"{the_plan.train_start}..{the_plan.train_end}",
                "data.train_windows": len(train_ws),
                "data.val_windows": len(val_ws),
                "data.origin_stride": origin_stride,
                "features.service": names(dataset).training,
            }
        )
        mlflow.log_dict(the_plan.to_dict(), "plan.json")

        logged: set[int] = set()

        def log_epoch(stats) -> None:
            metrics = {"train_loss": stats.train_loss, "val_loss": stats.val_loss, "lr": stats.lr}
            mlflow.log_metrics({**metrics, "windows_per_s": stats.samples_per_s}, step=stats.epoch)
            logged.add(stats.epoch)

        def on_epoch(stats) -> None:
            progress(stats.line())
            log_epoch(stats)

        progress(
            f"training on {len(train_ws):,} windows, validating on {len(val_ws):,} (MLflow run "
            f"{run.info.run_id})"
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
        mlflow.log_metrics(
            {
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "train_seconds": result.train_seconds,
            }
        )
        mlflow.set_tag("seqops.stop_reason", result.stop_reason)
        example = ws.subset(np.arange(min(2, len(ws))))
        info = log_model(
            bundle_from_fit(result, ws),
            name="model",
            example=example,
            metadata={"data_snapshot": the_plan.snapshot["sha256"]},
        )
    return {
        "dataset": dataset,
        "run_id": run.info.run_id,
        "experiment_id": experiment_id,
        "model_uri": info.model_uri,
        "plan": the_plan.to_dict(),
    }


def backtest(
    trained: dict[str, Any], *, settings: Settings | None = None, progress: Progress = print
) -> dict:
    """Score the trained model and the seasonal naive on the same folds; log metrics and plots."""
    import mlflow
    import numpy as np
    import pandas as pd

    from seqops.store import CuratedStore
    from training.baselines import seasonal_naive
    from training.metrics import per_series, seasonal_scale
    from training.packaging import load_bundle
    from training.plots import plot_forecasts
    from training.registry import Registry
    from training.train import predict

    settings = settings or get_settings()
    Registry(settings)  # points mlflow at this home's tracking store
    the_plan = TrainPlan(**trained["plan"])
    bundle = load_bundle(trained["model_uri"])
    config = bundle.config
    fc = fold_set(settings, the_plan, bundle.series_ids)
    if len(fc) == 0:
        raise RuntimeError("no backtest fold has a full window: nothing to score")
    history = CuratedStore(settings).read(the_plan.dataset)
    pred = predict(bundle.model, fc)
    if pred.ndim == 3:  # quantile model: score the median
        pred = pred[..., int(np.argmin(np.abs(np.array(config.quantiles) - 0.5)))]
    naive = seasonal_naive(fc.x, fc.horizon, config.season)
    ids = [fc.series_ids[i] for i in fc.series_idx]
    origins = pd.to_datetime(fc.origin).tz_localize("UTC")
    by_series = {sid: g.set_index("timestamp")["value"] for sid, g in history.groupby("series_id")}
    insample = [by_series[s][by_series[s].index <= o].to_numpy() for s, o in zip(ids, origins, strict=True)]
    scale = seasonal_scale(insample, config.season)
    rows = []
    for name, forecast in (("model", pred), ("seasonal_naive", naive)):
        frame = per_series(fc.y, forecast, scale=scale, series_ids=ids)
        rows.append(frame.assign(model=name, origin=origins))
    per = pd.concat(rows, ignore_index=True)
    metrics = ["smape", "mase", "mae", "rmse"]
    overall = per.groupby("model")[metrics].mean()
    summary = {m: {k: float(overall.loc[m, k]) for k in metrics} for m in overall.index}
    summary["mase_ratio"] = summary["model"]["mase"] / summary["seasonal_naive"]["mase"]
    ts = fc.target_timestamps()
    forecasts = pd.DataFrame(
        {
            "series_id": np.repeat(ids, fc.horizon),
            "origin": np.repeat(pd.DatetimeIndex(fc.origin), fc.horizon),  # naive UTC, as training.plots
            "step": np.tile(np.arange(1, fc.horizon + 1), len(fc)),
            "timestamp": ts.ravel(),
            "actual": fc.y.ravel().astype(np.float64),
            "model": pred.ravel().astype(np.float64),
            "seasonal_naive": naive.ravel().astype(np.float64),
        }
    )
    with mlflow.start_run(run_id=trained["run_id"]):
        for model_name, values in summary.items():
            if isinstance(values, dict):
                mlflow.log_metrics({f"backtest.{model_name}.{k}": v for k, v in values.items()})
        mlflow.log_metric("backtest.mase_vs_seasonal_naive", summary["mase_ratio"])
        with tempfile.TemporaryDirectory() as tmp:
            per.to_csv(Path(tmp) / "backtest_per_series.csv", index=False)
            forecasts.to_csv(Path(tmp) / "backtest_forecasts.csv", index=False)
            plot = plot_forecasts(
                forecasts[forecasts["origin"] == forecasts["origin"].max()],
                Path(tmp) / "forecast_vs_actual.png",
                history=history,
                title=f"{the_plan.dataset}: forecast vs actual (last backtest fold)",
            )
            mlflow.log_artifacts(tmp, "backtest")
            progress(f"logged {plot.name} to the run's backtest/ artifacts")
    progress(
        f"backtest over {len(the_plan.fold_origins)} folds x {len(set(ids))} series: model sMAPE "
        f"{summary['model']['smape']:.3f} MASE {summary['model']['mase']:.3f} | seasonal naive sMAPE "
        f"{summary['seasonal_naive']['smape']:.3f} MASE {summary['seasonal_naive']['mase']:.3f}"
    )
    return {**trained, "backtest": summary}


def register(
    evaluated: dict[str, Any], *, settings: Settings | None = None, progress: Progress = print
) -> dict:
    """Register the run's model as a new version tagged with its evidence; it becomes challenger."""
    from features.config import names
    from training.registry import Registry

    settings = settings or get_settings()
    registry = Registry(settings)
    the_plan = TrainPlan(**evaluated["plan"])
    bt = evaluated["backtest"]
    tags = {
        "dataset": the_plan.dataset,
        "data_snapshot": the_plan.snapshot["sha256"],
        "data_start": the_plan.snapshot["start"],
        "data_end": the_plan.snapshot["end"],
        "train_origins": f"{the_plan.train_start}..{the_plan.train_end}",
        "feature_service": names(the_plan.dataset).training,
        "backtest_folds": ",".join(the_plan.fold_origins),
        **{f"backtest_{m}_{k}": f"{v:.6g}" for m in ("model", "seasonal_naive") for k, v in bt[m].items()},
        "backtest_mase_vs_seasonal_naive": f"{bt['mase_ratio']:.6g}",
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


def backtest_file(
    path: Path,
    *,
    horizon: int,
    season: int,
    dataset: str = "backtest",
    home: Path | None = None,
    folds: int = 4,
    time_budget_s: float = 600,
    max_epochs: int = 30,
    progress: Progress = print,
) -> dict[str, Any]:
    """The whole path on one canonical file, in a fresh home: validate, features, train, backtest.

    Returns the backtest summary (``model`` and ``seasonal_naive`` scores) plus where things are.
    Raises ``seqops.ingest.BatchRejected`` when the file fails validation (it is quarantined).
    """
    import os

    from seqops.canonical import coerce, read_batch

    home = Path(home or tempfile.mkdtemp(prefix="seqops-backtest-"))
    home.mkdir(parents=True, exist_ok=True)
    frame = coerce(read_batch(path)).dropna(subset=["timestamp"])
    steps = frame.sort_values("timestamp").groupby("series_id")["timestamp"].diff().dropna()
    if steps.empty:
        raise ValueError(f"{path}: no series has two timestamps; cannot infer its frequency")
    step = steps.mode().iloc[0]
    length = 7 * season
    datasets_file = home / "datasets.toml"
    datasets_file.write_text(
        f'[{dataset}]\ndescription = "seqops backtest of {path.name}"\n'
        f'freq = "{int(step.total_seconds())}s"\nmax_gap_steps = {max(24, season)}\nallow_new_series = true\n'
    )
    env = {
        "SEQOPS_HOME": str(home),
        "SEQOPS_DATASETS_FILE": str(datasets_file),
        "SEQOPS_FEATURES_DATASETS": dataset,
        "SEQOPS_FEATURES_WINDOW_LENGTH": str(length),
        "SEQOPS_FEATURES_HORIZON": str(horizon),
        "SEQOPS_FEATURES_HORIZONS": "{}",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the fresh home's policy, read by every stage; restored afterwards
    try:
        return _backtest_in_home(
            path, dataset, home, step, length, horizon, season, folds, time_budget_s, max_epochs, progress
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _backtest_in_home(
    path: Path,
    dataset: str,
    home: Path,
    step: Any,
    length: int,
    horizon: int,
    season: int,
    folds: int,
    time_budget_s: float,
    max_epochs: int,
    progress: Progress,
) -> dict[str, Any]:
    import pandas as pd

    settings = get_settings()
    from features.materialize import materialize
    from features.store import apply
    from features.windows import build_windows
    from seqops.ingest import BatchRejected, IngestOutcome, ingest_file
    from seqops.platform import init_mlflow

    progress(f"home {home}: validating {path.name} (step {pd.Timedelta(step)}, L={length}, H={horizon})")
    outcome = ingest_file(settings, path, dataset)
    progress(outcome.message.splitlines()[0])
    if not outcome.accepted:
        raise BatchRejected(IngestOutcome(**outcome.to_dict()))
    built = build_windows(dataset, settings=settings)
    progress(f"features: {built.windows:,} windows, {built.targets:,} targets; feast apply + materialize")
    apply(settings)
    materialize(dataset, settings=settings)
    init_mlflow(settings)
    overrides: dict[str, Any] = {"season": season, "max_epochs": max_epochs, "time_budget_s": time_budget_s}
    if length % 24:
        overrides["patch_len"] = season
    trained = train(
        dataset,
        overrides=overrides,
        folds=folds,
        history_days=None,
        reason="backtest",
        settings=settings,
        progress=progress,
    )
    evaluated = backtest(trained, settings=settings, progress=progress)
    summary = evaluated["backtest"]
    return {
        "model": summary["model"],
        "seasonal_naive": summary["seasonal_naive"],
        "mase_vs_seasonal_naive": summary["mase_ratio"],
        "folds": len(evaluated["plan"]["fold_origins"]),
        "horizon": horizon,
        "season": season,
        "run_id": evaluated["run_id"],
        "home": str(home),
    }


def features_ready(dataset: str, *, settings: Settings | None = None) -> tuple[bool, str]:
    """Whether ``dataset`` has window tables and a materialized online store, and why not."""
    from features.windows import windows_path

    settings = settings or get_settings()
    if not windows_path(settings, dataset).exists():
        return False, (
            f"no window tables for {dataset!r} yet: ingest data (ingest_sequences) and let "
            "materialize_features run, or trigger it with dataset={dataset!r}"
        )
    from features.store import materialized_until

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
