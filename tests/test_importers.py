"""Importers: the PJM dirt policy on exact hand-made cases, the real files, and generic tables."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from seqops.core.importers import ImportReport, SourceFormatError, import_pjm, import_table, read_pjm_zone


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_fall_back_repeat_becomes_two_utc_hours(tmp_path):
    # 2014-11-02: clocks go back at 02:00 EDT; PJM labels the repeated hour twice.
    src = _write(
        tmp_path / "AEP_hourly.csv",
        "Datetime,AEP_MW\n02-11-2014 03:00,4\n02-11-2014 01:00,1\n02-11-2014 02:00,2\n02-11-2014 02:00,3\n",
    )
    report = ImportReport(source=str(src))
    frame = read_pjm_zone(src, report)
    assert frame["timestamp"].dt.strftime("%H:%M").tolist() == ["05:00", "06:00", "07:00", "08:00"]
    assert frame["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert report.repairs["repeated_fall_back_hour_split"] == 1
    assert report.repairs["files_sorted_into_time_order"] == 1


def test_spring_forward_label_is_shifted_forward(tmp_path):
    # 2013-03-10 02:00 does not exist in New York; the file still has it (and no 03:00).
    src = _write(
        tmp_path / "AEP_hourly.csv",
        "Datetime,AEP_MW\n10-03-2013 01:00,1\n10-03-2013 02:00,2\n10-03-2013 04:00,3\n",
    )
    report = ImportReport(source=str(src))
    frame = read_pjm_zone(src, report)
    assert frame["timestamp"].dt.strftime("%H:%M").tolist() == ["06:00", "07:00", "08:00"]
    assert report.repairs["nonexistent_hour_shifted_forward"] == 1


def test_second_date_format_is_recognised(tmp_path):
    src = _write(tmp_path / "DAYTON_hourly.csv", "Datetime,DAYTON_MW\n2014-01-01 01:00:00,1682.0\n")
    frame = read_pjm_zone(src, ImportReport(source=str(src)))
    assert frame.iloc[0]["timestamp"] == pd.Timestamp("2014-01-01 06:00", tz="UTC")
    assert frame.iloc[0]["series_id"] == "DAYTON"


def test_unknown_date_format_names_the_file(tmp_path):
    src = _write(tmp_path / "AEP_hourly.csv", "Datetime,AEP_MW\n2014/01/01 1am,1\n")
    with pytest.raises(SourceFormatError, match="AEP_hourly.csv.*match none of the formats"):
        read_pjm_zone(src, ImportReport(source=str(src)))


def test_shipped_demo_imports_every_row_into_yearly_batches(pjm_source, tmp_path):
    report = import_pjm(pjm_source, tmp_path, period="year")
    assert report.rows_read == 647_375
    assert report.rows_written == report.rows_read
    assert sorted(report.series) == ["AEP", "COMED", "DAYTON", "DEOK", "DOM", "DUQ", "EKPC"]
    assert report.repairs["repeated_fall_back_hour_split"] == 28  # 4 years x 7 zones
    assert len(report.batches) == 15  # 2004 .. 2018
    meta = json.loads((tmp_path / "pjm_2014.csv.gz.meta.json").read_text())
    assert meta["interval_start"] == "2014-01-01T00:00:00+00:00"
    assert meta["interval_end"] == "2015-01-01T00:00:00+00:00"
    batch = pd.read_csv(tmp_path / "pjm_2014.csv.gz")
    assert list(batch.columns) == ["series_id", "timestamp", "value"]
    assert batch["timestamp"].str.endswith("Z").all()
    assert not batch.duplicated(["series_id", "timestamp"]).any()


def test_batches_are_byte_identical_across_imports(pjm_source, tmp_path):
    import_pjm(pjm_source, tmp_path / "a", period="year", zones=["EKPC"])
    import_pjm(pjm_source, tmp_path / "b", period="year", zones=["EKPC"])
    for path in (tmp_path / "a").glob("*.csv.gz"):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
        with gzip.open(path) as fh:
            assert fh.readline() == b"series_id,timestamp,value\n"


def test_wide_table_melts_and_drops_missing_observations(tmp_path):
    src = _write(
        tmp_path / "wide.csv",
        "date,a,b\n2020-01-01T00:00:00Z,1,\n2020-01-01T01:00:00Z,2,5\n",
    )
    frame = import_table(src, layout="wide", timestamp_column="date")
    assert frame[["series_id", "value"]].values.tolist() == [["a", 1.0], ["a", 2.0], ["b", 5.0]]
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_naive_timestamps_need_a_timezone(tmp_path):
    src = _write(tmp_path / "long.csv", "series_id,timestamp,value\na,2020-01-01 00:00,1\n")
    with pytest.raises(SourceFormatError, match="--timezone"):
        import_table(src)
    frame = import_table(src, timezone="Europe/Paris")
    assert frame.iloc[0]["timestamp"] == pd.Timestamp("2019-12-31 23:00", tz="UTC")
