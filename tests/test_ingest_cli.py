"""`seqops ingest` end to end: malformed batches are rejected whole, clean ones published whole.

Each case runs the real command (land -> GX validation -> publish/quarantine) in a fresh home and
checks the exit code, the one-line JSON summary, the quarantine's copy and the curated store.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from seqops.cli import app
from seqops.core.store import CuratedStore, Quarantine

HEADER = "series_id,timestamp,value\n"
GOOD_ROWS = [f"A,2020-01-01T{h:02d}:00:00Z,{10 + h}\n" for h in range(6)] + [
    f"B,2020-01-01T{h:02d}:00:00+00:00,{20 + h}.5\n" for h in range(6)
]


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(rows)).encode()


def _parquet_bytes(tmp_path: Path) -> bytes:
    frame = pd.DataFrame(
        {
            "series_id": ["A"] * 3,
            "timestamp": pd.date_range("2020-01-01", periods=3, freq="h", tz="UTC"),
            "value": [1.0, 2.0, 3.0],
        }
    )
    path = tmp_path / "written.parquet"
    frame.to_parquet(path)
    return path.read_bytes()


# name -> (file suffix, content, the rule (or read error text) the summary must name)
MALFORMED: dict[str, tuple[str, bytes, str]] = {
    "empty_file": (".csv", b"", "empty"),
    "header_only": (".csv", HEADER.encode(), "row_count"),
    "missing_column": (".csv", b"series_id,timestamp\nA,2020-01-01T00:00:00Z\n", "schema"),
    "renamed_column": (".csv", b"series,timestamp,value\nA,2020-01-01T00:00:00Z,1\n", "schema"),
    "unparseable_timestamp": (".csv", _csv("A,2020-13-45T99:00:00Z,1\n"), "timestamp_parseable"),
    "non_iso_timestamp": (".csv", _csv("A,31-12-2019 01:00,1\n"), "timestamp_parseable"),
    "naive_timestamp": (".csv", _csv("A,2020-01-01T00:00:00,1\n"), "timestamp_parseable"),
    "nan_value": (".csv", _csv("A,2020-01-01T00:00:00Z,NaN\n"), "value_present"),
    "inf_value": (".csv", _csv("A,2020-01-01T00:00:00Z,inf\n"), "value_finite"),
    "text_value": (".csv", _csv("A,2020-01-01T00:00:00Z,twelve\n"), "value_present"),
    "conflicting_duplicate": (
        ".csv",
        _csv("A,2020-01-01T00:00:00Z,1\n", "A,2020-01-01T00:00:00Z,2\n"),
        "key_unique",
    ),
    "future_timestamp": (".csv", _csv("A,2099-01-01T00:00:00Z,1\n"), "timestamp_not_future"),
    "empty_series_id": (".csv", _csv(",2020-01-01T00:00:00Z,1\n"), "series_id"),
    "wrong_delimiter": (".csv", b"series_id;timestamp;value\nA;2020-01-01T00:00:00Z;1\n", "delimiter"),
    "binary_garbage": (".csv", bytes(random.Random(7).randrange(256) for _ in range(512)), "UTF-8"),
    "truncated_csv": (".csv", _csv(*GOOD_ROWS)[:-9], "value"),
    "truncated_parquet": (".parquet", b"PAR1" + b"\x00" * 40, "Parquet"),
    "off_grid_timestamp": (
        ".csv",
        _csv("A,2020-01-01T00:00:00Z,1\n", "A,2020-01-01T01:30:00Z,2\n"),
        "on_grid",
    ),
    "long_gap": (".csv", _csv("A,2020-01-01T00:00:00Z,1\n", "A,2020-01-03T00:00:00Z,2\n"), "gap_too_long"),
}


def _ingest(path: Path, *args: str):
    result = CliRunner().invoke(app, ["ingest", str(path), "--json", *args])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return result, summary


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_batch_is_rejected_whole(case, home, tmp_path):
    suffix, content, named = MALFORMED[case]
    path = tmp_path / f"{case}{suffix}"
    path.write_bytes(content)
    result, summary = _ingest(path)
    assert result.exit_code == 1, result.output
    assert summary["status"] == "rejected"
    assert any(named.lower() in e.lower() for e in summary["errors"]), summary["errors"]
    # Nothing lost: the quarantine holds the exact bytes, the curated store holds nothing.
    folder = Path(summary["quarantine_path"])
    assert (folder / f"batch{suffix}").read_bytes() == content
    assert (folder / "validation.json").exists()
    assert summary["rows_accepted"] == 0
    assert summary["rows_landed"] == summary["rows_quarantined"]
    assert CuratedStore(home).files("default") == []
    assert Quarantine(home).batches("default") == [summary["batch_id"]]
    # The human message says what went wrong and where the data went.
    assert "REJECTED" in result.stderr and str(folder) in result.stderr


def test_oversized_file_is_rejected_with_the_limit(home, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQOPS_MAX_BATCH_MB", "0.0001")  # ~100 bytes
    path = tmp_path / "big.csv"
    path.write_bytes(_csv(*GOOD_ROWS))
    result, summary = _ingest(path)
    assert result.exit_code == 1
    assert "SEQOPS_MAX_BATCH_MB" in summary["errors"][0]
    assert (Path(summary["quarantine_path"]) / "batch.csv").read_bytes() == path.read_bytes()


def test_rejected_batch_report_names_the_row(home, tmp_path):
    path = tmp_path / "nan.csv"
    path.write_bytes(_csv(*GOOD_ROWS[:3], "A,2020-01-01T03:00:00Z,NaN\n"))
    result, summary = _ingest(path)
    assert "line 5" in result.stderr  # header is line 1: the NaN row is line 5
    html = (Path(summary["quarantine_path"]) / "data_docs" / "index.html").read_text()
    assert "value_present" in html or "not_be_null" in html


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_batch_in_any_row_order_is_published_whole(seed, home, tmp_path):
    rows = GOOD_ROWS.copy()
    random.Random(seed).shuffle(rows)
    path = tmp_path / "clean.csv"
    path.write_bytes(_csv(*rows))
    result, summary = _ingest(path)
    assert result.exit_code == 0, result.output
    assert summary["status"] == "accepted"
    assert summary["rows_landed"] == summary["rows_accepted"] == len(GOOD_ROWS)
    assert summary["quarantine_path"] is None
    curated = CuratedStore(home).read("default")
    assert curated["value"].tolist() == [10, 11, 12, 13, 14, 15, 20.5, 21.5, 22.5, 23.5, 24.5, 25.5]
    assert str(curated["timestamp"].dt.tz) == "UTC"


def test_clean_parquet_batch_is_accepted(home, tmp_path):
    path = tmp_path / "good.parquet"
    path.write_bytes(_parquet_bytes(tmp_path))
    result, summary = _ingest(path)
    assert result.exit_code == 0, result.output
    assert summary["rows_accepted"] == 3


def test_same_batch_twice_changes_nothing(home, tmp_path):
    path = tmp_path / "clean.csv"
    path.write_bytes(_csv(*GOOD_ROWS))
    _, first = _ingest(path)
    files = CuratedStore(home).files("default")
    _, second = _ingest(path)
    assert first["batch_id"] == second["batch_id"]
    assert first["table_version"] == second["table_version"] == 0  # one commit, never a second
    assert CuratedStore(home).files("default") == files and CuratedStore(home).version("default") == 0


def test_short_gap_is_accepted_with_a_warning(home, tmp_path):
    path = tmp_path / "gap.csv"
    path.write_bytes(_csv("A,2020-01-01T00:00:00Z,1\n", "A,2020-01-01T02:00:00Z,2\n"))
    result, summary = _ingest(path)
    assert result.exit_code == 0
    assert any("short_gap" in w for w in summary["warnings"])


def test_missing_file_is_a_usage_error(home, tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--json"])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_at_least_fifteen_distinct_malformed_cases():
    assert len(MALFORMED) + 1 >= 15  # + the oversized case


def test_naive_interval_bound_is_a_usage_error(home, tmp_path):
    path = tmp_path / "clean.csv"
    path.write_bytes(_csv(*GOOD_ROWS))
    result = CliRunner().invoke(app, ["ingest", str(path), "--interval-start", "2020-01-01T00:00:00"])
    assert result.exit_code == 2
    assert "no UTC offset" in result.stderr
    assert CuratedStore(home).files("default") == []


def test_batch_outside_its_declared_interval_is_rejected(home, tmp_path):
    path = tmp_path / "clean.csv"
    path.write_bytes(_csv(*GOOD_ROWS))
    (tmp_path / "clean.csv.meta.json").write_text(
        '{"interval_start": "2020-01-01T02:00:00Z", "interval_end": "2020-01-02T00:00:00Z"}'
    )
    result, summary = _ingest(path)
    assert result.exit_code == 1
    assert any("timestamp_in_interval" in e for e in summary["errors"])
