"""The GX suite (validation.suites), its typed result (validation.validate) and offline reports."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from seqops.core.canonical import coerce
from seqops.core.datasets import DatasetSpec
from seqops.validation.report import write_report
from seqops.validation.suites import RULES, build_suite, derive_columns
from seqops.validation.validate import ValidationResult, validate_batch

SPEC = DatasetSpec(name="pjm", freq="1h", value_min=0.0, value_max=60000.0, max_gap_steps=3)
NOW = datetime(2020, 1, 1, tzinfo=UTC)


def batch(records: list[tuple], columns=("series_id", "timestamp", "value")) -> pd.DataFrame:
    """A coerced batch from text cells, as read from a CSV whose first data row is line 2."""
    raw = pd.DataFrame([[str(c) for c in r] for r in records], columns=list(columns), dtype=object)
    raw["_row"] = np.arange(2, len(raw) + 2)
    return coerce(raw)


def hourly(series: str, hours, base: float = 10.0) -> list[tuple]:
    return [(series, f"2014-01-01T{h:02d}:00:00Z", base + h) for h in hours]


def validate(frame: pd.DataFrame, spec: DatasetSpec = SPEC, **kwargs) -> ValidationResult:
    kwargs.setdefault("now", NOW)
    return validate_batch(frame, spec, batch_id="b1", **kwargs)


# ---- derived columns and the suite ------------------------------------------------------------


def test_derived_columns_are_per_series():
    frame = batch(
        [
            ("A", "2014-01-01T00:00:00Z", 1),
            ("B", "2014-01-01T05:00:00Z", 1),  # B's first row: no step
            ("A", "2014-01-01T01:00:00Z", 1),
            ("A", "2014-01-01T03:00:00Z", 1),  # one hour missing
            ("A", "2014-01-01T03:00:00Z", 2),  # repeated key: no step of its own
            ("A", "2014-01-01T04:30:00Z", 1),  # off the grid
            ("A", "2014-01-01T05:00:00Z", 1),  # two steps after 03:00 (04:30 does not count)
            ("A", "not a time", 1),
        ]
    )
    out = derive_columns(frame, SPEC)
    assert out["_grid_offset"].tolist()[:7] == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0]
    assert np.isnan(out["_grid_offset"].iloc[7])
    assert out["_step"].fillna(-1).tolist() == [-1, -1, 1, 2, -1, -1, 2, -1]
    assert out["_tolerated_step"].fillna(-1).tolist() == [-1, -1, 1, 2, -1, -1, 2, -1]
    with pytest.raises(ValueError, match="not a positive fixed step"):
        derive_columns(frame, SPEC.model_copy(update={"freq": "0s"}))


def test_grid_follows_the_series_phase():
    # Hourly data at half past (a +05:30 zone's local hours) is regular; one whole-hour row is not.
    half_past = [("IN", f"2014-01-01T{h:02d}:30:00Z", 1) for h in range(5)] + [
        ("IN", "2014-01-01T07:00:00Z", 1)
    ]
    out = derive_columns(batch(half_past), SPEC)
    assert out["_grid_offset"].tolist() == [0, 0, 0, 0, 0, 0.5]
    result = validate(batch(half_past))
    assert [o.rule for o in result.errors()] == ["on_grid"]
    assert result.errors()[0].examples[0]["_row"] == 7


def test_every_expectation_carries_rule_severity_and_policy():
    suite = build_suite(
        SPEC,
        interval=(NOW - timedelta(days=1), NOW),
        known_series={"A"},
        history={"A": (1.0, 2.0)},
        now=NOW,
        covariates=["temp"],
    )
    metas = [e.meta for e in suite.expectations]
    assert {m["rule"] for m in metas} == set(RULES)  # every rule is in the suite once configured
    assert all(m["severity"] in ("error", "warning") and m["policy"] for m in metas)
    assert {m["rule"] for m in metas if m["severity"] == "warning"} == {"short_gap", "known_series"}
    strict = build_suite(
        SPEC.model_copy(update={"allow_new_series": False, "max_gap_steps": 0}), known_series=set()
    )
    rules = {e.meta["rule"]: e.meta["severity"] for e in strict.expectations}
    assert rules["known_series"] == "error" and "short_gap" not in rules
    assert "timestamp_in_interval" not in rules and "value_plausible" in rules
    open_range = build_suite(DatasetSpec(name="m4"))
    assert "value_plausible" not in {e.meta["rule"] for e in open_range.expectations}


def test_suite_leaves_out_checks_on_absent_columns():
    suite = build_suite(SPEC, columns=["series_id", "_row"])
    assert sorted(e.meta["rule"] for e in suite.expectations) == [
        "row_count", "schema", "series_id_not_blank", "series_id_present",
    ]  # fmt: skip


# ---- validate_batch ---------------------------------------------------------------------------


def test_short_gap_is_accepted_with_a_warning():
    result = validate(batch(hourly("A", [0, 1, 4, 5]) + hourly("B", range(6))), known_series={"A", "B"})
    assert result.accepted and result.errors() == []
    [warning] = result.warnings()
    assert (warning.rule, warning.severity, warning.column, warning.unexpected_count) == (
        "short_gap", "warning", "_tolerated_step", 1,
    )  # fmt: skip
    assert warning.examples == [
        {"_row": 4, "series_id": "A", "timestamp": "2014-01-01T04:00:00Z", "value": "14.0",
         "problem": "2 step(s) missing before it"},
    ]  # fmt: skip
    assert result.gaps == [
        {"series_id": "A", "after": "2014-01-01T01:00:00+00:00", "before": "2014-01-01T04:00:00+00:00",
         "missing_steps": 2, "severity": "warning", "_row": 4},
    ]  # fmt: skip
    assert result.message().splitlines() == [
        "ACCEPTED: dataset pjm, batch b1, 10 rows; 0 error(s), 1 warning(s).",
        "WARNING short_gap [timestamp]: short gap, reported: a series misses 1 to 3 consecutive steps"
        " (1 of 10 rows)",
        "  line 4: series_id='A' timestamp='2014-01-01T04:00:00Z' value='14.0' (2 step(s) missing before it)",
    ]


def test_gap_of_exactly_max_gap_steps_is_a_warning_and_one_more_an_error():
    three = validate(batch(hourly("A", [0, 4])))  # 3 missing = max_gap_steps
    four = validate(batch(hourly("A", [0, 5])))
    assert three.accepted and [o.rule for o in three.warnings()] == ["short_gap"]
    assert not four.accepted and [o.rule for o in four.errors()] == ["gap_too_long"]
    assert four.warnings() == []  # a long gap is not also reported as a short one


def test_no_gap_tolerated_when_max_gap_steps_is_zero():
    result = validate(batch(hourly("A", [0, 2])), DatasetSpec(name="m4_hourly", max_gap_steps=0))
    assert [o.rule for o in result.errors()] == ["gap_too_long"]


def test_unknown_series_is_a_warning_or_an_error_by_policy():
    frame = batch(hourly("A", range(3)) + hourly("NEW", range(3)))
    lenient = validate(frame, known_series={"A"})
    assert lenient.accepted
    [warning] = lenient.warnings()
    assert (warning.rule, warning.unexpected_count, warning.examples[0]["series_id"]) == (
        "known_series",
        3,
        "NEW",
    )
    strict = validate(frame, SPEC.model_copy(update={"allow_new_series": False}), known_series={"A"})
    assert not strict.accepted and [o.rule for o in strict.errors()] == ["known_series"]
    assert "new series are rejected (allow_new_series = false)" in strict.message()
    unchecked = validate(frame)  # known_series=None: not checked
    assert unchecked.accepted and "known_series" not in {o.rule for o in unchecked.outcomes}


def test_interval_is_start_inclusive_end_exclusive():
    interval = (datetime(2014, 1, 1, tzinfo=UTC), datetime(2014, 1, 1, 3, tzinfo=UTC))
    inside = validate(batch(hourly("A", range(3))), interval=interval)
    assert inside.accepted
    at_end = validate(batch(hourly("A", range(4))), interval=interval)
    [error] = at_end.errors()
    assert (error.rule, error.unexpected_count, error.examples[0]["_row"]) == ("timestamp_in_interval", 1, 5)
    only_start = validate(batch(hourly("A", range(4))), interval=(interval[0], None))
    assert only_start.accepted


def test_now_is_inclusive():
    result = validate(batch(hourly("A", range(3))), now=datetime(2014, 1, 1, 2, tzinfo=UTC))
    assert result.accepted
    late = validate(batch(hourly("A", range(3))), now=datetime(2014, 1, 1, 1, 59, tzinfo=UTC))
    assert [o.rule for o in late.errors()] == ["timestamp_not_future"]


def test_naive_reference_times_are_caller_bugs():
    frame = batch(hourly("A", range(2)))
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        validate(frame, now=datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="interval end must be timezone-aware"):
        validate(frame, interval=(None, datetime(2020, 1, 1)))


def test_missing_columns_give_a_result_not_an_exception():
    only_ids = coerce(pd.DataFrame({"series_id": ["A", "B"], "_row": [2, 3]}))
    result = validate(only_ids, known_series={"A"})
    assert not result.accepted and result.row_count == 2
    assert [o.rule for o in result.errors()] == ["schema"]
    assert result.errors()[0].detail == "missing timestamp, value; found 'series_id'"
    assert {o.rule for o in result.outcomes} == {
        "schema", "row_count", "series_id_present", "series_id_not_blank", "series_id_canonical",
        "known_series",
    }  # fmt: skip
    nothing = validate(coerce(pd.DataFrame()))
    assert [o.rule for o in nothing.errors()] == ["schema", "row_count"]
    assert nothing.errors()[1].detail == "0 data rows"


def test_parquet_style_types_validate(tmp_path):
    raw = pd.DataFrame(
        {
            "series_id": ["A", "A", None],
            "timestamp": pd.to_datetime(
                ["2014-01-01 00:00", "2014-01-01 01:00", "2014-01-01 02:00"]
            ).tz_localize("America/New_York"),
            "value": [1.0, np.nan, 3.0],
            "temp": [1, 2, 3],
            "_row": [1, 2, 3],
        }
    )
    result = validate(coerce(raw))
    assert {o.rule for o in result.errors()} == {"series_id_present", "value_present"}
    assert result.failed("value_present").examples[0] == {
        "_row": 2, "series_id": "A", "timestamp": "2014-01-01 01:00:00-05:00", "value": None,
    }  # fmt: skip


def test_to_dict_is_strict_json_and_gx_result_is_kept():
    result = validate(batch([("A", "2014-01-01T00:00:00Z", "inf"), ("A", "2014-01-01T01:00:00Z", "1")]))
    text = json.dumps(result.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["accepted"] is False
    assert data["gx_result"]["success"] is False
    assert data["gx_result"]["statistics"]["evaluated_expectations"] == len(result.outcomes)
    finite = next(
        r for r in data["gx_result"]["results"] if r["expectation_config"]["meta"]["rule"] == "value_finite"
    )
    assert finite["result"]["partial_unexpected_list"] == ["inf"]


def test_gx_stays_quiet_and_is_imported_lazily():
    validate(batch(hourly("A", range(2))))
    assert logging.getLogger("great_expectations").level == logging.WARNING
    code = (
        "import sys, seqops.core.canonical, seqops.validation.suites, seqops.validation.validate, "
        "seqops.validation.report;"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- reports ----------------------------------------------------------------------------------

_EXTERNAL_ASSET = re.compile(
    r"<script[^>]*\bsrc=[\"']?(?:https?:)?//|<link[^>]*\bhref=[\"']?(?:https?:)?//|<img[^>]*\bsrc=[\"']?(?:https?:)?//"
    r"|url\(\s*['\"]?(?:https?:)?//",
    re.IGNORECASE,
)


def test_report_renders_offline_and_shows_each_failed_expectation(tmp_path):
    frame = batch([*hourly("A", [0, 1, 3]), ("A", "2014-01-01 04:00", 5), ("", "2014-01-01T05:00:00Z", -1)])
    result = validate(frame, known_series={"A"})
    failed = [*result.errors(), *result.warnings()]
    assert {o.rule for o in failed} == {
        "timestamp_parseable", "series_id_not_blank", "value_plausible", "short_gap", "known_series",
    }  # fmt: skip
    paths = write_report(result, tmp_path / "report")
    assert paths == {
        "json": tmp_path / "report/validation.json",
        "data_docs": tmp_path / "report/data_docs/index.html",
    }
    saved = json.loads(paths["json"].read_text())
    assert saved["accepted"] is False and saved["gx_result"]["results"]

    page = paths["data_docs"].read_text()
    assert _EXTERNAL_ASSET.search(page) is None
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<title>seqops validation: pjm batch b1 REJECTED</title>" in page
    for outcome in failed:  # our summary: rule, policy and first example line
        assert f'data-rule="{outcome.rule}"' in page
        assert outcome.policy.replace("'", "&#x27;") in page
    assert "line 5: series_id=&#x27;A&#x27; timestamp=&#x27;2014-01-01 04:00&#x27;" in page
    # GX's own Data Docs section: one failure mark per failed expectation, plus the overall status
    gx_section = page[page.index("</section>") :]
    assert "Expectation Validation Result" in gx_section
    assert gx_section.count('class="fas fa-times') == len(failed) + 1
    assert gx_section.count('class="fas fa-check-circle') == len(result.outcomes) - len(failed)


def test_report_of_an_accepted_batch(tmp_path):
    result = validate(batch(hourly("A", range(3))))
    page = write_report(result, tmp_path)["data_docs"].read_text()
    assert '<div class="seqops-verdict accepted">ACCEPTED</div>' in page
    assert "seqops-failed" not in page and 'class="fas fa-times' not in page
    assert page.count('class="fas fa-check-circle') == len(result.outcomes) + 1  # + overall status


def test_a_batch_validated_in_chunks_gets_the_verdict_of_one_run(monkeypatch, tmp_path):
    """Row checks run chunk by chunk (bounded memory); their summed verdict, counts and first
    offending rows equal one whole run's, including a duplicate key split across two chunks."""
    import seqops.validation.validate as validate_module

    records = [
        *hourly("A", range(0, 10)),
        ("A", "2014-01-01T03:00:00Z", 99),  # repeats a key of the first chunk
        ("B", "not a time", 1),
        ("", "2014-01-01T00:00:00Z", 1),
        ("B", "2014-01-01T01:00:00Z", -5),  # below the plausible range
        ("B", "2014-01-01T08:00:00Z", 1),  # a gap after 01:00
        *hourly("C", range(0, 6), base=70000.0),  # above it
        ("C", "2014-01-01T06:30:00Z", 1),  # off the grid
    ]
    frame = batch(records)
    whole = validate(frame, known_series={"A", "B"})
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 4)
    chunked = validate(frame, known_series={"A", "B"})
    assert not whole.accepted and len(whole.errors()) >= 5  # the batch has many problems at once
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "gx_result"}  # noqa: E731
    assert strip(chunked) == strip(whole)
    stats = chunked.gx_result["statistics"]
    assert stats["evaluated_expectations"] == len(chunked.outcomes) == len(whole.outcomes)
    assert stats["unsuccessful_expectations"] == sum(not o.success for o in chunked.outcomes)
    assert [r["expectation_config"]["type"] for r in chunked.gx_result["results"]] == [
        r["expectation_config"]["type"] for r in whole.gx_result["results"]
    ]
    page = write_report(chunked, tmp_path)["data_docs"].read_text()  # GX's own page renders the merge
    text = re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", page))
    assert f"Unsuccessful Expectations {stats['unsuccessful_expectations']}" in text
    assert "Expectation Suite: pjm-b1 " in text


