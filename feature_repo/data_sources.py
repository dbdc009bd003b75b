"""Data sources: the window and target tables that ``seqops.features.tables`` builds per dataset.

Embedded profile: Parquet files under ``SEQOPS_HOME/features/<dataset>/``, read by DuckDB (absolute
paths: DuckDB resolves relative ones from the current directory). Production profile: the same rows
in PostgreSQL tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast.data_source import DataSource

    from seqops.feature_repo import DatasetSources
    from seqops.feature_repo.names import FeatureNames


def _tags(n: FeatureNames) -> dict[str, str]:
    return {"seqops.dataset": n.dataset, "seqops.owner": "features"}


def window_source(n: FeatureNames, where: DatasetSources) -> DataSource:
    """The windows table: one row per series and window end (window, calendar and scale views)."""
    description = (
        f"{n.dataset}: one row per series and window end; x = the {where.spec.length} values up to "
        "and including window_end (float32), calendar and scale of that window. "
        "Built by seqops.features.tables."
    )
    return _source(
        n.window_source, n.pg_windows_table, where.windows_path, "window_end", description, n, where
    )


def target_source(n: FeatureNames, where: DatasetSources) -> DataSource:
    """The targets table: the H values after each origin (the label view)."""
    description = (
        f"{n.dataset}: the {where.spec.horizon} values after each origin (float32). "
        "Built by seqops.features.tables."
    )
    return _source(n.targets_source, n.pg_targets_table, where.targets_path, "origin", description, n, where)


def _source(name, table, path, timestamp_field, description, n, where) -> DataSource:
    if where.postgres:
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
            PostgreSQLSource,
        )

        return PostgreSQLSource(
            name=name, table=table, timestamp_field=timestamp_field, description=description, tags=_tags(n)
        )
    from feast import FileSource

    if path is None:
        raise ValueError(f"{name}: an embedded source needs the Parquet path")
    return FileSource(
        name=name, path=path, timestamp_field=timestamp_field, description=description, tags=_tags(n)
    )
