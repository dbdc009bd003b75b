"""Feature store on the embedded stack: real Feast (SQL registry on SQLite, DuckDB offline store,
SQLite online store) over small synthetic curated data, with exact assertions.

One applied and materialized store is shared by the module (``import feast`` ~11 s and ``feast
apply`` ~15 s would otherwise be paid per test). Tests that change shared state put it back.

Synthetic dataset ``synth`` (hourly, UTC, from 2024-01-01 00:00), L = 168, H = 24:

* ``s0``: 400 hours, value(i) = 1000 + i / 3 (not representable in float32: the one cast shows);
  a later batch corrects hours 397..399 to 5000 + i.
* ``s1``: 400 hours with hours 100 and 380 missing.
* ``s2``: 300 hours (its newest window is 100 hours older than the others').
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqops.core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
SYNTH_DATASETS = Path(__file__).with_name("datasets_synth.toml")  # declares dataset "synth"
T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
L, H = 168, 24


def hour(i: int) -> pd.Timestamp:
    return T0 + i * HOUR


def synthetic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first batch, correction batch) in canonical long format."""
    idx = np.arange(400)
    s0 = pd.DataFrame({"series_id": "s0", "timestamp": hour(0) + idx * HOUR, "value": 1000 + idx / 3})
    keep = ~np.isin(idx, [100, 380])
    s1 = pd.DataFrame(
        {"series_id": "s1", "timestamp": hour(0) + idx[keep] * HOUR, "value": 2000 + np.sin(idx[keep])}
    )
    idx2 = np.arange(300)
    s2 = pd.DataFrame({"series_id": "s2", "timestamp": hour(0) + idx2 * HOUR, "value": 3000 - idx2 * 0.7})
    fix = np.arange(397, 400)
    correction = pd.DataFrame({"series_id": "s0", "timestamp": hour(0) + fix * HOUR, "value": 5000.0 + fix})
    return pd.concat([s0, s1, s2], ignore_index=True), correction


def write_batch(settings, dataset: str, batch_id: str, frame: pd.DataFrame, landed: datetime) -> None:
    from seqops.core.store import BatchRef, CuratedStore

    ref = BatchRef(
        dataset=dataset,
        batch_id=batch_id,
        sha256=batch_id * 4,
        raw_path="",
        original_name=f"{batch_id}.csv",
        landed_at=landed.isoformat(),
    )
    CuratedStore(settings).write(dataset, ref, frame)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Curated data -> windows -> apply -> materialize, in a module-private SEQOPS_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQOPS_HOME", str(tmp_path_factory.mktemp("features-home")))
        mp.setenv("SEQOPS_FEATURES_DATASETS", "synth")
        mp.setenv("SEQOPS_DATASETS_FILE", str(SYNTH_DATASETS))
        mp.delenv("SEQOPS_PROFILE", raising=False)
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
        yield {"settings": settings, "build": build, "applied": applied, "materialized": materialized}


def read_windows(fx) -> pd.DataFrame:
    return pq.read_table(fx["build"].windows_path).to_pandas()


# ---- window tables ---------------------------------------------------------------------------------
def test_windows_follow_the_gap_rule(fx):
    w = read_windows(fx)
    t = pq.read_table(fx["build"].targets_path).to_pandas()
    ends = {sid: sorted(((g["window_end"] - T0) / HOUR).astype(int)) for sid, g in w.groupby("series_id")}
    origins = {sid: sorted(((g["origin"] - T0) / HOUR).astype(int)) for sid, g in t.groupby("series_id")}
    assert ends["s0"] == list(range(167, 400))
    # s1: hour 100 missing -> first full window ends at 268; hour 380 missing -> none after 379
    assert ends["s1"] == list(range(268, 380))
    assert ends["s2"] == list(range(167, 300))
    # targets need the 24 next hours: s0 up to 375, s1 up to 355 (380 missing), s2 up to 275
    assert origins["s0"] == list(range(167, 376))
    assert origins["s1"] == list(range(268, 356))
    assert origins["s2"] == list(range(167, 276))
    assert fx["build"].windows == 233 + 112 + 133 and fx["build"].targets == 209 + 88 + 109