def test_a_batch_given_in_chunks_gets_the_verdict_of_one_frame(monkeypatch):
    """The typed batch as consecutive chunks (as ingestion reads a file) is staged by series and
    validated in parts: a duplicate key and a gap that straddle a chunk boundary, a series whose
    rows are spread over every chunk, and an off-grid row are judged as in one frame."""
    import seqops.validation.validate as validate_module

    records = [
        *hourly("A", range(0, 3)),
        ("B", "2014-01-01T00:00:00Z", 1),
        ("A", "2014-01-01T03:00:00Z", 5),  # chunk 1 ends here
        ("A", "2014-01-01T03:00:00Z", 6),  # repeats the key before the boundary, another value
        ("B", "2014-01-01T03:00:00Z", 1),  # two steps missing since B's 00:00 of chunk 1
        ("A", "2014-01-01T04:00:00Z", -1),  # below the plausible range
        ("C", "2014-01-01T01:00:00Z", 1),
        ("B", "2014-01-01T04:00:00Z", 1),  # chunk 2 ends here
        ("C", "2014-01-01T00:00:00Z", 1),  # before C's first row: the order of a series is its time
        ("B", "2014-01-01T04:30:00Z", 1),  # off the grid
        ("A", "2014-01-01T09:00:00Z", 1),  # four steps missing: an error gap
        ("B", "2014-01-01T04:00:00Z", 1),  # repeats chunk 2's B 04:00, same value
    ]
    frame = batch(records)
    whole = validate(frame, known_series={"A", "B"})
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 3)  # parts of about three rows
    chunks = [frame.iloc[i : i + 5] for i in range(0, len(frame), 5)]
    chunked = validate(chunks, known_series={"A", "B"})
    assert {o.rule for o in whole.errors()} >= {"key_unique", "value_plausible", "on_grid", "gap_too_long"}
    assert [g["missing_steps"] for g in whole.gaps] == [4, 2]
    key_unique = whole.failed("key_unique")
    assert key_unique.detail == "4 of 14 rows; 2 key(s) repeated: 1 identical, 1 with conflicting values"
    assert [e["_row"] for e in key_unique.examples] == [6, 7, 11, 15]  # lines: the first data row is 2
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "gx_result"}  # noqa: E731
    assert strip(chunked) == strip(whole)
    assert chunked.gx_result["statistics"] == whole.gx_result["statistics"]
