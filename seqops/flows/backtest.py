"""``seqops backtest``: the whole path on one canonical file in a fresh home.

Validate and publish the file, build and materialize its features, train, and backtest against
the baselines, with a :class:`Settings` made for that home and passed to every stage.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from seqops.core.settings import Settings
from seqops.flows.train import Progress


def backtest_file(
    path: Path,
    *,
    settings: Settings,
    horizon: int,
    season: int,
    dataset: str = "backtest",
    home: Path | None = None,
    folds: int = 4,
    time_budget_s: float | None = 600,
    max_epochs: int = 30,
    progress: Progress = print,
) -> dict[str, Any]:
    """The whole path on one canonical file, in a fresh home: validate, features, train, backtest.

    ``settings`` are the caller's; the run gets a copy on the embedded profile in ``home``.
    Returns the backtest summary (``model``, ``naive`` and ``seasonal_naive`` scores, the best
    baseline and the model's MASE ratio to it) plus where things are.
    Raises ``seqops.flows.ingest.BatchRejected`` when the file fails validation (it is quarantined).
    """
    from seqops.core.canonical import coerce, read_batch

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
        f"window_length = {length}\nhorizon = {horizon}\n"
    )
    # the fresh home's settings, passed to every stage: the caller's, on the embedded profile
    settings = settings.model_copy(
        update={
            "home": home,
            "datasets_file": datasets_file,
            "features_datasets": [dataset],
            "profile": "embedded",
            "mlflow_tracking_uri": None,
            "mlflow_artifact_root": None,
            "object_store_root": None,
        }
    )
    return _backtest_in_home(
        settings, path, dataset, step, length, horizon, season, folds, time_budget_s, max_epochs, progress
    )


def _backtest_in_home(
    settings: Settings,
    path: Path,
    dataset: str,
    step: Any,
    length: int,
    horizon: int,
    season: int,
    folds: int,
    time_budget_s: float | None,
    max_epochs: int,
    progress: Progress,
) -> dict[str, Any]:
    import pandas as pd

    from seqops.features.materialize import materialize
    from seqops.features.store import apply
    from seqops.features.tables import build_windows
    from seqops.flows.ingest import BatchRejected, IngestOutcome, ingest_file
    from seqops.flows.train import backtest, train
    from seqops.registry.tracking import init_tracking_store

    progress(
        f"home {settings.home}: validating {path.name} (step {pd.Timedelta(step)}, L={length}, H={horizon})"
    )
    outcome = ingest_file(settings, path, dataset)
    progress(outcome.message.splitlines()[0])
    if not outcome.accepted:
        raise BatchRejected(IngestOutcome(**outcome.to_dict()))
    built = build_windows(dataset, settings=settings)
    progress(f"features: {built.windows:,} windows, {built.targets:,} targets; feast apply + materialize")
    apply(settings)
    materialize(dataset, settings=settings)
    init_tracking_store(settings)
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
        "naive": summary["naive"],
        "seasonal_naive": summary["seasonal_naive"],
        "best_baseline": summary["best_baseline"],
        "mase_vs_seasonal_naive": summary["mase_ratio"],
        "mase_vs_best_baseline": summary["mase_vs_best_baseline"],
        "folds": len(evaluated["plan"]["fold_origins"]),
        "horizon": horizon,
        "season": season,
        "run_id": evaluated["run_id"],
        "home": str(settings.home),
    }
