"""The window contract shared by the feature pipeline, the Feast declarations and training.

One place decides the input-window length L, the horizon H, the per-window scaler and the calendar
zone of each dataset, and the names of the Feast objects built for it. ``feature_repo/`` declares
its views from :func:`window_spec` and :func:`names`; ``features/`` builds, materializes and reads
them with the same; ``training`` should build its ``TrainConfig(input_size=spec.length,
horizon=spec.horizon, scaler=spec.scaler)`` from :func:`window_spec` too.

Environment (all optional): ``SEQOPS_FEATURES_WINDOW_LENGTH`` (default 168),
``SEQOPS_FEATURES_HORIZON`` (default 24), ``SEQOPS_FEATURES_HORIZONS`` (JSON per-dataset
horizons, default ``{"m4_hourly": 48}``, the M4 competition's horizon), ``SEQOPS_FEATURES_SCALER``
(default ``mean``), ``SEQOPS_FEATURES_DATASETS`` (comma list of datasets that get feature views;
default: every dataset in ``config/datasets.toml``), ``SEQOPS_FEATURES_TTL_STEPS`` (TTL of the input
views in steps; default 2).

TTL: the input window *at* time t is the one ending at the last observation at or before t. A
window more than ``ttl_steps`` steps old is not "the window at t" any more: it is stale, and the
online read reports it ``expired`` rather than forecasting from the past. The default of 2 steps
allows the last complete hour plus an hour of delivery lag. Serving from an explicitly older
moment (a replay, the demo's historical data) passes ``as_of``.

Nothing is read at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Scaler = Literal["mean", "standard", "robust", "none"]

#: Calendar features per target step, in this order (``training.windows.CALENDAR_FEATURES``).
CALENDAR_FEATURES: tuple[str, ...] = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos")

#: Feast project name (``feature_repo/feature_store*.yaml``).
PROJECT = "seqops"


class FeatureSettings(BaseSettings):
    """``SEQOPS_FEATURES_*`` environment: window geometry and which datasets get feature views."""

    model_config = SettingsConfigDict(env_prefix="SEQOPS_FEATURES_", extra="ignore")

    window_length: int = Field(168, gt=0, description="L: input values per window (7 x 24 hours).")
    horizon: int = Field(24, gt=0, description="H: target values after the origin.")
    horizons: dict[str, int] = Field(
        default_factory=lambda: {"m4_hourly": 48}, description="Per-dataset H overriding `horizon`."
    )
    scaler: Scaler = Field("mean", description="Per-window (loc, scale) method, as training.windows.")
    ttl_steps: int = Field(
        2,
        gt=0,
        description="TTL of the input views in steps: the window of the last complete step plus one "
        "step of delivery lag. Each extra step adds one candidate row per entity row to Feast's "
        "point-in-time join (48 steps: ~4x the time and ~3x the memory of 1 step on M4).",
    )
    datasets: Annotated[list[str] | None, NoDecode] = Field(
        None, description="Datasets with feature views; None = every dataset in config/datasets.toml."
    )

    @field_validator("datasets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class WindowSpec(BaseModel):
    """Geometry of one dataset's windows: the single source of truth for L, H, step and TTL."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    length: int = Field(gt=0, description="L")
    horizon: int = Field(gt=0, description="H")
    step: timedelta = Field(description="the dataset's regular spacing (config/datasets.toml `freq`)")
    scaler: Scaler
    calendar_tz: str = Field(description="zone whose wall clock the calendar features follow")
    ttl_steps: int = Field(gt=0)

    @property
    def n_calendar(self) -> int:
        return len(CALENDAR_FEATURES)

    @property
    def ttl(self) -> timedelta:
        """How old a window may be, relative to the moment it is read, and still be served."""
        return self.step * self.ttl_steps

    @property
    def label_ttl(self) -> timedelta:
        """Half a step: a point-in-time join can only pick the target row at exactly the origin."""
        return self.step / 2


@dataclass(frozen=True)
class FeatureNames:
    """Names of the Feast objects of one dataset (views, sources, services, tables)."""

    dataset: str

    @property
    def window(self) -> str:
        return f"{self.dataset}_window"

    @property
    def calendar(self) -> str:
        return f"{self.dataset}_calendar"

    @property
    def scale(self) -> str:
        return f"{self.dataset}_scale"

    @property
    def targets(self) -> str:
        return f"{self.dataset}_targets"

    @property
    def training(self) -> str:
        return f"{self.dataset}_training"

    @property
    def serving(self) -> str:
        return f"{self.dataset}_serving"

    @property
    def window_source(self) -> str:
        return f"{self.dataset}_windows_source"

    @property
    def targets_source(self) -> str:
        return f"{self.dataset}_targets_source"

    @property
    def online_views(self) -> tuple[str, ...]:
        """The views the serving path reads (materialized to the online store)."""
        return (self.window, self.calendar, self.scale)

    @property
    def pg_windows_table(self) -> str:
        return f"feast_{self.dataset}_windows"

    @property
    def pg_targets_table(self) -> str:
        return f"feast_{self.dataset}_targets"


def names(dataset: str) -> FeatureNames:
    return FeatureNames(dataset)


def feature_settings() -> FeatureSettings:
    """The ``SEQOPS_FEATURES_*`` environment now (not cached, so tests can switch)."""
    return FeatureSettings()


def feature_datasets() -> list[str]:
    """Datasets that get feature views: ``SEQOPS_FEATURES_DATASETS`` or config/datasets.toml."""
    chosen = feature_settings().datasets
    if chosen is not None:
        return list(chosen)
    import tomllib

    from seqops.datasets import datasets_file

    with datasets_file().open("rb") as fh:
        table = tomllib.load(fh)
    return sorted(name for name in table if name != "default")


def window_spec(dataset: str) -> WindowSpec:
    """The window geometry of ``dataset`` (its step and zone from config/datasets.toml)."""
    from seqops.datasets import load_spec

    fs = feature_settings()
    ds = load_spec(dataset)
    horizon = fs.horizons.get(dataset, fs.horizon)
    return WindowSpec(
        dataset=dataset,
        length=fs.window_length,
        horizon=horizon,
        step=ds.step,
        scaler=fs.scaler,
        calendar_tz=ds.source_timezone or "UTC",
        ttl_steps=fs.ttl_steps,
    )
