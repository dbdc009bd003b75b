"""The stores: raw copies are immutable and deduplicated, curated reads resolve corrections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seqops.core.store import CuratedStore, LandingZone, RawStore


def _frame(series: str, hours: range, base: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": series,
            "timestamp": pd.date_range("2020-01-01", periods=len(hours), freq="h", tz="UTC")
            + pd.Timedelta(hours=hours.start),
            "value": [base + h for h in hours],
        }
    )


def test_raw_store_copies_once_and_is_read_only(home, tmp_path):
    src = tmp_path / "b.csv"
    src.write_text("series_id,timestamp,value\n")
    first = RawStore(home).put(src, "demo")
    again = RawStore(home).put(src, "demo")
    assert first == again  # same bytes: same batch, first landing time kept
    assert first.batch_id == first.sha256[:16]
    raw = Path(first.raw_path)
    assert raw.read_bytes() == src.read_bytes()
    assert raw.stat().st_mode & 0o222 == 0  # no write bit for anyone
    assert len(RawStore(home).refs("demo")) == 1


def test_curated_read_latest_batch_wins_and_filters(home, tmp_path):
    store = CuratedStore(home)
    old_src, new_src = tmp_path / "old.csv", tmp_path / "new.csv"
    old_src.write_text("old")
    new_src.write_text("new")
    old = RawStore(home).put(old_src, "demo")
    new = RawStore(home).put(new_src, "demo")
    assert old.landed_at <= new.landed_at
    assert store.write("demo", old, _frame("a", range(0, 4), 0.0)) == 4
    assert store.write("demo", new, _frame("a", range(2, 6), 100.0)) == 4  # corrects hours 2, 3
    frame = store.read("demo")
    assert frame["value"].tolist() == [0.0, 1.0, 102.0, 103.0, 104.0, 105.0]
    assert frame["timestamp"].is_monotonic_increasing
    window = store.read(
        "demo",
        start=pd.Timestamp("2020-01-01 01:00", tz="UTC"),
        end=pd.Timestamp("2020-01-01 03:00", tz="UTC"),
    )
    assert window["value"].tolist() == [1.0, 102.0]
    assert store.series("demo") == {"a"}
    assert store.has_batch("demo", new.batch_id)


def test_series_ids_with_path_characters_round_trip(home, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("x")
    ref = RawStore(home).put(src, "demo")
    CuratedStore(home).write("demo", ref, _frame("zone/1 a", range(0, 2), 0.0))
    assert CuratedStore(home).series("demo") == {"zone/1 a"}
    assert CuratedStore(home).read("demo", series_ids=["zone/1 a"])["value"].tolist() == [0.0, 1.0]


def test_landing_zone_archives_instead_of_deleting(home):
    zone = LandingZone(home)
    incoming = zone.incoming("demo")
    (incoming / "a.csv").write_text("x")
    (incoming / "a.csv.meta.json").write_text('{"interval_start": "2020-01-01T00:00:00Z"}')
    (incoming / "notes.txt").write_text("not a batch")
    assert [p.name for p in zone.pending("demo")] == ["a.csv"]
    assert zone.declared_interval(incoming / "a.csv") == ("2020-01-01T00:00:00Z", None)
    zone.archive(incoming / "a.csv", "demo")
    assert sorted(p.name for p in (home.landing_dir / "demo" / "landed").iterdir()) == [
        "a.csv",
        "a.csv.meta.json",
    ]
