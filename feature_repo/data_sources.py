"""Data sources: the window and target tables that ``features.windows`` builds per dataset.

Embedded profile: Parquet files under ``SEQOPS_HOME/features/<dataset>/``, read by DuckDB (absolute
paths: DuckDB resolves relative ones from the current directory). Production profile
(``SEQOPS_PROFILE=production``): the same rows in PostgreSQL tables. One pair per dataset listed
by ``features.config.feature_datasets()``; each object is also a module attribute so that
``feast apply`` finds it.
"""

from feast import FileSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

from features.config import feature_datasets, names, window_spec
from features.windows import targets_path, windows_path
from seqops.settings import get_settings

_settings = get_settings()
if _settings.profile != "production":
    # plain `feast apply` opens the SQLite registry in this folder and does not create it
    _settings.features_dir.mkdir(parents=True, exist_ok=True)

#: dataset -> source of its windows (window, calendar and scale views)
window_sources = {}
#: dataset -> source of its targets (the label view)
target_sources = {}

for _dataset in feature_datasets():
    _n, _spec = names(_dataset), window_spec(_dataset)
    _tags = {"seqops.dataset": _dataset, "seqops.owner": "features"}
    _wdesc = (
        f"{_dataset}: one row per series and window end; x = the {_spec.length} values up to and "
        f"including window_end (float32), calendar and scale of that window. Built by features.windows."
    )
    _tdesc = f"{_dataset}: the {_spec.horizon} values after each origin (float32). Built by features.windows."
    if _settings.profile == "production":
        window_sources[_dataset] = PostgreSQLSource(
            name=_n.window_source,
            table=_n.pg_windows_table,
            timestamp_field="window_end",
            description=_wdesc,
            tags=_tags,
        )
        target_sources[_dataset] = PostgreSQLSource(
            name=_n.targets_source,
            table=_n.pg_targets_table,
            timestamp_field="origin",
            description=_tdesc,
            tags=_tags,
        )
    else:
        window_sources[_dataset] = FileSource(
            name=_n.window_source,
            path=str(windows_path(_settings, _dataset)),
            timestamp_field="window_end",
            description=_wdesc,
            tags=_tags,
        )
        target_sources[_dataset] = FileSource(
            name=_n.targets_source,
            path=str(targets_path(_settings, _dataset)),
            timestamp_field="origin",
            description=_tdesc,
            tags=_tags,
        )
    globals()[_n.window_source] = window_sources[_dataset]
    globals()[_n.targets_source] = target_sources[_dataset]
