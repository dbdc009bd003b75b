"""Feast declarations, and nothing else: one module per object kind, each a function.

Nothing here reads settings, touches the disk or imports Feast at import time: the feature layer
(:func:`seqops.features.store.apply`) calls :func:`declarations` with each dataset's window
geometry and source locations and hands the objects to ``FeatureStore.apply``. ``feature_store.yaml``
(embedded) and ``feature_store.production.yaml`` are the store configurations it renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seqops.core.datasets import WindowSpec


@dataclass(frozen=True)
class DatasetSources:
    """Where one dataset's window and target tables are: Parquet paths (embedded) or PostgreSQL."""

    spec: WindowSpec
    windows_path: str | None = None  # absolute: DuckDB resolves relative paths from the cwd
    targets_path: str | None = None
    postgres: bool = False


def declarations(datasets: dict[str, DatasetSources]) -> list[Any]:
    """Every Feast object of the given datasets: the entity, two sources, four views, two services each."""
    from seqops.feature_repo.data_sources import target_source, window_source
    from seqops.feature_repo.entities import series
    from seqops.feature_repo.feature_services import services
    from seqops.feature_repo.feature_views import feature_views
    from seqops.feature_repo.names import names

    entity = series()
    objects: list[Any] = [entity]
    for dataset, where in sorted(datasets.items()):
        n = names(dataset)
        wsrc, tsrc = window_source(n, where), target_source(n, where)
        views = feature_views(n, where.spec, entity, wsrc, tsrc)
        objects += [wsrc, tsrc, *views.values(), *services(n, views)]
    return objects
