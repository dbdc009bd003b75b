"""Ingestion keeps its promise under faults and odd input: every outcome is a verdict, a batch is in
the curated store (one commit) or in the quarantine, never both and never in part, and a re-send
gets a fresh verdict."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from seqops.cli import app
from seqops.core.store import CuratedStore, Quarantine, RawStore

HEADER = "series_id,timestamp,value\n"


def _rows(series: str = "A", hours: int = 6, base: float = 10.0) -> str:
    return "".join(f"{series},2020-01-01T{h:02d}:00:00Z,{base + h}\n" for h in range(hours))


def _ingest(path: Path, *args: str):
    result = CliRunner().invoke(app, ["ingest", str(path), "--json", *args])
    summary = json.loads(result.stdout.strip().splitlines()[-1])  # --json always ends with its line
    return result, summary


# ---- dataset names -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("PJM", "unknown dataset 'PJM' (did you mean 'pjm'?)"),
        ("pjm_typo", "unknown dataset 'pjm_typo'"),
        ("../../../x", "unknown dataset '../../../x'"),
    ],
)
def test_an_undeclared_dataset_is_refused_before_anything_is_written(name, said, home, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows())
    result, summary = _ingest(path, "--dataset", name)
    assert result.exit_code == 2
    assert summary["status"] == "error" and said in summary["error"]
    assert "declared are default, m4_hourly, pjm" in summary["error"]
    assert not home.data_dir.exists() or not any(home.data_dir.rglob("*.csv"))
    assert not (tmp_path.parent / "x").exists()


def test_a_symlink_is_refused_and_its_target_not_copied(home, tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text(HEADER + _rows())
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result, summary = _ingest(link, "--dataset", "default")
    assert result.exit_code == 2 and "symbolic link" in summary["error"]
    assert RawStore(home).refs("default") == []


# ---- every outcome is a verdict ------------------------------------------------------------------
def test_a_series_spanning_centuries_gets_a_verdict_not_a_traceback(home, tmp_path):
    path = tmp_path / "centuries.csv"
    path.write_text(HEADER + "A,1700-01-01T00:00:00Z,1\nA,2200-01-01T00:00:00Z,2\nA,2020-01-01T00:00:00Z,3\n")
    result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 1 and summary["status"] == "rejected"
    assert summary["rows_landed"] == summary["rows_quarantined"] == 3
    assert "validation could not run (OutOfBoundsTimedelta" in summary["errors"][0]
    assert Quarantine(home).batches("default") == [summary["batch_id"]]
    assert CuratedStore(home).version("default") is None


def test_a_crash_inside_validation_quarantines_with_the_reason(home, tmp_path, monkeypatch):
    import seqops.validation.validate as validate_module

    def broken(*args, **kwargs):
        raise OverflowError("int too large to convert")

    monkeypatch.setattr(validate_module, "validate_batch", broken)
    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows())
    result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 1
    assert summary["errors"] == [
        "invalid: validation could not run (OverflowError: int too large to convert)"
    ]
    assert summary["rows_landed"] == summary["rows_quarantined"] == 6
    assert Quarantine(home).batches("default") == [summary["batch_id"]]


def test_a_failed_publish_is_quarantined_whole_and_a_rerun_publishes_and_releases_it(
    home, tmp_path, monkeypatch
):
    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows("A") + _rows("B"))

    def disk_full(self, dataset, ref, frame, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(CuratedStore, "write", disk_full)
        result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 1 and summary["status"] == "rejected"
    assert "publish failed (OSError: [Errno 28] No space left on device)" in summary["errors"]
    assert (summary["rows_landed"], summary["rows_accepted"], summary["rows_quarantined"]) == (12, 0, 12)
    assert Quarantine(home).batches("default") == [summary["batch_id"]]
    assert CuratedStore(home).version("default") is None  # nothing of it is visible

    result, again = _ingest(path, "--dataset", "default")
    assert result.exit_code == 0 and again["batch_id"] == summary["batch_id"]
    assert (again["rows_accepted"], again["table_version"]) == (12, 0)
    assert Quarantine(home).batches("default") == []  # never in both places
    released = list((home.quarantine_dir / "default" / "_released").iterdir())
    assert len(released) == 1 and (released[0] / "batch.csv").read_text() == path.read_text()
    assert len(CuratedStore(home).read("default")) == 12


# ---- retry that works ------------------------------------------------------------------------------
def test_a_claim_cut_short_is_kept_by_its_retry_and_an_unfinished_batch_fails_the_summary(
    home, tmp_path, monkeypatch
):
    """The DAG's land task retries: a claim cut short after a file left incoming must keep it."""
    from seqops.core.store import LandingZone
    from seqops.flows.ingest import claim_for_run, run_summary

    zone = LandingZone(home)
    incoming = zone.incoming("default")
    for name in ("a.csv", "b.csv", "c.csv"):
        (incoming / name).write_text(HEADER + _rows(name[0].upper()))
    archive = LandingZone.archive

    def crash_on_b(self, path, dataset):
        if path.name == "b.csv":
            raise OSError(5, "Input/output error")
        archive(self, path, dataset)

    with monkeypatch.context() as patch:
        patch.setattr(LandingZone, "archive", crash_on_b)
        with pytest.raises(OSError):
            claim_for_run(home, "manual__1")
    assert sorted(p.name for p in incoming.iterdir()) == ["b.csv", "c.csv"]  # a.csv left incoming
    refs = claim_for_run(home, "manual__1")  # the retry
    assert sorted(r.original_name for r in refs) == ["a.csv", "b.csv", "c.csv"]
    assert list(incoming.iterdir()) == []
    assert claim_for_run(home, "manual__1") == refs  # complete: the same claim, nothing new
    (incoming / "d.csv").write_text(HEADER + _rows("D"))
    assert claim_for_run(home, "manual__1") == refs

    summary = run_summary(home, [r.to_dict() for r in refs])  # claimed, never validated
    assert sorted(summary["unfinished"]) == sorted(r.batch_id for r in refs)
    assert "not finished: " in summary["text"] and "clear this run's failed tasks" in summary["text"]


