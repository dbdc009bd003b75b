"""Training loop: time-split validation, early stopping, clipping, seeds, resumable checkpoints.

``fit`` trains a :class:`~seqops.training.model.LSTMForecaster` on a training :class:`WindowSet` and early
stops on a validation WindowSet (usually from :func:`seqops.core.windows.split_last_origins`).

Reproducibility: the model init, the shuffling (its own ``torch.Generator``) and dropout (the global
torch RNG) are seeded from ``config.seed``; deterministic kernels are on while ``fit`` runs. After
every epoch a checkpoint (model, optimizer, LR scheduler, both RNG states, epoch, best weights, best
loss, patience counter, history) is written atomically to ``checkpoint_dir/last.pt``; a run that was
killed and is started again with the same arguments resumes from it and ends with the same weights
as an uninterrupted run. The one exception is ``time_budget_s``: where a budget stops a run depends
on the wall clock.

Speed on CPU: the recurrence, not the matmuls, bounds an LSTM step, so the model reads the window in
patches (``patch_len``: 7 LSTM steps of 24 values instead of 168 steps of 1), trains with large
batches, and can autocast to bf16 (``precision``; 1.6-2x on this AVX512-BF16 CPU with the same
validation curve on M4). Threads: on a machine whose cores other processes also use, OpenMP's
spinning threads collapse (measured here under load: 1 thread 4.7k windows/s, 2 threads 1.3k;
``OMP_WAIT_POLICY=PASSIVE`` recovers 2 threads to the 1-thread rate), so ``num_threads=1`` is the
safe choice on a shared box and torch's default (all cores) on a dedicated one. ``torch.compile``
is not used: measured on the M4 model (batch 1024, 1 thread) it gave no gain (bf16 6.9k vs 7.2k
windows/s eager; fp32 4.09k vs 4.12k): the LSTM is one ATen op already and the rest is small.
See ``benchmarks/bench_neuralforecast.py`` for the comparison with NeuralForecast.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from seqops.core.windows import WindowSet
from seqops.training.config import TrainConfig
from seqops.training.model import LSTMForecaster

StopReason = Literal["patience", "max_epochs", "time_budget"]
CHECKPOINT_NAME = "last.pt"


@dataclass(frozen=True)
class EpochStats:
    """One epoch's progress line; handed to the ``on_epoch`` callback (MLflow, CLI)."""

    epoch: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    improved: bool
    lr: float
    windows: int
    samples_per_s: float
    elapsed_s: float

    def line(self) -> str:
        """A one-line human summary."""
        return (
            f"epoch {self.epoch:3d}  train {self.train_loss:.4f}  val {self.val_loss:.4f}"
            f"{' *' if self.improved else '  '}  lr {self.lr:.2e}  {self.samples_per_s:,.0f} win/s"
            f"  {self.elapsed_s:.0f}s"
        )


@dataclass
class FitResult:
    """A trained model (best validation weights, eval mode) and how it got there."""

    model: LSTMForecaster
    config: TrainConfig
    series_ids: tuple[str, ...]
    n_calendar: int
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stop_reason: StopReason = "max_epochs"
    windows_seen: int = 0
    train_seconds: float = 0.0

    @property
    def samples_per_s(self) -> float:
        return self.windows_seen / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def forecast_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    quantiles: tuple[float, ...],
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """MAE for a point forecast, mean pinball loss for quantiles; optionally weighted per window.

    Args:
        pred: [B, H, Q] scaled forecasts.
        target: [B, H] scaled targets.
        quantiles: the Q levels, or () for a point forecast (Q = 1).
        weight: [B] per-window weights (see :func:`loss_weights`); None = 1.
    """
    diff = target.unsqueeze(-1) - pred  # [B, H] -> [B, H, 1] - [B, H, Q]
    if quantiles:
        q = torch.tensor(quantiles, dtype=pred.dtype, device=pred.device)
        per_point = torch.maximum(q * diff, (q - 1.0) * diff)
    else:
        per_point = diff.abs()
    if weight is None:
        return per_point.mean()
    return (per_point.mean(dim=(1, 2)) * weight).mean()  # [B, H, Q] -> [B]


def loss_weights(ws: WindowSet, config: TrainConfig) -> np.ndarray:
    """[N] float32 per-window loss weights.

    'seasonal': scale / mean |x_t - x_{t-m}| of the input window, capped at ``max_loss_weight``, so
    the weighted scaled MAE equals the window's MASE with the window as in-sample data.
    """
    if config.loss_weighting == "none":
        return np.ones(len(ws), np.float32)
    m = config.season
    x = ws.x.astype(np.float64)
    seasonal = np.abs(x[:, m:] - x[:, :-m]).mean(axis=1)
    weight = np.divide(
        ws.scale[:, 1].astype(np.float64), seasonal, out=np.full(len(ws), np.inf), where=seasonal > 0
    )
    return np.minimum(weight, config.max_loss_weight).astype(np.float32)


