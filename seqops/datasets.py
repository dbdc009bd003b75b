"""Per-dataset policy (frequency, plausibility range, gap tolerance) read from ``config/datasets.toml``."""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field


class DatasetSpec(BaseModel):
    """What a valid batch of one dataset looks like."""

    name: str
    description: str = ""
    freq: str = Field("1h", description="pandas offset alias of the series' regular frequency")
    value_min: float | None = None
    value_max: float | None = None
    max_gap_steps: int = Field(24, ge=0, description="longest tolerated gap inside a series, in steps")
    allow_new_series: bool = True
    source_timezone: str | None = Field(None, description="timezone of naive raw timestamps (importers)")

    @property
    def step(self) -> timedelta:
        return pd.Timedelta(self.freq).to_pytimedelta()


def datasets_file() -> Path:
    override = os.environ.get("SEQOPS_DATASETS_FILE")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "config" / "datasets.toml"


def load_spec(name: str) -> DatasetSpec:
    """The spec for ``name``: its own section, else ``[default]`` under that name."""
    with datasets_file().open("rb") as fh:
        table = tomllib.load(fh)
    section = table.get(name, table.get("default", {}))
    return DatasetSpec(name=name, **section)