def test_window_values_are_the_curated_values_cast_once_to_float32(fx):
    w = read_windows(fx).set_index(["series_id", "window_end"])
    x = np.asarray(w.loc[("s0", hour(200)), "x"])
    expected = (1000 + np.arange(33, 201) / 3).astype(np.float32)
    assert x.dtype == np.float32 and x.shape == (L,)
    assert np.array_equal(x.view(np.uint32), expected.view(np.uint32))
    # the correction batch (landed later) wins: the newest window ends with 5000 + 397..399
    last = np.asarray(w.loc[("s0", hour(399)), "x"])
    assert last[-3:].tolist() == [5397.0, 5398.0, 5399.0]
    assert np.float32(1000 + 396 / 3) == last[-4]
    # scale = the trainer's 'mean' scaler: (0, mean |x|) of the float32 window
    assert w.loc[("s0", hour(200)), "scale_loc"] == 0.0
    assert w.loc[("s0", hour(200)), "scale_scale"] == np.float32(np.abs(expected.astype(np.float64)).mean())


def test_window_tables_are_float32_lists_and_microsecond_utc(fx):
    schema = pq.read_schema(fx["build"].windows_path)
    assert schema.field("window_end").type == pa.timestamp("us", tz="UTC")
    assert schema.field("x").type == pa.list_(pa.float32())
    assert schema.field("calendar").type == pa.list_(pa.float32())
    assert schema.field("scale_loc").type == pa.float32()
    tschema = pq.read_schema(fx["build"].targets_path)
    assert tschema.field("origin").type == pa.timestamp("us", tz="UTC")
    assert tschema.field("y").type == pa.list_(pa.float32())
    assert Path(fx["build"].windows_path).is_relative_to(fx["settings"].features_dir)


# ---- declarations and apply --------------------------------------------------------------------------
def test_declarations_carry_description_tags_and_ttl(fx):
    from seqops.features import store

    fs = store.open_store(settings=get_settings())
    views = {v.name: v for v in fs.list_all_feature_views()}
    assert set(views) == {"synth_window", "synth_calendar", "synth_scale", "synth_targets"}
    for view in views.values():
        assert view.description and view.tags["seqops.dataset"] == "synth" and view.ttl
    assert views["synth_window"].ttl == timedelta(hours=2)
    assert views["synth_targets"].ttl == timedelta(minutes=30)
    assert views["synth_targets"].online is False and views["synth_window"].online is True
    assert {f.name: str(f.dtype) for f in views["synth_window"].features} == {
        "x": "Array(Float32)",
        "window_end_unix": "Int64",
    }
    for obj in [*fs.list_entities(), *fs.list_data_sources(), *fs.list_feature_services()]:
        assert obj.description and obj.tags


def test_training_and_serving_services_name_the_same_inputs(fx):
    from seqops.features import store

    serving = store.service_features("synth", "serving", settings=get_settings())
    training = store.service_features("synth", "training", settings=get_settings())
    assert serving == [
        "synth_window:x",
        "synth_window:window_end_unix",
        "synth_calendar:calendar",
        "synth_scale:scale_loc",
        "synth_scale:scale_scale",
    ]
    assert training == [*serving, "synth_targets:y"]


def test_apply_is_idempotent_and_state_lives_in_the_home(fx):
    from seqops.features import store

    again = store.apply(settings=get_settings())
    assert again.to_dict() == fx["applied"].to_dict()
    home = fx["settings"].features_dir
    assert (home / "registry.db").is_file() and (home / "online.db").is_file()
    assert str(home.resolve()) in fx["applied"].registry
    assert not (REPO / "feature_repo" / "data").exists()


def test_feature_store_yaml_is_what_plain_feast_reads(fx, monkeypatch):
    """Feast expands ${SEQOPS_HOME} itself: plain `feast -c feature_repo` sees the same stores."""
    from feast.repo_config import load_repo_config

    from seqops.features import store

    monkeypatch.setenv("SEQOPS_HOME", str(fx["settings"].home))
    plain = load_repo_config(REPO / "feature_repo", REPO / "feature_repo" / "feature_store.yaml")
    ours = store.repo_config(settings=get_settings())
    assert plain.registry.path == ours.registry.path == f"sqlite:///{fx['settings'].features_dir}/registry.db"
    assert plain.online_store.path == ours.online_store.path
    assert plain.offline_store.type == "duckdb" and plain.online_store.type == "sqlite"
    assert plain.registry.registry_type == "sql" and plain.registry.serve_features_while_materializing