def test_one_run_claims_the_same_file_in_two_datasets_as_two_batches_and_skips_a_file_taken_meanwhile(
    home, monkeypatch
):
    from seqops.core.store import LandingZone
    from seqops.flows import ingest
    from seqops.flows.ingest import claim_for_run

    zone = LandingZone(home)
    for dataset in ("default", "pjm"):
        (zone.incoming(dataset) / "b.csv").write_text(HEADER + _rows("A"))
    refs = claim_for_run(home, "scheduled__1")
    assert sorted((r.dataset, r.original_name) for r in refs) == [("default", "b.csv"), ("pjm", "b.csv")]
    assert refs[0].batch_id == refs[1].batch_id  # same bytes, name and interval: the id alone is not the key
    assert claim_for_run(home, "scheduled__1") == refs  # the recorded claim keeps both

    for name in ("c.csv", "d.csv"):
        (zone.incoming("default") / name).write_text(HEADER + _rows(name[0].upper()))
    land_file = ingest.land_file

    def another_claimer_takes_d_first(settings, path, dataset, **kwargs):
        if path.name == "c.csv":
            (zone.incoming("default") / "d.csv").unlink()
        return land_file(settings, path, dataset, **kwargs)

    monkeypatch.setattr(ingest, "land_file", another_claimer_takes_d_first)
    (ref,) = claim_for_run(home, "scheduled__2")
    assert ref.original_name == "c.csv" and list(zone.incoming("default").iterdir()) == []


def test_a_batch_being_written_into_incoming_is_not_claimed_until_it_is_whole(home):
    from seqops.core.store import LandingZone, arriving
    from seqops.flows.ingest import claim_for_run

    zone = LandingZone(home)
    path = zone.incoming("default") / "b.csv"
    interval = {"interval_start": "2020-01-01T00:00:00+00:00", "interval_end": "2020-01-01T06:00:00+00:00"}
    with arriving(path, interval) as tmp:
        tmp.write_text(HEADER + _rows("A")[:30])  # half written, its meta already there
        assert zone.pending("default") == [] and claim_for_run(home, "scheduled__1") == []
        tmp.write_text(HEADER + _rows("A"))
    assert zone.pending("default") == [path]
    (ref,) = claim_for_run(home, "scheduled__2")
    assert (ref.interval_start, ref.interval_end) == tuple(interval.values())
    assert RawStore(home).refs("default")[0].bytes == len(HEADER + _rows("A"))


