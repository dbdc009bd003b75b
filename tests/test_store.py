"""The stores: raw copies are immutable and deduplicated; the curated Delta table commits each batch
whole, lets the batch landed last win, evolves its schema and time-travels."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seqops.core.store import CuratedStore, LandingZone, RawStore, landing_id


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
    assert first == again  # same bytes, name and interval: the same landing, first landing time kept
    assert first.batch_id == landing_id(first.sha256, "b.csv", (None, None))
    raw = Path(first.raw_path)
    assert raw.read_bytes() == src.read_bytes()
    assert raw.stat().st_mode & 0o222 == 0  # no write bit for anyone
    assert len(RawStore(home).refs("demo")) == 1


def test_a_resend_under_a_fixed_name_or_interval_is_a_new_landing_of_the_same_bytes(home, tmp_path):
    src = tmp_path / "b.txt"
    src.write_text("series_id,timestamp,value\n")
    wrong = RawStore(home).put(src, "demo")
    renamed = tmp_path / "b.csv"
    src.rename(renamed)
    fixed = RawStore(home).put(renamed, "demo")
    later = RawStore(home).put(renamed, "demo", interval=("2020-01-01T00:00:00Z", None))
    assert len({wrong.batch_id, fixed.batch_id, later.batch_id}) == 3
    assert wrong.sha256 == fixed.sha256 == later.sha256  # the bytes are stored once per suffix
    assert fixed.original_name == "b.csv" and later.interval_start == "2020-01-01T00:00:00Z"
    assert len(RawStore(home).refs("demo")) == 3
    assert sorted(p.name for p in (home.raw_dir / "demo").glob("*.csv")) == [f"{fixed.sha256}.csv"]


def test_concurrent_landings_of_the_same_file_keep_one_record(home, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    src = tmp_path / "same.csv"
    src.write_text("series_id,timestamp,value\nA,2020-01-01T00:00:00Z,1\n")
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda _: RawStore(home).put(src, "demo"), range(16)))
    assert len({r.landed_at for r in refs}) == 1  # every caller got the one record
    assert len(RawStore(home).refs("demo")) == 1
    assert not list((home.raw_dir / "demo").glob(".*"))  # no temporary file left behind


def test_dataset_names_cannot_leave_the_home(home, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("x")
    for bad in ("../../../x", "PJM", "a/b", ""):
        with pytest.raises(ValueError, match="is not valid"):
            RawStore(home).put(src, bad)
    assert not (tmp_path / "x").exists() and list(home.raw_dir.glob("*")) == []


def _ref(home, tmp_path, name: str):
    src = tmp_path / name
    src.write_text(name)
    return RawStore(home).put(src, "demo")


def test_curated_read_latest_batch_wins_and_filters(home, tmp_path):
    store = CuratedStore(home)
    old, new = _ref(home, tmp_path, "old.csv"), _ref(home, tmp_path, "new.csv")
    assert old.landed_at <= new.landed_at
    first = store.write("demo", old, _frame("a", range(0, 4), 0.0))
    second = store.write("demo", new, _frame("a", range(2, 6), 100.0))  # corrects hours 2, 3
    assert (first.rows, first.version, first.new) == (4, 0, True)
    assert (second.rows, second.version, second.new) == (4, 1, True)
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
    # a merge writes ids as string_view: reading one series still works after it
    assert store.read("demo", series_ids=["a"])["value"].tolist() == frame["value"].tolist()
    assert store.read("demo", series_ids=["zz"]).empty
    assert store.published("demo") == {old.batch_id: 0, new.batch_id: 1}
    # time travel: version 0 is the table before the correction
    assert store.read("demo", version=0)["value"].tolist() == [0.0, 1.0, 2.0, 3.0]
    lineage = store.read("demo", with_lineage=True)
    assert lineage["batch_id"].tolist() == [old.batch_id] * 2 + [new.batch_id] * 4


def test_republishing_a_batch_writes_nothing_and_an_older_batch_never_overwrites_a_newer(home, tmp_path):
    store = CuratedStore(home)
    old, new = _ref(home, tmp_path, "old.csv"), _ref(home, tmp_path, "new.csv")
    store.write("demo", new, _frame("a", range(0, 2), 100.0))
    store.write("demo", old, _frame("a", range(0, 3), 0.0))  # landed first, published late
    assert store.read("demo")["value"].tolist() == [100.0, 101.0, 2.0]
    again = store.write("demo", old, _frame("a", range(0, 3), 0.0))
    assert (again.new, again.version) == (False, 1)
    assert store.version("demo") == 1


def test_a_covariate_that_appears_later_evolves_the_schema(home, tmp_path):
    store = CuratedStore(home)
    first, second = _ref(home, tmp_path, "1.csv"), _ref(home, tmp_path, "2.csv")
    store.write("demo", first, _frame("a", range(0, 2), 0.0))
    store.write("demo", second, _frame("b", range(0, 2), 5.0).assign(temperature=[20.5, 21.5]))
    frame = store.read("demo")
    assert list(frame.columns) == ["series_id", "timestamp", "value", "temperature"]
    assert frame["temperature"].isna().tolist() == [True, True, False, False]
    assert frame.loc[frame["series_id"] == "b", "temperature"].tolist() == [20.5, 21.5]


def test_lineage_columns_are_reserved(home, tmp_path):
    ref = _ref(home, tmp_path, "x.csv")
    with pytest.raises(ValueError, match="reserved"):
        CuratedStore(home).write("demo", ref, _frame("a", range(0, 2), 0.0).assign(batch_id="mine"))
    assert CuratedStore(home).version("demo") is None


def test_series_ids_of_any_length_and_case_round_trip(home, tmp_path):
    """No file per series any more: path characters, 200 CJK characters and case all stay apart."""
    ref = _ref(home, tmp_path, "x.csv")
    ids = ["zone/1 a", "区" * 200, "abc", "ABC"]
    frame = pd.concat([_frame(s, range(0, 2), float(i)) for i, s in enumerate(ids)])
    CuratedStore(home).write("demo", ref, frame)
    assert CuratedStore(home).series("demo") == set(ids)
    assert CuratedStore(home).read("demo", series_ids=["zone/1 a"])["value"].tolist() == [0.0, 1.0]
    assert CuratedStore(home).read("demo", series_ids=["ABC"])["value"].tolist() == [3.0, 4.0]


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


def test_a_batch_streamed_in_chunks_is_one_commit_and_a_wrong_count_commits_nothing(home, tmp_path):
    store = CuratedStore(home)
    first, second = _ref(home, tmp_path, "1.csv"), _ref(home, tmp_path, "2.csv")
    chunks = [_frame("a", range(0, 3), 0.0), _frame("b", range(0, 2), 5.0), _frame("a", range(3, 5), 0.0)]
    done = store.write("demo", first, lambda: iter(chunks), rows=7)
    assert (done.rows, done.version, done.new) == (7, 0, True)
    assert store.read("demo")["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="7 rows read but 8 were accepted"):  # a merge this time
        store.write("demo", second, lambda: iter(chunks), rows=8)
    assert store.version("demo") == 0 and store.published("demo") == {first.batch_id: 0}