# ---- the two paths -----------------------------------------------------------------------------------
def test_materialize_covers_every_series_newest_window(fx):
    m = fx["materialized"]
    assert m.series == 3 and m.rows == 9
    assert m.start == hour(299).isoformat() and m.end == hour(399).isoformat()


def test_online_window_round_trips_bit_exactly(fx):
    from seqops.features import store

    online = store.read_online(
        "synth", ["s0", "s1", "s2", "nope"], as_of=hour(399).to_pydatetime(), settings=get_settings()
    )
    # TTL 2 h: s1's newest window ends at hour 379, s2's at 299
    assert online.status == ("present", "expired", "expired", "missing")
    w = read_windows(fx).set_index(["series_id", "window_end"])
    stored = np.asarray(w.loc[("s0", hour(399)), "x"], dtype=np.float32)
    assert np.array_equal(online.x[0].view(np.uint32), stored.view(np.uint32))
    stored_cal = np.asarray(w.loc[("s0", hour(399)), "calendar"], dtype=np.float32)
    assert np.array_equal(online.calendar[0].reshape(-1).view(np.uint32), stored_cal.view(np.uint32))
    s1 = store.read_online("synth", ["s1"], as_of=hour(381).to_pydatetime(), settings=get_settings())
    assert s1.status == ("present",) and s1.window_end[0] == np.datetime64("2024-01-16T19:00")
    # s2's newest window (hour 299) is present as of its own time
    s2 = store.read_online("synth", ["s2"], as_of=hour(299).to_pydatetime(), settings=get_settings())
    assert s2.status == ("present",)
    assert s2.x[0][-1] == np.float32(3000 - 299 * 0.7)


def test_parity_historical_equals_online(fx):
    from seqops.features.parity import check_parity

    result = check_parity("synth", sample=12, seed=3, settings=get_settings())
    assert result.ok, result.mismatches
    assert result.latest_samples == 3 and result.replay_samples == 9 and result.replay_moments == 3
    assert result.mismatched_samples == 0 and result.mismatched_elements == 0
    assert result.both_present + result.both_absent == 12 and result.both_present >= 3
    assert result.elements_compared >= 3 * (L + H * 6 + 2 + 1)