def test_an_ingest_that_waits_too_long_for_the_batch_says_so_and_changes_nothing(home, tmp_path, monkeypatch):
    from seqops.core.locks import named_lock
    from seqops.flows import ingest
    from seqops.flows.ingest import land_file

    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows("A"))
    ref = land_file(home, path, "default")
    monkeypatch.setattr(ingest, "BATCH_LOCK_WAIT_S", 0.2)
    with named_lock(home, f"batch-default-{ref.batch_id[:2]}"):  # another process works on it
        result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 2 and summary["status"] == "error"
    assert (
        f"batch {ref.batch_id} (b.csv, dataset default) waited 0.2 s for lock "
        f"'batch-default-{ref.batch_id[:2]}', held all that time by another ingest" in summary["error"]
    )
    assert f"its raw copy is kept at {ref.raw_path}" in summary["error"]
    assert CuratedStore(home).version("default") is None and Quarantine(home).batches("default") == []
    result, summary = _ingest(path, "--dataset", "default")  # once it ends
    assert result.exit_code == 0 and summary["rows_accepted"] == 6


def test_a_resend_under_the_name_the_error_asked_for_gets_a_fresh_verdict(home, tmp_path):
    wrong = tmp_path / "batch.txt"
    wrong.write_text(HEADER + _rows())
    result, first = _ingest(wrong, "--dataset", "default")
    assert result.exit_code == 1 and "unsupported file type" in first["errors"][0]
    fixed = tmp_path / "batch.csv"
    wrong.rename(fixed)
    result, second = _ingest(fixed, "--dataset", "default")
    assert result.exit_code == 0 and second["batch_id"] != first["batch_id"]
    assert Quarantine(home).batches("default") == [first["batch_id"]]  # the bad landing stays as it was


def test_a_resend_with_a_corrected_interval_gets_a_fresh_verdict(home, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows())
    args = ("--dataset", "default", "--interval-start", "2020-01-01T01:00:00Z")
    result, first = _ingest(path, *args)
    assert result.exit_code == 1 and any("timestamp_in_interval" in e for e in first["errors"])
    result, second = _ingest(path, "--dataset", "default", "--interval-start", "2020-01-01T00:00:00Z")
    assert result.exit_code == 0 and second["batch_id"] != first["batch_id"]


def test_after_a_policy_change_the_same_file_is_accepted_and_released(home, tmp_path, monkeypatch):
    policy = tmp_path / "datasets.toml"
    policy.write_text('[default]\nfreq = "1h"\n\n[load]\nvalue_max = 12.0\n')
    monkeypatch.setenv("SEQOPS_DATASETS_FILE", str(policy))
    path = tmp_path / "b.csv"
    path.write_text(HEADER + _rows())  # values 10..15
    result, first = _ingest(path, "--dataset", "load")
    assert result.exit_code == 1 and any("value_plausible" in e for e in first["errors"])
    policy.write_text('[default]\nfreq = "1h"\n\n[load]\nvalue_max = 100.0\n')
    result, second = _ingest(path, "--dataset", "load")
    assert result.exit_code == 0 and second["batch_id"] == first["batch_id"]
    assert "earlier verdict had quarantined it" in result.stderr
    assert Quarantine(home).batches("load") == []
    assert CuratedStore(home).published("load") == {first["batch_id"]: 0}
    # published is final: a stricter policy later does not re-judge (or un-publish) it
    policy.write_text('[default]\nfreq = "1h"\n\n[load]\nvalue_max = 1.0\n')
    result, third = _ingest(path, "--dataset", "load")
    assert result.exit_code == 0 and third["table_version"] == 0


# ---- identity and coercion -------------------------------------------------------------------------
def _parquet(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "b.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("leading_space", "series_id_canonical"),
        ("nfd", "series_id_canonical"),
        ("control_char", "series_id_canonical"),
        ("too_long", "series_id_canonical"),
        ("underflow", "number_representable"),
        ("truncated_last_line", "does not end with a line break"),
        ("lineage_column", "column 'batch_id' is reserved"),
    ],
)
def test_identity_and_coercion_dirt_is_rejected_by_name(case, rule, home, tmp_path):
    cafe_nfd = unicodedata.normalize("NFD", "café")
    content = {
        "leading_space": HEADER + _rows(" lead") + _rows("lead"),
        "nfd": HEADER + _rows(cafe_nfd),
        "control_char": HEADER + _rows("zone\u200b1"),
        "too_long": HEADER + _rows("x" * 201),
        "underflow": HEADER + "A,2020-01-01T00:00:00Z,1e-400\n",
        "truncated_last_line": HEADER + "A,2020-01-01T00:00:00Z,12.5\nA,2020-01-01T01:00:00Z,12",
        "lineage_column": "series_id,timestamp,value,batch_id\nA,2020-01-01T00:00:00Z,1,x\n",
    }[case]
    path = tmp_path / "b.csv"
    path.write_text(content)
    result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 1 and summary["status"] == "rejected"
    assert any(rule in e for e in summary["errors"]), summary["errors"]
    assert CuratedStore(home).version("default") is None


