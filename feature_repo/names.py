"""Names of the Feast objects declared for each dataset (views, sources, services, tables).

Window geometry (L, H, scaler, calendar zone, TTL) is not decided here: it is declared once per
dataset in ``datasets.toml`` and read as ``settings.window(dataset)``
(:class:`seqops.core.datasets.WindowSpec`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Feast project name (``feature_repo/feature_store*.yaml``).
PROJECT = "seqops"


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