def test_training_set_is_bit_identical_to_the_trainers_own_windows(fx):
    from seqops.core.store import CuratedStore
    from seqops.core.windows import windows_from_frame
    from seqops.features.training_set import build_training_set

    stats: list = []
    ws = build_training_set("synth", stats=stats, settings=get_settings())
    curated = CuratedStore(fx["settings"]).read("synth")
    ref = windows_from_frame(curated, L, H, scaler="mean", calendar=True, calendar_tz="UTC", freq="1h")
    assert len(ws) == len(ref) == 209 + 88 + 109
    for name in ("x", "y", "series_idx", "origin", "calendar", "scale"):
        got, want = getattr(ws, name), getattr(ref, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name
    assert ws.series_ids == ("s0", "s1", "s2") and ws.step == np.timedelta64(3600, "s")
    assert stats[0].requested == 478 and stats[0].without_target == 478 - 406 and stats[0].rows == 406


def test_training_set_is_point_in_time(fx):
    from seqops.features.training_set import build_training_set

    stats: list = []
    ws = build_training_set(
        "synth", [hour(200).to_pydatetime(), hour(300).to_pydatetime()], stats=stats, settings=get_settings()
    )
    # hour 200: s1 has no window (its hour 100 is missing) -> skipped, not an older window
    got = {
        (ws.series_ids[i], pd.Timestamp(o, tz="UTC")) for i, o in zip(ws.series_idx, ws.origin, strict=True)
    }
    assert got == {("s0", hour(200)), ("s2", hour(200)), ("s0", hour(300)), ("s1", hour(300))}
    assert stats[0].requested == 6 and stats[0].without_window == 2
    row = [
        i
        for i in range(len(ws))
        if ws.series_ids[ws.series_idx[i]] == "s0" and ws.origin[i] == hour(300).to_datetime64()
    ][0]
    assert ws.x[row][-1] == np.float32(1000 + 300 / 3)
    assert ws.y[row].tolist() == (1000 + np.arange(301, 325) / 3).astype(np.float32).tolist()


def test_parity_detects_an_online_store_that_missed_a_correction(fx):
    """The check can fail: rebuild the windows with a corrected value but do not materialize."""
    from seqops.features.materialize import materialize
    from seqops.features.parity import check_parity
    from seqops.features.tables import build_windows

    fix = pd.DataFrame({"series_id": ["s0"], "timestamp": [hour(399)], "value": [1.5]})
    write_batch(fx["settings"], "synth", "b4", fix, datetime(2024, 2, 4, tzinfo=UTC))
    try:
        build_windows("synth", settings=get_settings())
        result = check_parity("synth", sample=3, seed=0, settings=get_settings())
        assert not result.ok and result.mismatched_samples == 1
        bad = {(m["series_id"], m["feature"], m["index"]) for m in result.mismatches}
        assert ("s0", "x", L - 1) in bad and ("s0", "scale", 1) in bad
        first = next(m for m in result.mismatches if m["feature"] == "x")
        assert first["historical"] == 1.5 and first["online"] == 5399.0
    finally:
        for p in fx["settings"].curated_dir.glob("synth/*/batch=b4.parquet"):
            p.unlink()
        build_windows("synth", settings=get_settings())
        materialize("synth", settings=get_settings())


# ---- parity breakers ---------------------------------------------------------------------------------
def _rewrite(path: str, table: pa.Table) -> bytes:
    """Replace a Parquet file, returning the old bytes for restoring."""
    old = Path(path).read_bytes()
    pq.write_table(table, path)
    return old


def test_float64_source_declared_float32_is_refused(fx):
    from seqops.features import store
    from seqops.features.materialize import materialize
    from seqops.features.training_set import build_training_set

    path = fx["build"].windows_path
    table = pq.read_table(path)
    # the same table with x as float64: s0's windows hold the exact values 1000 + i / 3
    ends = ((table.column("window_end").to_pandas() - T0) / HOUR).astype(int).to_numpy()
    xs = [
        list(1000 + np.arange(e - L + 1, e + 1) / 3) if sid == "s0" else list(map(float, x))
        for sid, e, x in zip(
            table.column("series_id").to_pylist(), ends, table.column("x").to_pylist(), strict=True
        )
    ]
    wide = table.set_column(table.schema.get_field_index("x"), "x", pa.array(xs, pa.list_(pa.float64())))
    old = _rewrite(path, wide)
    try:
        # the hazard: historical retrieval returns the float64 values as stored, while the online
        # store would hold them rounded to the declared Float32
        entity = pd.DataFrame({"series_id": ["s0"], "event_timestamp": [hour(301)]})
        hist = (
            store.historical("synth", entity, service="serving", settings=get_settings())
            .column("x")
            .to_pylist()[0]
        )
        assert hist[-1] == 1000 + 301 / 3 != float(np.float32(1000 + 301 / 3))
        # seqops refuses the table on every path instead
        with pytest.raises(store.SourceSchemaError, match=r"column 'x' is list<\w+: double> but declared"):
            store.check_sources("synth", settings=get_settings())
        with pytest.raises(store.SourceSchemaError):
            materialize("synth", settings=get_settings())
        with pytest.raises(store.SourceSchemaError):
            build_training_set("synth", settings=get_settings())
    finally:
        Path(path).write_bytes(old)
    assert store.check_sources("synth", settings=get_settings()) == {
        "synth_windows_source": 478,
        "synth_targets_source": 406,
    }


def test_duplicate_rows_are_resolved_upstream_and_refused_in_sources(fx):
    from seqops.features import store

    # upstream: s0 hours 397..399 exist in two batches; the curated read keeps the later one, so the
    # window table has exactly one row per (series, end) -- checked by the window test above.
    path = fx["build"].windows_path
    table = pq.read_table(path)
    dup = table.slice(0, 1)
    x = dup.column("x").to_pylist()[0]
    x[-1] += 1.0
    dup = dup.set_column(dup.schema.get_field_index("x"), "x", pa.array([x], table.schema.field("x").type))
    dup = dup.cast(table.schema)
    old = _rewrite(path, pa.concat_tables([table, dup]))
    try:
        with pytest.raises(store.SourceSchemaError, match="2 rows share a"):
            store.check_sources("synth", settings=get_settings())
    finally:
        Path(path).write_bytes(old)


def test_stale_online_values_expire_at_the_ttl(fx):
    from seqops.features import store

    newest = hour(399).to_pydatetime()
    ttl = timedelta(hours=2)
    at_ttl = store.read_online("synth", ["s0"], as_of=newest + ttl, settings=get_settings())
    past_ttl = store.read_online(
        "synth", ["s0"], as_of=newest + ttl + timedelta(seconds=1), settings=get_settings()
    )
    assert at_ttl.status == ("present",) and past_ttl.status == ("expired",)
    assert np.isnan(past_ttl.x).all()
    # the hazard: Feast itself serves the stale row as PRESENT, whenever it is read
    fs = store.open_store(settings=get_settings())
    raw = fs.get_online_features(features=["synth_window:x"], entity_rows=[{"series_id": "s0"}])
    assert raw.to_dict()["x"][0] is not None
    # and historical retrieval agrees with seqops: nothing one hour past the TTL
    entity = pd.DataFrame({"series_id": ["s0"], "event_timestamp": [hour(399 + 3)]})
    hist = store.historical("synth", entity, service="serving", settings=get_settings())
    assert hist.column("x").null_count == 1


def test_a_backfill_never_writes_older_windows_over_newer(fx):
    from seqops.features import store
    from seqops.features.materialize import materialize

    fs = store.open_store(settings=get_settings())

    def online_end(sid: str) -> int:
        raw = fs.get_online_features(
            features=["synth_window:window_end_unix"], entity_rows=[{"series_id": sid}]
        )
        return raw.to_dict()["window_end_unix"][0]

    newest = int(hour(399).timestamp())
    assert online_end("s0") == newest
    # seqops: a backfill over an old range has its end raised to the high-water mark
    result = materialize(
        "synth", start=hour(250).to_pydatetime(), end=hour(260).to_pydatetime(), settings=get_settings()
    )
    assert result.end_raised and result.end == hour(399).isoformat()
    assert online_end("s0") == newest
    # the hazard: plain Feast over the same range overwrites the newer window (SQLite: last write)
    store.materialize_range(
        "synth", hour(250).to_pydatetime(), hour(260).to_pydatetime(), settings=get_settings()
    )
    assert online_end("s0") == int(hour(260).timestamp())
    # seqops repairs it on the next run
    materialize("synth", settings=get_settings())
    assert online_end("s0") == newest


def test_a_correction_reaches_the_online_store(fx):
    from seqops.features import store
    from seqops.features.materialize import materialize
    from seqops.features.parity import check_parity
    from seqops.features.tables import build_windows

    settings = fx["settings"]
    fix = pd.DataFrame({"series_id": ["s1"], "timestamp": [hour(379)], "value": [7777.25]})
    write_batch(settings, "synth", "b3", fix, datetime(2024, 2, 3, tzinfo=UTC))
    try:
        build_windows("synth", settings=get_settings())
        materialize("synth", settings=get_settings())
        online = store.read_online("synth", ["s1"], as_of=hour(379).to_pydatetime(), settings=get_settings())
        assert online.x[0][-1] == np.float32(7777.25)
        assert check_parity("synth", sample=3, seed=0, settings=get_settings()).ok
    finally:
        for p in fx["settings"].curated_dir.glob("synth/*/batch=b3.parquet"):
            p.unlink()
        build_windows("synth", settings=get_settings())
        materialize("synth", settings=get_settings())


@pytest.mark.slow
def test_plain_feast_cli_reads_what_seqops_applied(tmp_path):
    """`seqops features apply`, then plain `feast -c <repo> feature-views list` with SEQOPS_HOME exported.

    The declarations are functions (inert at import), so `feast apply` is not the way in; every
    read-side Feast command (list, describe, ui) works on the registry seqops applied.
    """
    import os
    import sys

    from seqops.core.resources import feature_repo_dir

    env = {**os.environ, "SEQOPS_HOME": str(tmp_path / "home"), "SEQOPS_FEATURES_DATASETS": "synth"}
    env["SEQOPS_DATASETS_FILE"] = str(SYNTH_DATASETS)
    env.pop("SEQOPS_PROFILE", None)
    bin_dir = Path(sys.executable).parent
    applied = subprocess.run(
        [str(bin_dir / "seqops"), "features", "apply"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr[-2000:]
    listed = subprocess.run(
        [str(bin_dir / "feast"), "-c", str(feature_repo_dir()), "feature-views", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    for view in ("synth_window", "synth_calendar", "synth_scale", "synth_targets"):
        assert view in listed.stdout
    assert (tmp_path / "home" / "features" / "registry.db").is_file()
    assert not (feature_repo_dir() / "data").exists()
