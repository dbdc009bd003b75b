"""The production feature store against real servers: PostgreSQL (SQL registry and offline store)
and Redis (online store), with the same declarations and the same synthetic data as
``test_features.py``.

The servers come from ``.ci/services.sh`` (``SEQOPS_SERVICES_PG_URL`` / ``SEQOPS_SERVICES_REDIS``,
exported by ``eval "$(.ci/services.sh start)"``). When those variables are absent the fixture starts
the servers itself with the same script, and stops them afterwards; if they cannot start, the tests
fail: they never skip. Each run gets its own PostgreSQL database and a flushed Redis database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_features import H, L, hour, synthetic_frames, write_batch

from seqops.core.settings import get_settings

pytestmark = pytest.mark.services

REDIS_DB = 7


@pytest.fixture(scope="module")
def prod(servers, tmp_path_factory):
    """Production profile on a fresh database: windows -> PostgreSQL, apply, materialize to Redis."""
    import psycopg
    import redis as redis_client

    pg_url, redis_addr = servers
    base, _, _ = pg_url.rpartition("/")
    database = f"seqops_features_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = f"{base}/{database}"
    host, port = redis_addr.split(":")
    rdb = redis_client.Redis(host=host, port=int(port), db=REDIS_DB)
    rdb.flushdb()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SEQOPS_HOME", str(tmp_path_factory.mktemp("features-prod-home")))
            mp.setenv("SEQOPS_FEATURES_DATASETS", "synth")
            mp.setenv("SEQOPS_DATASETS_FILE", str(Path(__file__).with_name("datasets_synth.toml")))
            mp.setenv("SEQOPS_PROFILE", "production")
            mp.setenv("SEQOPS_FEAST_REGISTRY_URL", url)
            mp.setenv("SEQOPS_FEAST_OFFLINE_PG_URL", url)
            mp.setenv("SEQOPS_FEAST_ONLINE_REDIS", f"{redis_addr},db={REDIS_DB}")
            # the rest of the production profile is required by Settings, unused here
            mp.setenv("SEQOPS_AIRFLOW_DB_URL", url)
            mp.setenv("SEQOPS_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
            from seqops.core.settings import get_settings
            from seqops.features import store
            from seqops.features.materialize import materialize
            from seqops.features.tables import build_windows

            settings = get_settings()
            first, correction = synthetic_frames()
            write_batch(settings, "synth", "b1", first, datetime(2024, 2, 1, tzinfo=UTC))
            write_batch(settings, "synth", "b2", correction, datetime(2024, 2, 2, tzinfo=UTC))
            build = build_windows("synth", settings=get_settings())
            applied = store.apply(settings=get_settings())
            materialized = materialize("synth", settings=get_settings())
            yield {
                "settings": settings,
                "build": build,
                "applied": applied,
                "materialized": materialized,
                "url": url,
                "redis": rdb,
            }
    finally:
        rdb.flushdb()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_production_config_points_at_the_servers(prod):
    from seqops.features import store

    config = store.repo_config(settings=get_settings())
    assert config.registry.registry_type == "sql"
    assert config.registry.path.startswith("postgresql+psycopg://") and config.registry.path.endswith(
        prod["url"].rpartition("/")[2]
    )
    assert config.offline_store.type == "postgres" and config.online_store.type == "redis"
    assert "***" in prod["applied"].registry  # the password is not echoed back
    assert not list(prod["settings"].home.rglob("*.yaml"))  # nothing with a password on disk
    assert prod["applied"].feature_views == ["synth_calendar", "synth_scale", "synth_targets", "synth_window"]


def test_window_tables_in_postgres_hold_the_same_float32_bits(prod):
    import psycopg

    windows = pq.read_table(prod["build"].windows_path).to_pandas().set_index(["series_id", "window_end"])
    with psycopg.connect(prod["url"]) as conn:
        count = conn.execute("SELECT count(*) FROM feast_synth_windows").fetchone()[0]
        (x,) = conn.execute(
            "SELECT x FROM feast_synth_windows WHERE series_id = 's0' AND window_end = %s",
            (hour(200).to_pydatetime(),),
        ).fetchone()
    assert count == prod["build"].windows == 478
    stored = np.asarray(windows.loc[("s0", hour(200)), "x"], np.float32)
    assert np.array_equal(np.asarray(x, np.float32).view(np.uint32), stored.view(np.uint32))


def test_online_reads_from_redis_bit_exactly_and_enforce_the_ttl(prod):
    from seqops.features import store

    assert prod["redis"].dbsize() > 0
    newest = hour(399).to_pydatetime()
    online = store.read_online("synth", ["s0", "s1", "s2", "nope"], as_of=newest, settings=get_settings())
    assert online.status == ("present", "expired", "expired", "missing")
    windows = pq.read_table(prod["build"].windows_path).to_pandas().set_index(["series_id", "window_end"])
    stored = np.asarray(windows.loc[("s0", hour(399)), "x"], np.float32)
    assert np.array_equal(online.x[0].view(np.uint32), stored.view(np.uint32))
    assert online.x[0][-3:].tolist() == [5397.0, 5398.0, 5399.0]
    late = store.read_online(
        "synth", ["s0"], as_of=newest + timedelta(hours=2, seconds=1), settings=get_settings()
    )
    assert late.status == ("expired",)


def test_parity_on_postgres_and_redis(prod):
    from seqops.features.parity import check_parity

    result = check_parity("synth", sample=12, seed=3, settings=get_settings())
    assert result.ok, result.mismatches
    assert result.mismatched_samples == 0 and result.latest_samples == 3 and result.replay_samples == 9


def test_training_set_from_postgres_is_bit_identical_to_the_trainers_windows(prod):
    from seqops.core.store import CuratedStore
    from seqops.core.windows import windows_from_frame
    from seqops.features.training_set import build_training_set

    ws = build_training_set("synth", settings=get_settings())
    curated = CuratedStore(prod["settings"]).read("synth")
    ref = windows_from_frame(curated, L, H, scaler="mean", calendar=True, calendar_tz="UTC", freq="1h")
    assert len(ws) == len(ref) == 406
    for name in ("x", "y", "series_idx", "origin", "calendar", "scale"):
        assert np.array_equal(getattr(ws, name), getattr(ref, name)), name


def test_a_backfill_keeps_the_newest_window_in_redis(prod):
    from seqops.features import store
    from seqops.features.materialize import materialize

    result = materialize(
        "synth", start=hour(250).to_pydatetime(), end=hour(260).to_pydatetime(), settings=get_settings()
    )
    assert result.end_raised
    online = store.read_online("synth", ["s0"], as_of=hour(399).to_pydatetime(), settings=get_settings())
    assert online.window_end[0] == np.datetime64(hour(399).tz_localize(None).to_datetime64())
