"""Per-dataset facts, declared once in ``datasets.toml``: policy (frequency, plausibility range, gap
tolerance) and window geometry (input length L, horizon H, scaler, calendar zone, TTL).

The file is package data (``seqops/core/datasets.toml``); ``Settings.datasets_file`` points at
another one. Read it through :meth:`seqops.core.settings.Settings.dataset`.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scaler = Literal["mean", "standard", "robust", "none"]

#: Calendar features per target step, in this order (built by ``seqops.core.windows.calendar_features``).
CALENDAR_FEATURES: tuple[str, ...] = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos")


class WindowSpec(BaseModel):
    """Geometry of one dataset's windows: the single source of truth for L, H, step and TTL.

    TTL: the input window *at* time t is the one ending at the last observation at or before t. A
    window more than ``ttl_steps`` steps old is stale: the online read reports it ``expired`` rather
    than forecasting from the past. Serving from an explicitly older moment passes ``as_of``.
    """

    model_config = ConfigDict(frozen=True)

    dataset: str
    length: int = Field(gt=0, description="L")
    horizon: int = Field(gt=0, description="H")
    step: timedelta = Field(description="the dataset's regular spacing (`freq`)")
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

    @property
    def season(self) -> int:
        """m: the seasonal period in steps (a day for sub-daily data, a week for daily data)."""
        seconds = self.step.total_seconds()
        return max(1, round(86_400 / seconds)) if seconds < 86_400 else 7


class DatasetSpec(BaseModel):
    """What a valid batch of one dataset looks like, and how its windows are cut."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    freq: str = Field("1h", description="pandas offset alias of the series' regular frequency")
    value_min: float | None = None
    value_max: float | None = None
    max_gap_steps: int = Field(24, ge=0, description="longest tolerated gap inside a series, in steps")
    history_outlier_ranges: float | None = Field(
        1.0,
        gt=0,
        description="a value further outside its series' published [min, max] than this many times "
        "that range is rejected (a typo, a unit change); None turns the rule off",
    )
    history_min_days: float = Field(
        365,
        ge=0,
        description="the far-outside-history rule judges a series only once this many days of it are "
        "published (a full seasonal cycle: a first spring's range must not reject its summer)",
    )
    allow_new_series: bool = True
    source_timezone: str | None = Field(None, description="timezone of naive raw timestamps (importers)")
    window_length: int = Field(168, gt=0, description="L: input values per window (7 x 24 hours)")
    horizon: int = Field(24, gt=0, description="H: values forecast from one origin")
    scaler: Scaler = Field("mean", description="per-window (loc, scale) method (seqops.core.windows)")
    ttl_steps: int = Field(
        2,
        gt=0,
        description="TTL of the input views in steps: the last complete step plus one step of "
        "delivery lag. Each extra step adds a candidate row per entity row to Feast's point-in-time "
        "join (48 steps: ~4x the time and ~3x the memory of 1 step on M4).",
    )

    @property
    def step(self) -> timedelta:
        import pandas as pd  # here, not at import: DAG files read settings at parse time

        return pd.Timedelta(self.freq).to_pytimedelta()

    @property
    def window(self) -> WindowSpec:
        return WindowSpec(
            dataset=self.name,
            length=self.window_length,
            horizon=self.horizon,
            step=self.step,
            scaler=self.scaler,
            calendar_tz=self.source_timezone or "UTC",
            ttl_steps=self.ttl_steps,
        )


def read_table(path: Path) -> dict[str, dict]:
    """The sections of a datasets file (``default`` included)."""
    with path.open("rb") as fh:
        return tomllib.load(fh)


def spec_from_table(table: dict[str, dict], name: str) -> DatasetSpec:
    """The spec for ``name``: ``[default]`` overlaid with its own section."""
    return DatasetSpec(name=name, **{**table.get("default", {}), **table.get(name, {})})
