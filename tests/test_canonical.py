"""Reading and typing batches (seqops.core.canonical), and every class of dirty input end to end.

Each malformed file goes through read_batch -> coerce -> validate_batch with the real GX suite;
the test names the rule (or read error) it must hit and the words the reason must contain.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqops.core.canonical import BatchReadError, coerce, iter_batch, read_batch, to_canonical
from seqops.core.datasets import DatasetSpec
from seqops.validation.validate import ValidationResult, validate_batch

SPEC = DatasetSpec(name="pjm", freq="1h", value_min=0.0, value_max=60000.0, max_gap_steps=3)
NOW = datetime(2020, 1, 1, tzinfo=UTC)
INTERVAL = (datetime(2014, 1, 1, tzinfo=UTC), datetime(2014, 1, 2, tzinfo=UTC))
KNOWN = {"AEP", "DOM"}
HEADER = "series_id,timestamp,value"


def rows(series: str = "AEP", hours: range = range(6), base: float = 100.0) -> list[str]:
    return [f"{series},2014-01-01T{h:02d}:00:00Z,{base + h}" for h in hours]


CLEAN = [*rows("AEP"), *rows("DOM", base=200.0)]  # lines 2..13


def csv_text(lines: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def write(tmp_path: Path, content: str | bytes, name: str = "batch.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run(path: Path, *, max_bytes: int | None = None) -> ValidationResult:
    frame = coerce(read_batch(path, max_bytes=max_bytes))
    return validate_batch(frame, SPEC, batch_id="t", interval=INTERVAL, known_series=KNOWN, now=NOW)


# ---- read_batch -------------------------------------------------------------------------------


def test_csv_cells_stay_text_and_row_is_the_file_line(tmp_path):
    text = (
        'series_id,timestamp,value\nAEP,2014-01-01T00:00:00Z,NA\n\n"A\nB",2014-01-01T00:00:00Z, 2\n'
        "AEP,2014-01-01T01:00:00Z,\n"
    )
    raw = read_batch(write(tmp_path, text))
    assert list(raw.columns) == ["series_id", "timestamp", "value", "_row"]
    assert raw["_row"].tolist() == [2, 4, 6]  # blank line 3 skipped; the quoted record spans 4-5
    assert raw["value"].tolist() == ["NA", " 2", ""]  # nothing coerced, not even "NA"
    assert raw["series_id"].tolist() == ["AEP", "A\nB", "AEP"]


def test_bom_and_crlf_line_endings(tmp_path):
    content = "\ufeff" + csv_text(CLEAN[:2]).replace("\n", "\r\n")
    raw = read_batch(write(tmp_path, content))
    assert list(raw.columns)[:3] == ["series_id", "timestamp", "value"]
    assert raw.to_dict("list") == {
        "series_id": ["AEP", "AEP"],
        "timestamp": ["2014-01-01T00:00:00Z", "2014-01-01T01:00:00Z"],
        "value": ["100.0", "101.0"],
        "_row": [2, 3],
    }


def test_header_only_csv_gives_zero_rows(tmp_path):
    raw = read_batch(write(tmp_path, HEADER + "\n"))
    assert len(raw) == 0 and list(raw.columns) == ["series_id", "timestamp", "value", "_row"]


def test_gzip_csv_and_corrupt_gzip(tmp_path):
    good = write(tmp_path, gzip.compress(csv_text(CLEAN).encode()), "b.csv.gz")
    assert read_batch(good)["_row"].tolist() == list(range(2, 14))
    bad = write(tmp_path, gzip.compress(csv_text(CLEAN).encode())[:40], "c.csv.gz")
    with pytest.raises(BatchReadError, match="gzip stream is truncated or corrupt"):
        read_batch(bad)


def test_read_errors_name_the_problem(tmp_path):
    cases = {
        "a.xlsx": (b"PK\x03\x04", "unsupported file type 'a.xlsx'"),
        "b.csv": (
            "series_id,timestamp,value\nAE\xe9,x,1\n".encode("latin-1"),
            "not UTF-8 text: byte 0xe9 at offset 28 (line 2)",
        ),
        "c.csv": ("series_id,timestamp,value,value\nA,x,1,2\n", "column 'value' appears more than once"),
        "d.csv": ("series_id,timestamp,value,_row\nA,x,1,2\n", "column '_row' is reserved"),
        "e.csv": ("series_id,timestamp,value\nA,x,1,2\nA,y,1\n", "line 2 has 4 fields but the header has 3"),
        "f.csv": ('series_id,timestamp,value\n"A,x,1\n', "CSV is malformed at line"),
        "g.csv": ("\n\n", "CSV has no header line"),
        "h.csv": ("series_id,timestamp,value,\nA,x,1,\n", "header column 4 has no name (a trailing comma?)"),
    }
    for name, (content, reason) in cases.items():
        with pytest.raises(BatchReadError) as caught:
            read_batch(write(tmp_path, content, name))
        assert reason in str(caught.value), name
    with pytest.raises(FileNotFoundError):
        read_batch(tmp_path / "missing.csv")


def test_size_limit_comes_from_settings(tmp_path, monkeypatch):
    from seqops.core.settings import Settings

    path = write(tmp_path, csv_text(CLEAN))
    monkeypatch.setenv("SEQOPS_MAX_BATCH_MB", "0.0001")  # 104 bytes
    with pytest.raises(
        BatchReadError, match=r"over the 104 bytes limit of one batch \(SEQOPS_MAX_BATCH_MB\)"
    ):
        read_batch(path, max_bytes=Settings().max_batch_bytes)
    monkeypatch.setenv("SEQOPS_MAX_BATCH_MB", "1")
    assert len(read_batch(path, max_bytes=Settings().max_batch_bytes)) == 12


def test_iter_batch_reads_the_table_in_chunks_and_refuses_at_the_end_what_only_the_end_shows(tmp_path):
    path = write(tmp_path, csv_text(CLEAN[:5] + [""] + CLEAN[5:]))  # a blank line: line numbers go on
    chunks = list(iter_batch(path, chunk_rows=5))
    assert [len(c) for c in chunks] == [5, 5, 2] and [c.index[0] for c in chunks] == [0, 0, 0]
    whole = read_batch(path)
    assert pd.concat(chunks, ignore_index=True).equals(whole)
    assert whole["_row"].tolist() == [*range(2, 7), *range(8, 15)]
    ragged = write(tmp_path, csv_text([*CLEAN, "AEP,2014-01-01T09:00:00Z"]), "ragged.csv")
    with pytest.raises(BatchReadError, match="line 14 has 2 fields but the header has 3"):
        list(iter_batch(ragged, chunk_rows=5))
    cut = write(tmp_path, csv_text(CLEAN).rstrip("\n"), "cut.csv")
    with pytest.raises(BatchReadError, match="does not end with a line break: its last line \\(line 13\\)"):
        list(iter_batch(cut, chunk_rows=5))
    stamps = pd.date_range("2020-01-01", periods=6, freq="h", tz="UTC")
    big = tmp_path / "big.parquet"
    values = [1, 2, 2**53 + 1, 4, 2**53 + 2, 6]
    pd.DataFrame({"series_id": ["A"] * 6, "timestamp": stamps, "value": values}).to_parquet(big)
    with pytest.raises(BatchReadError, match=r"row 3 holds 9007199254740993, .*; 2 such value\(s\)"):
        list(iter_batch(big, chunk_rows=2))  # counted over every chunk, as read whole
    ints = tmp_path / "ints.parquet"
    pd.DataFrame({"series_id": [7] * 6, "timestamp": stamps, "value": range(6)}).to_parquet(ints)
    assert [c["_row"].tolist() for c in iter_batch(ints, chunk_rows=4)] == [[1, 2, 3, 4], [5, 6]]


# ---- coerce -----------------------------------------------------------------------------------


def test_coerce_types_every_row_and_keeps_raw_text(tmp_path):
    text = csv_text(
        [
            "AEP,2014-01-01 00:00:00-05:00,1.5,7",
            "AEP,2014-01-01T06:00Z,inf,",
            "AEP,2014-01-01 07:00:00,abc,x",
            ",2014-02-30T00:00:00Z, 3 ,1e3",
        ],
        header="series_id,timestamp,value,temp",
    )
    frame = coerce(read_batch(write(tmp_path, text)))
    assert list(frame.columns) == [
        "series_id", "timestamp", "value", "temp", "_row", "_timestamp_raw", "_value_raw", "_temp_raw",
    ]  # fmt: skip
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].tolist()[:2] == [
        pd.Timestamp("2014-01-01T05:00:00Z"),
        pd.Timestamp("2014-01-01T06:00:00Z"),
    ]
    assert frame["timestamp"].isna().tolist() == [False, False, True, True]  # naive; impossible date
    values = frame["value"].tolist()
    assert values[0] == 1.5 and values[1] == np.inf and np.isnan(values[2]) and values[3] == 3.0
    assert frame["temp"].tolist()[::3] == [7.0, 1000.0] and frame["temp"].isna().tolist()[1:3] == [True, True]
    assert frame["series_id"].tolist() == ["AEP", "AEP", "AEP", ""]
    assert frame["_timestamp_raw"].tolist()[2] == "2014-01-01 07:00:00"
    assert frame["_value_raw"].tolist() == ["1.5", "inf", "abc", " 3 "]
    assert frame["_row"].tolist() == [2, 3, 4, 5]


def test_coerce_parquet_types(tmp_path):
    path = tmp_path / "b.parquet"
    pd.DataFrame(
        {
            "series_id": pd.array([1, 2, None], dtype="Int64"),
            "timestamp": pd.to_datetime(["2014-01-01 00:00"] * 3).tz_localize("America/New_York"),
            "naive": pd.to_datetime(["2014-01-01 00:00"] * 3),
            "value": ["1.5", "x", None],
        }
    ).to_parquet(path)
    frame = coerce(read_batch(path))
    assert frame["series_id"].tolist() == ["1", "2", None]
    assert frame["timestamp"].tolist() == [pd.Timestamp("2014-01-01T05:00:00Z")] * 3
    assert frame["naive"].isna().all()  # a covariate that is not numeric
    assert frame["value"].tolist()[0] == 1.5 and frame["value"].isna().tolist() == [False, True, True]
    assert frame["_row"].tolist() == [1, 2, 3]

    naive = tmp_path / "naive.parquet"
    pd.DataFrame(
        {"series_id": ["A"], "timestamp": pd.to_datetime(["2014-01-01"]), "value": [1.0]}
    ).to_parquet(naive)
    typed = coerce(read_batch(naive))
    assert typed["timestamp"].isna().tolist() == [True]  # zone unknown: not canonical
    assert typed["_timestamp_raw"].tolist() == ["2014-01-01 00:00:00"]


def test_coerce_keeps_missing_columns_missing():
    frame = coerce(pd.DataFrame({"series_id": ["A"], "_row": [2]}))
    assert list(frame.columns) == ["series_id", "_row"]
    assert list(coerce(pd.DataFrame()).columns) == ["_row"]


# ---- to_canonical -----------------------------------------------------------------------------


def test_to_canonical_sorts_converts_and_drops_helpers(tmp_path):
    text = csv_text(
        [
            "DOM,2014-01-01T01:00:00Z,2,0.5",
            "AEP,2014-01-01 01:00:00-05:00,3,1",
            "AEP,2014-01-01T05:00:00Z,1,2",
        ],
        header="series_id,timestamp,value,temp",
    )
    out = to_canonical(coerce(read_batch(write(tmp_path, text))))
    assert list(out.columns) == ["series_id", "timestamp", "value", "temp"]
    assert str(out["timestamp"].dtype) == "datetime64[us, UTC]"
    assert out.to_dict("list") == {
        "series_id": ["AEP", "AEP", "DOM"],
        "timestamp": [pd.Timestamp(f"2014-01-01T{h}:00:00Z") for h in ("05", "06", "01")],
        "value": [1.0, 3.0, 2.0],
        "temp": [2.0, 1.0, 0.5],
    }


def test_to_canonical_refuses_rows_that_are_not_canonical(tmp_path):
    frame = coerce(read_batch(write(tmp_path, csv_text(["AEP,2014-01-01 00:00,1"]))))
    with pytest.raises(ValueError, match="1 row"):
        to_canonical(frame)
    with pytest.raises(ValueError, match="missing column"):
        to_canonical(frame.drop(columns=["value"]))


# ---- every class of dirt, end to end ----------------------------------------------------------


def _parquet_bytes(tmp_path: Path) -> bytes:
    frame = pd.DataFrame(
        {
            "series_id": ["AEP"] * 6,
            "timestamp": pd.date_range("2014-01-01", periods=6, freq="h", tz="UTC"),
            "value": np.arange(6.0),
        }
    )
    frame.to_parquet(tmp_path / "src.parquet")
    return (tmp_path / "src.parquet").read_bytes()


@dataclass
class Dirt:
    """A malformed batch and the reason it must be given."""

    content: Callable[[Path], str | bytes]
    reason: list[str]  # substrings of the error message or of result.message()
    errors: set[str] = field(default_factory=set)  # exact failed error rules; empty = read error
    name: str = "batch.csv"
    max_bytes: int | None = None


def _replace(line: int, new: str) -> Callable[[Path], str]:
    """CLEAN with file line ``line`` (2 = first data row) replaced."""
    return lambda _: csv_text([new if i + 2 == line else r for i, r in enumerate(CLEAN)])


DIRT = {
    "empty file": Dirt(lambda _: b"", ["file is empty (0 bytes)"]),
    "header only": Dirt(
        lambda _: HEADER + "\n", ["row_count", "at least one data row", "0 data rows"], {"row_count"}
    ),
    "missing column": Dirt(
        lambda _: csv_text([r.rsplit(",", 1)[0] for r in CLEAN], header="series_id,timestamp"),
        ["schema", "missing value", "found 'series_id', 'timestamp'"],
        {"schema"},
    ),
    "renamed column": Dirt(
        lambda _: csv_text(CLEAN, header="series_id,time,value"),
        ["missing timestamp", "extra columns 'time' (renamed?)"],
        {"schema", "covariate_present"},
    ),
    "unparseable timestamp": Dirt(
        _replace(4, "AEP,yesterday noon,102"),
        [
            "timestamp_parseable",
            "line 4: series_id='AEP' timestamp='yesterday noon' value='102' (not ISO 8601",
        ],
        {"timestamp_parseable"},
    ),
    "naive timestamp": Dirt(
        _replace(4, "AEP,2014-01-01 02:00:00,102"),
        ["line 4:", "timestamp='2014-01-01 02:00:00'", "no UTC offset (naive)"],
        {"timestamp_parseable"},
    ),
    "non-ISO date": Dirt(
        _replace(4, "AEP,31-12-2014 01:00,102"),
        ["timestamp='31-12-2014 01:00'", "not ISO 8601"],
        {"timestamp_parseable"},
    ),
    "NaN value": Dirt(
        _replace(5, "AEP,2014-01-01T03:00:00Z,NaN"),
        ["value_present", "line 5:", "value='NaN'"],
        {"value_present"},
    ),
    "inf value": Dirt(
        _replace(5, "AEP,2014-01-01T03:00:00Z,inf"),
        ["value_finite", "value is finite", "line 5:", "value='inf'"],
        {"value_finite", "value_plausible"},
    ),
    "text value": Dirt(
        _replace(5, "AEP,2014-01-01T03:00:00Z,twelve"),
        ["value='twelve'", "text cells are rejected"],
        {"value_present"},
    ),
    "identical duplicate": Dirt(
        lambda _: csv_text([*CLEAN, CLEAN[2]]),
        ["key_unique", "1 key(s) repeated: 1 identical, 0 with conflicting values", "line 4:", "line 14:"],
        {"key_unique"},
    ),
    "conflicting duplicate": Dirt(
        lambda _: csv_text([*CLEAN, "AEP,2014-01-01T02:00:00Z,999"]),
        [
            "0 identical, 1 with conflicting values",
            "line 14: series_id='AEP' timestamp='2014-01-01T02:00:00Z' value='999'",
        ],
        {"key_unique"},
    ),
    "future timestamp": Dirt(
        lambda _: csv_text([*CLEAN, "DOM,2030-01-01T00:00:00Z,5"]),
        ["timestamp_not_future", "after 2020-01-01T00:00:00+00:00", "line 14:"],
        # 2030 is also far outside the interval and after a long gap in DOM
        {"timestamp_not_future", "timestamp_in_interval", "gap_too_long"},
    ),
    "empty series_id": Dirt(
        _replace(3, ",2014-01-01T01:00:00Z,101"),
        ["series_id_not_blank", "line 3: series_id=''"],
        {"series_id_not_blank"},
    ),
    "wrong delimiter": Dirt(
        lambda _: csv_text([r.replace(",", ";") for r in CLEAN], header=HEADER.replace(",", ";")),
        ["not comma-separated", "';'", "',' as the delimiter"],
    ),
    "binary garbage": Dirt(
        lambda _: bytes(range(256)) * 8,
        ["not a CSV or Parquet file: bytes at offset 0 are not text (binary?)"],
    ),
    "NUL byte deep in a big file": Dirt(  # past the first read of the stream: still named, with offset
        lambda _: csv_text(CLEAN * 40_000).encode() + b"AEP,2014-01-01T00:00:00Z,1\x002\n",
        ["not a CSV or Parquet file: bytes at offset", "are not text (binary?)"],
    ),
    "invalid UTF-8 deep in a big file": Dirt(
        lambda _: csv_text(CLEAN * 40_000).encode() + b"AEP,2014-01-01T00:00:00Z,\xff\n",
        ["not UTF-8 text: byte 0xff at offset", "cannot be decoded"],
    ),
    "truncated CSV": Dirt(
        lambda _: csv_text(CLEAN)[:-20],
        ["line 13 has 2 fields but the header has 3", "ends mid-line", "truncated"],
    ),
    "truncated Parquet": Dirt(
        lambda p: _parquet_bytes(p)[:-100], ["Parquet file is truncated or corrupt"], name="b.parquet"
    ),
    "half a Parquet": Dirt(
        lambda p: (b := _parquet_bytes(p))[: len(b) // 2] + b[-8:],
        ["Parquet file is truncated or corrupt:"],
        name="c.parquet",
    ),
    "oversized file": Dirt(
        lambda _: csv_text(CLEAN), ["file is 398 bytes, over the 100 bytes limit", "split it"], max_bytes=100
    ),
    "implausible value": Dirt(
        _replace(5, "AEP,2014-01-01T03:00:00Z,70000"),
        ["value_plausible", "[0, 60000]", "value='70000'"],
        {"value_plausible"},
    ),
    "negative value": Dirt(_replace(5, "AEP,2014-01-01T03:00:00Z,-1"), ["value='-1'"], {"value_plausible"}),
    "off-grid timestamp": Dirt(
        lambda _: csv_text([*CLEAN, "AEP,2014-01-01T01:30:00Z,5"]),
        ["on_grid", "1h grid", "line 14:", "0.5 of a step off the series' grid"],
        {"on_grid"},
    ),
    "long gap": Dirt(
        lambda _: csv_text([*rows("AEP", range(2)), *rows("AEP", range(6, 12)), *rows("DOM")]),
        ["gap_too_long", "misses at most 3 consecutive steps", "line 4:", "4 step(s) missing before it"],
        {"gap_too_long"},
    ),
    "outside the batch interval": Dirt(
        lambda _: csv_text([*CLEAN, "AEP,2013-12-31T23:00:00Z,99"]),
        ["timestamp_in_interval", "[2014-01-01T00:00:00+00:00, 2014-01-02T00:00:00+00:00)", "line 14:"],
        {"timestamp_in_interval"},
    ),
}


@pytest.mark.parametrize("case", list(DIRT), ids=list(DIRT))
def test_dirty_batch_is_refused_with_a_clear_reason(case, tmp_path):
    dirt = DIRT[case]
    path = write(tmp_path, dirt.content(tmp_path), dirt.name)
    if not dirt.errors:
        with pytest.raises(BatchReadError) as caught:
            run(path, max_bytes=dirt.max_bytes)
        message = str(caught.value)
    else:
        result = run(path, max_bytes=dirt.max_bytes)
        assert not result.accepted
        assert {o.rule for o in result.errors()} == dirt.errors
        message = result.message()
        assert message.startswith("REJECTED: dataset pjm, batch t, ")
    for words in dirt.reason:
        assert words in message, f"{case}: {words!r} not in:\n{message}"


def test_clean_batch_in_any_order_is_accepted(tmp_path):
    shuffled = [CLEAN[i] for i in np.random.default_rng(7).permutation(len(CLEAN))]
    result = run(write(tmp_path, csv_text(shuffled)))
    assert result.accepted and result.errors() == [] and result.warnings() == []
    assert result.row_count == 12 and result.gaps == []
    assert (
        result.message()
        == f"ACCEPTED: dataset pjm, batch t, 12 rows; all {len(result.outcomes)} expectations passed."
    )


def test_long_gap_is_listed_as_an_error_gap(tmp_path):
    result = run(write(tmp_path, DIRT["long gap"].content(tmp_path)))
    assert result.gaps == [
        {
            "series_id": "AEP",
            "after": "2014-01-01T01:00:00+00:00",
            "before": "2014-01-01T06:00:00+00:00",
            "missing_steps": 4,
            "severity": "error",
            "_row": 4,
        }
    ]