@dataclass
class _Tensors:
    x: torch.Tensor
    y: torch.Tensor
    series_idx: torch.Tensor
    calendar: torch.Tensor | None
    weight: torch.Tensor | None

    @classmethod
    def of(
        cls, ws: WindowSet, device: torch.device, calendar: bool, weight: np.ndarray | None = None
    ) -> _Tensors:
        return cls(
            x=torch.from_numpy(ws.scaled_x()).to(device),
            y=torch.from_numpy(np.nan_to_num(ws.scaled_y())).to(device),
            series_idx=torch.from_numpy(ws.series_idx).to(device),
            calendar=torch.from_numpy(ws.calendar).to(device) if calendar and ws.n_calendar else None,
            weight=torch.from_numpy(weight).to(device) if weight is not None else None,
        )

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cal = self.calendar[idx] if self.calendar is not None else None
        return self.x[idx], self.y[idx], self.series_idx[idx], cal

    def weights(self, idx: torch.Tensor) -> torch.Tensor | None:
        return self.weight[idx] if self.weight is not None else None


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels while training; the caller's setting is restored afterwards."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _model_fields(config: TrainConfig) -> dict[str, Any]:
    # What must match for a checkpoint to be resumed (the budget, device and threads may change).
    skip = {"time_budget_s", "device", "num_threads"}
    return {k: v for k, v in config.model_dump().items() if k not in skip}


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def _mean_loss(model: nn.Module, data: _Tensors, quantiles: tuple[float, ...], batch_size: int) -> float:
    model.eval()
    total, n = 0.0, data.x.shape[0]
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=data.x.device)
        x, y, s, c = data.batch(idx)
        total += float(forecast_loss(model(x, s, c), y, quantiles, data.weights(idx))) * len(idx)
    return total / max(n, 1)


def fit(
    train: WindowSet,
    val: WindowSet | None,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    init_model: LSTMForecaster | None = None,
) -> FitResult:
    """Train the forecaster with early stopping on ``val``.

    Args:
        train: training windows (any number of series).
        val: validation windows, later in time than ``train``'s targets; None = monitor the
            training loss (no early stopping signal from held-out data).
        config: hyperparameters; ``input_size``/``horizon`` must match the windows.
        checkpoint_dir: where ``last.pt`` is written after every epoch and resumed from when present.
        on_epoch: called with each epoch's :class:`EpochStats` after its checkpoint is written.
        init_model: continue training this module (e.g. ``seqops.registry.packaging.load_for_training``)
            instead of a fresh one.

    Returns:
        The best-validation model and its history.
    """
    if (train.input_size, train.horizon) != (config.input_size, config.horizon):
        raise ValueError(
            f"windows are L={train.input_size}, H={train.horizon}; config says "
            f"L={config.input_size}, H={config.horizon}"
        )
    if len(train) == 0:
        raise ValueError("no training windows")
    if init_model is not None:
        config = config.model_copy(update={"skip_period": init_model.season})
    elif config.naive_skip and config.skip_period == "auto":
        chosen = choose_skip_period(val if val is not None and len(val) else train, config.season)
        config = config.model_copy(update={"skip_period": chosen})
    device = resolve_device(config.device)
    n_cal = train.n_calendar if config.calendar else 0
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        with _deterministic():
            return _fit(train, val, config, device, n_cal, checkpoint_dir, on_epoch, init_model)
    finally:
        torch.set_num_threads(threads)


def choose_skip_period(ws: WindowSet, season: int) -> int:
    """1 (last value) or ``season`` (seasonal naive): the naive forecast with the lower mean absolute
    error on ``ws`` in window scale, so each window counts alike. Ties go to the season."""
    x, y = ws.scaled_x().astype(np.float64), np.nan_to_num(ws.scaled_y()).astype(np.float64)
    known = ~np.isnan(ws.y)
    horizon, length = y.shape[1], x.shape[1]
    seasonal = x[:, length - season + np.arange(horizon) % season]
    last = np.repeat(x[:, -1:], horizon, axis=1)
    error = {p: float(np.abs(y - f)[known].mean()) for p, f in ((season, seasonal), (1, last))}
    return 1 if error[1] < error[season] else season