def test_a_zero_written_with_an_exponent_is_still_a_zero(home, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(HEADER + "A,2020-01-01T00:00:00Z,0e-5\nA,2020-01-01T01:00:00Z,0.0E+3\n")
    result, summary = _ingest(path, "--dataset", "default")
    assert result.exit_code == 0, summary
    assert CuratedStore(home).read("default")["value"].tolist() == [0.0, 0.0]


def test_parquet_float_ids_and_inexact_integers_are_refused(home, tmp_path):
    stamps = pd.date_range("2020-01-01", periods=2, freq="h", tz="UTC")
    float_ids = _parquet(
        tmp_path, pd.DataFrame({"series_id": [7.0, 7.0], "timestamp": stamps, "value": [1.0, 2.0]})
    )
    result, summary = _ingest(float_ids, "--dataset", "default")
    assert result.exit_code == 1 and "series_id is a floating-point column" in summary["errors"][0]
    big = _parquet(
        tmp_path,
        pd.DataFrame({"series_id": ["A", "A"], "timestamp": stamps, "value": [1, 2**53 + 1]}),
    )
    result, summary = _ingest(big, "--dataset", "default")
    assert result.exit_code == 1
    assert "column 'value' row 2 holds 9007199254740993" in summary["errors"][0]
    ints = _parquet(tmp_path, pd.DataFrame({"series_id": [7, 7], "timestamp": stamps, "value": [1, 2]}))
    result, summary = _ingest(ints, "--dataset", "default")
    assert result.exit_code == 0 and CuratedStore(home).series("default") == {"7"}


def test_a_batch_read_in_small_chunks_gets_the_same_verdicts_and_one_commit(home, tmp_path, monkeypatch):
    """Ingestion reads, validates and publishes a batch chunk by chunk: with chunks of 4 rows a
    duplicate key and a gap across chunk boundaries are found as with one chunk, and an accepted
    batch is still one commit of every row."""
    import seqops.core.canonical as canonical_module
    import seqops.validation.validate as validate_module

    dirty = tmp_path / "dirty.csv"
    lines = _rows("A", 3) + _rows("B", 3) + "A,2020-01-01T00:00:00Z,99\nB,2020-01-03T00:00:00Z,1\n"
    dirty.write_text(HEADER + lines)
    _, whole = _ingest(dirty, "--dataset", "default")
    monkeypatch.setattr(canonical_module, "CHUNK_ROWS", 4)
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 4)
    _, chunked = _ingest(dirty, "--dataset", "default")
    assert (
        chunked["errors"]
        == whole["errors"]
        == ["key_unique[series_id, timestamp]: 2 rows", "gap_too_long[timestamp]: 1 rows"]
    )
    assert (chunked["status"], chunked["rows_quarantined"]) == ("rejected", 8)
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + "".join(_rows(s, 5) for s in "ABC"))
    result, summary = _ingest(clean, "--dataset", "default")
    assert result.exit_code == 0 and summary["table_version"] == 0
    assert len(CuratedStore(home).read("default")) == 15 and CuratedStore(home).version("default") == 0


# ---- kills and races -------------------------------------------------------------------------------
def _seqops(home: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "SEQOPS_HOME": str(home)}
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("seqops")), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def _big_batch(path: Path, series: int = 200, hours: int = 500) -> int:
    stamps = pd.date_range("2020-01-01", periods=hours, freq="h", tz="UTC")
    frame = pd.DataFrame(
        {
            "series_id": [f"s{i:03d}" for i in range(series) for _ in range(hours)],
            "timestamp": list(stamps.strftime("%Y-%m-%dT%H:%M:%SZ")) * series,
            "value": [float(i * 1000 + h) for i in range(series) for h in range(hours)],
        }
    )
    frame.to_csv(path, index=False)
    return len(frame)


def _assert_whole_once(home: Path, rows: int) -> None:
    from seqops.core.settings import Settings

    settings = Settings(home=home)
    curated = CuratedStore(settings)
    frame = curated.read("default", with_lineage=True)
    assert len(frame) == rows
    assert not frame.duplicated(["series_id", "timestamp"]).any()
    assert frame["batch_id"].nunique() == 1
    assert len(curated.published("default")) == 1  # one commit for the batch, however many runs
    assert Quarantine(settings).batches("default") == []


