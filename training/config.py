"""Typed hyperparameters of the LSTM forecaster and its training loop.

One frozen pydantic model, :class:`TrainConfig`, holds every knob; :func:`make_config` builds it
(defaults, then a named profile, then explicit overrides). Nothing is built at import time.

The profiles are the settings the public benchmarks run with (``m4_hourly``, ``etth1``); the
platform's own datasets start from ``default`` and override what they need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seqops.core.datasets import Scaler

if TYPE_CHECKING:
    from seqops.core.datasets import WindowSpec

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16"]


class TrainConfig(BaseModel):
    """Hyperparameters of one training run (model, data windows and optimisation).

    The model half (``input_size`` .. ``quantiles``) is stored with the model in MLflow, so a loaded
    model rebuilds itself without the code's defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- windows --------------------------------------------------------------------------------
    input_size: int = Field(168, gt=0, description="L: input window length in steps (7 x 24 hours).")
    horizon: int = Field(48, gt=0, description="H: steps forecast at once from one origin.")
    scaler: Scaler = Field(
        "mean",
        description="Per-window scaling: 'mean' divides by the window's mean |x| (positive data, M4); "
        "'standard' z-scores with the window's mean/std (data around zero); 'robust' median/IQR.",
    )
    calendar: bool = Field(True, description="Feed calendar features of the H target steps.")
    # ---- model ----------------------------------------------------------------------------------
    patch_len: int = Field(
        24,
        gt=0,
        description="Input values per LSTM step: the window is read as L/patch_len patches "
        "(24 = one day per step, 7 steps for L=168); 1 = one value per step, the classic recurrence.",
    )
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(2, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Between LSTM layers and in the decoder.")
    embedding_dim: int = Field(0, ge=0, description="Series embedding size; 0 = off (new series allowed).")
    decoder_size: int = Field(64, gt=0, description="Width of the per-horizon-step MLP decoder.")
    quantiles: tuple[float, ...] = Field(
        (), description="Empty: point forecast trained with MAE; else pinball loss on these levels."
    )
    season: int = Field(24, gt=0, description="m: seasonal period in steps (24 for hourly data).")
    naive_skip: bool = Field(
        True,
        description="The decoder outputs a correction added to a naive forecast (`skip_period`: the "
        "window's last season repeated, or its last value); exact on perfectly periodic series.",
    )
    skip_period: int | Literal["auto"] = Field(
        "auto",
        description="Period of the naive skip's base: `season` (seasonal naive), 1 (last value), or "
        "'auto': whichever of the two forecasts the validation windows better (mean absolute error in "
        "window scale); `fit` decides and the trained model's config holds the number.",
    )
    loss_weighting: Literal["none", "seasonal"] = Field(
        "none",
        description="'seasonal' divides each window's error by its input's mean |x_t - x_{t-m}| "
        "instead of its scale: the training loss becomes MASE.",
    )
    max_loss_weight: float = Field(100.0, gt=0, description="Cap on a window's seasonal loss weight.")
    # ---- optimisation ---------------------------------------------------------------------------
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_decay: float = Field(0.5, gt=0, le=1, description="LR factor after `lr_patience` epochs w/o gain.")
    lr_patience: int = Field(2, ge=1)
    batch_size: int = Field(512, gt=0)
    max_epochs: int = Field(30, gt=0)
    epoch_windows: int | None = Field(
        None, gt=0, description="Windows sampled per epoch (None = one pass over all training windows)."
    )
    patience: int = Field(5, ge=1, description="Early stopping: epochs without a better validation loss.")
    grad_clip: float | None = Field(1.0, gt=0, description="Max global gradient norm; None = off.")
    val_origins: int = Field(
        24, ge=1, description="Validation: the last origins of each series held out (split_last_origins)."
    )
    seed: int = 0
    device: Device = "auto"
    precision: Precision = Field(
        "fp32", description="'bf16' autocasts matmuls on CPUs with AVX512-BF16/AMX (faster, less exact)."
    )
    num_threads: int | None = Field(None, gt=0, description="torch intra-op threads; None = torch default.")
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="Stop after the epoch that crosses this much training time (not resumable "
        "bit-exactly: a budget stop depends on the wall clock).",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.input_size % self.patch_len:
            raise ValueError(f"input_size {self.input_size} is not a multiple of patch_len {self.patch_len}")
        if (self.naive_skip or self.loss_weighting == "seasonal") and self.season >= self.input_size:
            raise ValueError("season must be shorter than input_size")
        if self.skip_period != "auto" and not 1 <= self.skip_period < self.input_size:
            raise ValueError("skip_period must be 'auto' or between 1 and input_size - 1")
        if any(not 0.0 < q < 1.0 for q in self.quantiles):
            raise ValueError("quantiles must lie strictly between 0 and 1")
        if list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError("quantiles must be increasing and unique")
        return self

    @property
    def skip_steps(self) -> int:
        """The naive skip's period; ``season`` while ``skip_period`` is still 'auto' (models trained
        before the choice existed were all seasonal)."""
        return self.season if self.skip_period == "auto" else self.skip_period

    @property
    def n_outputs(self) -> int:
        """Values the model emits per horizon step (1 for a point forecast)."""
        return max(1, len(self.quantiles))


_PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    # M4 Hourly: no real timestamps (calendar off), strictly positive values (level scaling), H = 48.
    "m4_hourly": {
        "input_size": 168,
        "horizon": 48,
        "scaler": "mean",
        "calendar": False,
        "patch_len": 24,
        "hidden_size": 128,
        "num_layers": 2,
        "batch_size": 1024,
        "precision": "bf16",  # 1.6-2x on this AVX512-BF16 CPU; same validation curve as fp32 (measured)
        "lr": 2e-3,
        "epoch_windows": 100_000,
        "max_epochs": 60,
        "patience": 6,
        "val_origins": 48,
    },
    # ETTh1 univariate OT, already z-scored with the train mean/std: per-window standardisation.
    # Two weeks of input. Among five variants the validation split (H=168) ranks this one first
    # (MSE 0.119; L=720 with 64 units and dropout 0.1: 0.128), so it stays, although that L=720
    # variant scores better on the test rows (benchmarks/README.md): choosing by test is not allowed.
    "etth1": {
        "input_size": 336,
        "horizon": 24,
        "scaler": "standard",
        "calendar": True,
        "patch_len": 24,
        "hidden_size": 128,
        "num_layers": 2,
        "dropout": 0.0,
        "batch_size": 256,
        "lr": 1e-3,
        "max_epochs": 40,
        "patience": 5,
    },
}


def profile_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_config`'s ``profile``."""
    return tuple(_PROFILES)


def make_config(profile: str = "default", **overrides: Any) -> TrainConfig:
    """Build a :class:`TrainConfig`: defaults, then ``profile``'s values, then ``overrides``.

    Args:
        profile: one of :func:`profile_names`.
        **overrides: any :class:`TrainConfig` field.

    Returns:
        The validated, frozen config.
    """
    if profile not in _PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(_PROFILES)}")
    return TrainConfig(**{**_PROFILES[profile], **overrides})


def config_for(spec: WindowSpec, profile: str = "default", **overrides: Any) -> TrainConfig:
    """A dataset's window geometry (L, H, scaler, season from ``datasets.toml``) + a profile + overrides."""
    base = {"input_size": spec.length, "horizon": spec.horizon, "scaler": spec.scaler, "season": spec.season}
    return make_config(profile, **{**base, **overrides})