def _fit(
    train: WindowSet,
    val: WindowSet | None,
    config: TrainConfig,
    device: torch.device,
    n_cal: int,
    checkpoint_dir: Path | None,
    on_epoch: Callable[[EpochStats], None] | None,
    init_model: LSTMForecaster | None,
) -> FitResult:
    torch.manual_seed(config.seed)
    if init_model is not None:
        model = init_model
    else:
        model = LSTMForecaster.from_config(config, n_series=len(train.series_ids), n_calendar=n_cal)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_decay, patience=config.lr_patience - 1
    )
    shuffle = torch.Generator().manual_seed(config.seed)
    tr = _Tensors.of(train, device, config.calendar, loss_weights(train, config))
    va = (
        _Tensors.of(val, device, config.calendar, loss_weights(val, config))
        if val is not None and len(val)
        else None
    )
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.precision == "bf16"
        else contextlib.nullcontext()
    )

    result = FitResult(model=model, config=config, series_ids=train.series_ids, n_calendar=n_cal)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    start_epoch, bad_epochs, elapsed_before = 1, 0, 0.0
    ckpt_path = checkpoint_dir / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt["model_fields"] != _model_fields(config):
            raise ValueError(f"{ckpt_path} was written with a different config; remove it or match it")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        shuffle.set_state(ckpt["shuffle_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"])
        best_state = ckpt["best_state"]
        result.history = [EpochStats(**h) for h in ckpt["history"]]
        result.best_epoch, result.best_val_loss = ckpt["best_epoch"], ckpt["best_val_loss"]
        result.windows_seen, elapsed_before = ckpt["windows_seen"], ckpt["elapsed_s"]
        bad_epochs, start_epoch = ckpt["bad_epochs"], ckpt["epoch"] + 1
        if ckpt["stopped"]:
            start_epoch = config.max_epochs + 1  # finished run: nothing left to do
            result.stop_reason = ckpt["stop_reason"]

    n = len(train)
    per_epoch = min(config.epoch_windows or n, n)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, config.max_epochs + 1):
        model.train()
        epoch_t0 = time.perf_counter()
        perm = torch.randperm(n, generator=shuffle)[:per_epoch].to(device)
        total_loss, seen = 0.0, 0
        over_budget = False
        for start in range(0, per_epoch, config.batch_size):
            idx = perm[start : start + config.batch_size]
            x, y, s, c = tr.batch(idx)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                pred = model(x, s, c)
            loss = forecast_loss(pred.float(), y, config.quantiles, tr.weights(idx))
            loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total_loss += float(loss.detach()) * len(x)
            seen += len(x)
            if config.time_budget_s and elapsed_before + time.perf_counter() - t0 > config.time_budget_s:
                over_budget = True
                break
        epoch_s = time.perf_counter() - epoch_t0
        train_loss = total_loss / max(seen, 1)
        val_loss = _mean_loss(model, va, config.quantiles, 8192) if va is not None else train_loss
        scheduler.step(val_loss)
        improved = val_loss < result.best_val_loss
        if improved:
            result.best_val_loss, result.best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        result.windows_seen += seen
        elapsed = elapsed_before + time.perf_counter() - t0
        stats = EpochStats(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            best_val_loss=result.best_val_loss,
            improved=improved,
            lr=optimizer.param_groups[0]["lr"],
            windows=seen,
            samples_per_s=seen / epoch_s if epoch_s > 0 else 0.0,
            elapsed_s=elapsed,
        )
        result.history.append(stats)
        stop: StopReason | None = None
        if bad_epochs >= config.patience:
            stop = "patience"
        elif over_budget or (config.time_budget_s and elapsed >= config.time_budget_s):
            stop = "time_budget"
        elif epoch == config.max_epochs:
            stop = "max_epochs"
        if ckpt_path is not None:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            _save_atomic(
                {
                    "model_fields": _model_fields(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "shuffle_rng": shuffle.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "best_state": best_state,
                    "history": [asdict(h) for h in result.history],
                    "best_epoch": result.best_epoch,
                    "best_val_loss": result.best_val_loss,
                    "windows_seen": result.windows_seen,
                    "elapsed_s": elapsed,
                    "bad_epochs": bad_epochs,
                    "epoch": epoch,
                    "stopped": stop is not None,
                    "stop_reason": stop,
                },
                ckpt_path,
            )
        if on_epoch is not None:
            on_epoch(stats)
        if stop is not None:
            result.stop_reason = stop
            break

    result.train_seconds = elapsed_before + time.perf_counter() - t0
    model.load_state_dict(best_state)
    model.eval()
    return result


@torch.no_grad()
def predict(model: LSTMForecaster, ws: WindowSet, *, batch_size: int = 8192) -> np.ndarray:
    """Forecasts in raw units.

    Args:
        model: a trained forecaster (its device is used).
        ws: windows to forecast from (``y`` may be NaN).
        batch_size: windows per forward pass.

    Returns:
        float32 [N, H] for a point model, [N, H, Q] for a quantile model.
    """
    model.eval()
    device = next(model.parameters()).device
    data = _Tensors.of(ws, device, model.n_calendar > 0)
    out = []
    for start in range(0, len(ws), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(ws)), device=device)
        x, _, s, c = data.batch(idx)
        out.append(model(x, s, c).float().cpu().numpy())
    scaled = np.concatenate(out) if out else np.zeros((0, ws.horizon, model.n_outputs), np.float32)
    raw = ws.unscale(scaled).astype(np.float32)  # [N, H, Q]
    return raw[..., 0] if model.n_outputs == 1 else raw