@pytest.mark.slow
def test_killed_at_random_points_then_rerun_the_store_holds_the_batch_once_whole(tmp_path):
    """SIGKILL during land, validation or publish (8 seeds), then a re-run: exactly once, whole."""
    path = tmp_path / "big.csv"
    rows = _big_batch(path)
    began = time.monotonic()
    probe = _seqops(tmp_path / "probe", "ingest", str(path), "--dataset", "default", "--json")
    probe.communicate(timeout=300)
    full = time.monotonic() - began
    assert probe.returncode == 0
    _assert_whole_once(tmp_path / "probe", rows)
    killed_after = []
    for seed in range(8):
        home = tmp_path / f"home-{seed}"
        delay = random.Random(seed).uniform(0.2, full)
        proc = _seqops(home, "ingest", str(path), "--dataset", "default", "--json")
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_after.append(round(delay, 1))
        proc.communicate(timeout=60)
        rerun = _seqops(home, "ingest", str(path), "--dataset", "default", "--json")
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1])["rows_accepted"] == rows
        _assert_whole_once(home, rows)
    assert len(killed_after) >= 6, killed_after  # most runs really were cut short


@pytest.mark.slow
def test_concurrent_ingests_of_the_same_file_publish_it_once(tmp_path):
    path = tmp_path / "big.csv"
    rows = _big_batch(path, series=50, hours=200)
    home = tmp_path / "home"
    procs = [_seqops(home, "ingest", str(path), "--dataset", "default", "--json") for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e[-1500:] for _, e in results]
    verdicts = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert {(v["batch_id"], v["accepted"], v["rows_accepted"], v["table_version"]) for v in verdicts} == {
        (verdicts[0]["batch_id"], True, rows, verdicts[0]["table_version"])
    }  # one verdict, one commit: the later ingests waited for the first and read its verdict
    _assert_whole_once(home, rows)


# ---- values far outside a series' own history -------------------------------------------------------
def _later(series: str, values: list[float], day: int = 2) -> str:
    return "".join(f"{series},2020-01-{day:02d}T{h:02d}:00:00Z,{v}\n" for h, v in enumerate(values))


def test_a_value_far_outside_its_series_history_is_rejected_naming_it(home, tmp_path):
    """A year of history of 10..15; then one batch with a x100 typo, one inside a generous band, and a
    new series."""
    year_ago = tmp_path / "year_ago.csv"
    year_ago.write_text(HEADER + _rows("A", hours=6, base=10.0).replace("2020-01-01", "2019-01-01"))
    assert _ingest(year_ago, "--dataset", "default")[0].exit_code == 0
    first = tmp_path / "history.csv"
    first.write_text(HEADER + _rows("A", hours=6, base=10.0))
    assert _ingest(first, "--dataset", "default")[0].exit_code == 0

    typo = tmp_path / "typo.csv"
    typo.write_text(HEADER + _later("A", [12.0, 1300.0, 13.0]))
    result, summary = _ingest(typo, "--dataset", "default")
    assert result.exit_code == 1
    assert summary["errors"] == ["value_in_history[value]: 1 rows"]
    said = result.stderr
    assert "ERROR value_in_history [value]" in said
    assert "line 3: series_id='A' timestamp='2020-01-02T01:00:00Z' value='1300.0'" in said
    assert "257 times the series' published range outside it" in said
    assert Quarantine(home).holds("default", summary["batch_id"])

    fine = tmp_path / "fine.csv"  # beyond the history, but by less than one range: seasons move
    fine.write_text(HEADER + _later("A", [16.0, 19.5, 5.5], day=3) + _later("NEW", [1e6, 2e6], day=3))
    result, summary = _ingest(fine, "--dataset", "default")
    assert result.exit_code == 0, summary
    ranges = CuratedStore(home).value_ranges("default")
    assert {s: (r.min, r.max) for s, r in ranges.items()} == {"A": (5.5, 19.5), "NEW": (1e6, 2e6)}
    assert ranges["A"].days > 365 and ranges["NEW"].days == 1 / 24


def test_a_series_with_less_than_a_seasonal_cycle_published_is_not_judged_by_its_range(home, tmp_path):
    """A first spring's range must not reject its summer: a month of 10..15, then values at 40."""
    spring = tmp_path / "spring.csv"
    spring.write_text(HEADER + _rows("A", hours=6, base=10.0))
    assert _ingest(spring, "--dataset", "default")[0].exit_code == 0
    summer = tmp_path / "summer.csv"
    summer.write_text(HEADER + _later("A", [40.0, 41.0, 42.0]))
    result, summary = _ingest(summer, "--dataset", "default")
    assert result.exit_code == 0, summary
