"""Run the suite on one batch and return the project's typed result; no GX type leaks out.

``accepted`` means no error-severity expectation failed. A batch that lacks required columns
still gets a result (the schema expectation fails; row checks on the absent columns are left
out), never an exception.
"""

from __future__ import annotations

import json
import math
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqops.core.canonical import (
    REQUIRED_COLUMNS,
    ROW,
    TIMESTAMP_RAW,
    VALUE_RAW,
    covariate_columns,
    describe_timestamp,
    raw_column,
)
from seqops.core.datasets import DatasetSpec
from seqops.validation.suites import (
    DERIVED_COLUMNS,
    GRID_OFFSET,
    HISTORY_EXCESS,
    RULES,
    STEP,
    TOLERATED_STEP,
    build_suite,
    derive_columns,
    history_excess,
    import_gx,
)

EXAMPLES_KEPT = 5  # offending rows kept per expectation
EXAMPLES_SHOWN = 3  # of which the message shows
GAPS_KEPT = 1000
_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "unexpected_index_column_names": [ROW],
    "partial_unexpected_count": 20,
}


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict on a batch.

    ``examples`` are a few offending rows: ``_row`` (the file's line number for CSV, the row
    index + 1 for Parquet), the raw text of ``series_id``/``timestamp``/``value`` and, for
    derived or covariate columns, the checked value. ``rule`` is a stable id of the policy line
    (``timestamp_parseable``, ``key_unique``, ...); ``detail`` what was observed, in words.
    """

    expectation: str
    column: str | None
    severity: str
    success: bool
    policy: str
    unexpected_count: int
    examples: list[dict]
    rule: str = ""
    detail: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """The verdict on one batch, with GX's own result (``gx_result``, its ``to_json_dict()``)."""

    dataset: str
    batch_id: str
    row_count: int
    accepted: bool
    outcomes: list[ExpectationOutcome]
    gaps: list[dict]
    gx_result: dict = field(repr=False)

    def errors(self) -> list[ExpectationOutcome]:
        """Failed error-severity expectations: any one rejects the batch."""
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    def warnings(self) -> list[ExpectationOutcome]:
        """Failed warning-severity expectations: reported, the batch is still accepted."""
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    def failed(self, rule: str) -> ExpectationOutcome | None:
        """The first failed outcome of ``rule``, if any."""
        return next((o for o in self.outcomes if o.rule == rule and not o.success), None)

    def message(self) -> str:
        """Verdict, rows, then each failed expectation (errors first) with up to 3 example rows."""
        errors, warnings = self.errors(), self.warnings()
        verdict = "ACCEPTED" if self.accepted else "REJECTED"
        counts = f"{len(errors)} error(s), {len(warnings)} warning(s)"
        if not errors and not warnings:
            counts = f"all {len(self.outcomes)} expectations passed"
        lines = [
            f"{verdict}: dataset {self.dataset}, batch {self.batch_id}, {self.row_count} rows; {counts}."
        ]
        for outcome in [*errors, *warnings]:
            # A derived column stands for the batch column it checks.
            shown = DERIVED_COLUMNS.get(outcome.column, outcome.column)
            where = f" [{shown}]" if shown else ""
            detail = f" ({outcome.detail})" if outcome.detail else ""
            lines.append(f"{outcome.severity.upper()} {outcome.rule}{where}: {outcome.policy}{detail}")
            for example in outcome.examples[:EXAMPLES_SHOWN]:
                lines.append("  " + format_example(example))
            hidden = outcome.unexpected_count - min(len(outcome.examples), EXAMPLES_SHOWN)
            if outcome.examples and hidden > 0:
                lines.append(f"  ... and {hidden} more row(s)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-safe dict (non-finite floats become strings)."""
        return json_safe(asdict(self))


def format_example(example: dict) -> str:
    """``line 17: series_id='AEP' timestamp='2014-13-01' value='12.5' (why)``."""
    shown = " ".join(f"{k}={example.get(k)!r}" for k in REQUIRED_COLUMNS if k in example)
    extra = {k: v for k, v in example.items() if k not in (*REQUIRED_COLUMNS, ROW, "problem", "column")}
    notes = [example["problem"]] if example.get("problem") else []
    notes += [f"{k}={v!r}" for k, v in extra.items()]
    tail = f" ({'; '.join(notes)})" if notes else ""
    return f"line {example.get(ROW)}: {shown}{tail}"


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as strings and timestamps as ISO text, so strict JSON can hold it."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if value is pd.NaT:
        return None
    return value


def _aware(moment: datetime | None, what: str) -> datetime | None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise ValueError(f"{what} must be timezone-aware (got naive {moment.isoformat()})")
    return moment


def validate_batch(
    frame: pd.DataFrame | Iterable[pd.DataFrame],
    spec: DatasetSpec,
    *,
    batch_id: str,
    interval: tuple[datetime | None, datetime | None] | None = None,
    known_series: set[str] | None = None,
    history: dict[str, tuple[float, float]] | None = None,
    now: datetime | None = None,
    scratch: Path | None = None,
) -> ValidationResult:
    """Validate one typed batch against its dataset's suite, holding a part of it at a time.

    The batch is first staged in a scratch folder, split by series (a hash of ``series_id``), and
    then validated part by part: a part holds whole series, so the per-series checks (duplicate
    keys, grid, gaps) see every row they judge, and a part is about :data:`CHUNK_ROWS` rows (more
    only when one series alone is bigger). The parts' GX results are summed; the examples, gaps and
    duplicate counts are those of one run over the whole batch (``tests/test_validation.py``).

    Args:
        frame: the output of :func:`seqops.core.canonical.coerce`, whole or as consecutive chunks
            (``coerce`` of each chunk of :func:`seqops.core.canonical.iter_batch`).
        spec: the dataset's policy.
        batch_id: the batch's id (first 16 hex chars of its sha256).
        interval: declared ``[start, end)`` of the batch (zone-aware; a bound may be None).
        known_series: series the dataset already has; None skips the unknown-series check.
        history: each published series' (min, max) value; None skips the far-outside-history rule.
        now: reference time for the future check (zone-aware); default now.
        scratch: the folder for the staged parts (on disk: a memory-backed /tmp would hold the
            batch in RAM); default the system's temporary folder. Removed when done.

    Returns:
        The :class:`ValidationResult`; ``accepted`` is False when any error-severity rule failed.

    Raises:
        ValueError: ``interval`` or ``now`` is naive (a caller bug, not a batch problem).
        Whatever iterating ``frame`` raises (a :class:`seqops.core.canonical.BatchReadError`).
    """
    now = _aware(now, "now") or datetime.now(UTC)
    if interval is not None:
        interval = (_aware(interval[0], "interval start"), _aware(interval[1], "interval end"))
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"validate-{batch_id}-", dir=scratch) as folder:
        staged = _Staged(Path(folder), [frame] if isinstance(frame, pd.DataFrame) else frame)

        def prepare(part: pd.DataFrame) -> pd.DataFrame:
            prepared = derive_columns(part, spec)
            if history:
                prepared[HISTORY_EXCESS] = history_excess(prepared, history)
            return prepared

        empty = prepare(staged.head)
        suite = build_suite(
            spec,
            interval=interval,
            known_series=known_series,
            history=history,
            now=now,
            covariates=covariate_columns(staged.head),
            columns=empty.columns,
        )
        evidence = _Evidence()
        parts = (evidence.add(prepare(part)) for part in staged.parts())
        gx_result = _run(suite, empty, parts, evidence, name=f"{spec.name}-{batch_id}")
    outcomes = [_outcome(r, evidence) for r in gx_result["results"]]
    severity = {"error": 0, "warning": 1}
    rank = {rule: i for i, rule in enumerate(RULES)}
    outcomes.sort(key=lambda o: (o.success, severity.get(o.severity, 2), rank.get(o.rule, len(rank))))
    return ValidationResult(
        dataset=spec.name,
        batch_id=batch_id,
        row_count=staged.rows,
        accepted=not any(not o.success and o.severity == "error" for o in outcomes),
        outcomes=outcomes,
        gaps=_gaps(evidence.gapped(), spec),
        gx_result=gx_result,
    )


#: Rows per part of a batch, and per GX run of the row-by-row expectations: GX's working memory
#: grows with a part, not with the batch (benchmarks/bench_ingest.py measures the whole ingest).
#: Validating 2 M rows peaked at 573 MB with parts of 250,000 rows, 385 MB with 65,536 (10 % slower).
CHUNK_ROWS = 65_536
#: Series buckets a batch is staged in; parts are made of whole buckets. With 256, a bucket of the
#: largest batch (500 MB, ~20 M short rows) holds ~80,000 rows.
_BUCKETS = 256


class _Staged:
    """A typed batch staged in ``folder`` by series bucket (pickled pieces appended per bucket:
    pickle keeps every dtype and cell exactly), read back as parts of whole buckets."""

    def __init__(self, folder: Path, chunks: Iterable[pd.DataFrame]) -> None:
        self.folder, self.rows, self.head = folder, 0, None
        self.sizes = np.zeros(_BUCKETS, dtype="int64")
        for chunk in chunks:
            chunk = chunk.reset_index(drop=True)
            if ROW not in chunk:  # as derive_columns numbers a frame without one
                chunk[ROW] = np.arange(self.rows + 1, self.rows + len(chunk) + 1, dtype="int64")
            if self.head is None:
                self.head = chunk.iloc[:0]
            self.rows += len(chunk)
            if "series_id" in chunk:  # a series' rows, identical ids or missing ones, share a bucket
                key = pd.util.hash_pandas_object(chunk["series_id"], index=False).to_numpy()
            else:  # nothing is judged across rows: any split will do
                key = chunk[ROW].to_numpy()
            bucket = (key % _BUCKETS).astype("int64")
            self.sizes += np.bincount(bucket, minlength=_BUCKETS)
            for k, piece in chunk.groupby(bucket, sort=False):
                with (folder / f"{k}.pkl").open("ab") as fh:
                    pickle.dump(piece, fh, protocol=pickle.HIGHEST_PROTOCOL)
        if self.head is None:
            raise ValueError("no chunk to validate: a batch without rows is one empty frame")

    def parts(self) -> Iterator[pd.DataFrame]:
        """Whole buckets grouped into parts of about :data:`CHUNK_ROWS` rows, each in file order
        (by ``_row``); one empty part for a batch without rows."""
        group: list[int] = []
        groups = [group]
        for k in np.flatnonzero(self.sizes):
            if group and self.sizes[group].sum() + self.sizes[k] > CHUNK_ROWS:
                group = []
                groups.append(group)
            group.append(int(k))
        for group in groups:
            pieces = [self.head, *(piece for k in group for piece in self._pieces(k))]
            part = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else self.head
            yield part.sort_values(ROW, kind="stable", ignore_index=True)

    def _pieces(self, bucket: int) -> Iterator[pd.DataFrame]:
        with (self.folder / f"{bucket}.pkl").open("rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return


class _Evidence:
    """What the outcomes need of the rows, gathered part by part: the rows GX named as unexpected
    (a few per expectation and part), the repeated keys and the gaps, and the row count."""

    def __init__(self) -> None:
        self.rows = 0
        self.named: list[pd.DataFrame] = []
        self.repeated: list[tuple[int, int]] = []  # (first line of the key, line), best first
        self.keys = self.conflicting = 0
        self.gaps: list[pd.DataFrame] = []
        self.frame = pd.DataFrame({ROW: pd.Series(dtype="int64")})
        self._current: pd.DataFrame | None = None

    def add(self, prepared: pd.DataFrame) -> pd.DataFrame:
        """Take one part's own evidence (keys, gaps); :meth:`name` then takes GX's rows of it."""
        self.rows += len(prepared)
        if "series_id" in prepared and "timestamp" in prepared:
            repeated, keys, conflicting = _repeated_keys(prepared)
            self.repeated = sorted([*self.repeated, *repeated])[:EXAMPLES_KEPT]
            self.keys, self.conflicting = self.keys + keys, self.conflicting + conflicting
            self.named.append(prepared[prepared[ROW].isin([row for _, row in repeated])])
        if STEP in prepared:
            gapped = prepared.loc[prepared[STEP] >= 2, ["series_id", "timestamp", STEP, ROW]]
            self.gaps.append(gapped.sort_values(["series_id", "timestamp"]).head(GAPS_KEPT))
        self._current = prepared
        return prepared

    def name(self, results: list[dict]) -> None:
        """Keep the current part's rows that ``results`` list as unexpected (for the examples)."""
        rows = {
            item[ROW]
            for result in results
            for item in (result.get("result") or {}).get("partial_unexpected_index_list") or []
            if isinstance(item, dict) and ROW in item
        }
        if rows and self._current is not None:
            self.named.append(self._current[self._current[ROW].isin(rows)])

    def done(self) -> None:
        """Every part is in: the named rows become :attr:`frame`, one row per line."""
        self._current = None
        if self.named:
            frame = pd.concat(self.named, ignore_index=True)
            self.frame = frame.drop_duplicates(ROW).reset_index(drop=True)
            self.named = []

    def gapped(self) -> pd.DataFrame:
        return pd.concat(self.gaps, ignore_index=True) if self.gaps else pd.DataFrame()


#: Expectations that judge the table as a whole: run once per part, on only the columns they read
#: (a part holds whole series, so a key repeats within one part or not at all).
_WHOLE_TABLE = {"expect_compound_columns_to_be_unique", "expect_table_row_count_to_be_between"}
_COLUMN_SET = {"expect_table_columns_to_match_set"}  # reads the column names only: run on no rows


def _run(
    suite: Any, empty: pd.DataFrame, parts: Iterable[pd.DataFrame], evidence: _Evidence, *, name: str
) -> dict:
    """Run ``suite`` on every part in a throw-away GX context; GX's result as a plain dict.

    The column-set expectation runs once on ``empty`` (the columns, no rows); on each part the
    whole-table ones run on the columns they need, and the row-by-row ones chunk by chunk. The
    results are summed (counts, the first offending rows, success) into one result that keeps
    GX's shape (its Data Docs page renders it) and the suite's order.
    """
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_or_update_pandas("seqops")
    asset = source.add_dataframe_asset(name="batch")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_batch")
    groups: dict[str, list[Any]] = {"columns": [], "table": [], "rows": []}
    for expectation in suite.expectations:
        kind = expectation.expectation_type
        groups["columns" if kind in _COLUMN_SET else "table" if kind in _WHOLE_TABLE else "rows"].append(
            expectation
        )

    def runner(part: str):
        if not groups[part]:
            return None
        sub = context.suites.add(gx.ExpectationSuite(name=f"{name}-{part}", expectations=groups[part]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}-{part}", data=batch_definition, suite=sub)
        )
        return lambda data: definition.run(
            batch_parameters={"dataframe": data}, result_format=_RESULT_FORMAT
        ).to_json_dict()

    chunk_rows = CHUNK_ROWS
    runs: list[dict] = []
    if (columns := runner("columns")) is not None:
        runs.append(columns(empty))
    table, rows = runner("table"), runner("rows")
    needed = {ROW} | {c for e in groups["table"] for c in (getattr(e, "column_list", None) or [])}
    per_part: list[dict] = []
    for frame in parts:
        results = []
        if table is not None:
            results.append(table(frame[[c for c in frame.columns if c in needed]]))
        if rows is not None:
            chunks = [rows(frame.iloc[i : i + chunk_rows]) for i in range(0, max(len(frame), 1), chunk_rows)]
            results.append(_merge_chunks(chunks))
        evidence.name([r for run in results for r in run["results"]])
        per_part.append(_combine(results, order=[], name=name) if len(results) > 1 else results[0])
    evidence.done()
    if per_part:
        runs.append(_merge_chunks(per_part))
    return _combine(runs, order=[_key(e.configuration.to_json_dict()) for e in suite.expectations], name=name)


def _key(config: dict) -> str:
    """An expectation's identity across runs (GX adds the batch id to the kwargs of a result)."""
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    rule = (config.get("meta") or {}).get("rule")
    return json.dumps([config["type"], kwargs, rule], sort_keys=True, default=str)


def _merge_chunks(chunks: list[dict]) -> dict:
    """One GX result from the results of the same suite on the parts of one batch.

    Counts are summed, the row count too (and judged again); the listed rows are kept in line
    order (the parts of series buckets are not in file order), the first 20 as GX lists them.
    """
    import copy

    merged = copy.deepcopy(chunks[0])
    by_key = {_key(r["expectation_config"]): r for r in merged["results"]}
    for chunk in chunks[1:]:
        for result in chunk["results"]:
            into = by_key[_key(result["expectation_config"])]
            into["success"] = bool(into["success"] and result["success"])
            body, more = into.setdefault("result", {}), result.get("result") or {}
            for count in ("element_count", "unexpected_count", "missing_count"):
                if count in more:
                    body[count] = int(body.get(count) or 0) + int(more[count])
            for listed in ("partial_unexpected_list", "partial_unexpected_index_list"):
                if more.get(listed):
                    body[listed] = (body.get(listed) or []) + more[listed]
            if result["expectation_config"]["type"] == "expect_table_row_count_to_be_between":
                body["observed_value"] = int(body.get("observed_value") or 0) + int(more["observed_value"])
                bounds = result["expectation_config"]["kwargs"]
                low, high = bounds.get("min_value"), bounds.get("max_value")
                into["success"] = (low is None or body["observed_value"] >= low) and (
                    high is None or body["observed_value"] <= high
                )
            if not (into.get("exception_info") or {}).get("raised_exception"):
                into["exception_info"] = result.get("exception_info", into.get("exception_info"))
    kept = _RESULT_FORMAT["partial_unexpected_count"]
    for result in merged["results"]:
        body = result.get("result") or {}
        values, index = body.get("partial_unexpected_list"), body.get("partial_unexpected_index_list")
        if index and all(isinstance(item, dict) and ROW in item for item in index):
            order = sorted(range(len(index)), key=lambda i: index[i][ROW])
            body["partial_unexpected_index_list"] = [index[i] for i in order][:kept]
            if values is not None and len(values) == len(index):
                body["partial_unexpected_list"] = [values[i] for i in order][:kept]
        for listed in ("partial_unexpected_list", "partial_unexpected_index_list"):
            if listed in body:
                body[listed] = body[listed][:kept]
        body.pop("partial_unexpected_counts", None)  # per chunk only; the index list says where
        if "unexpected_count" in body and body.get("element_count"):
            nonmissing = body["element_count"] - int(body.get("missing_count") or 0)
            body["unexpected_percent"] = 100.0 * body["unexpected_count"] / body["element_count"]
            body["unexpected_percent_total"] = body["unexpected_percent"]
            if nonmissing:
                body["unexpected_percent_nonmissing"] = 100.0 * body["unexpected_count"] / nonmissing
        if "missing_count" in body and body.get("element_count"):
            body["missing_percent"] = 100.0 * body["missing_count"] / body["element_count"]
    return merged


def _combine(runs: list[dict], *, order: list[str], name: str) -> dict:
    """The runs' results as one GX result, in the suite's order, with its statistics recounted."""
    combined = dict(runs[-1])
    if "suite_name" in combined:
        combined["suite_name"] = name
    rank = {key: i for i, key in enumerate(order)}
    results = sorted(
        (r for run in runs for r in run["results"]),
        key=lambda r: rank.get(_key(r["expectation_config"]), len(rank)),
    )
    passed = sum(1 for r in results if r["success"])
    combined["results"] = results
    combined["success"] = passed == len(results)
    combined["statistics"] = {
        **(combined.get("statistics") or {}),
        "evaluated_expectations": len(results),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(results) - passed,
        "success_percent": 100.0 * passed / len(results) if results else None,
    }
    return combined


# ---- GX result -> outcomes --------------------------------------------------------------------


def _outcome(result: dict, evidence: _Evidence) -> ExpectationOutcome:
    config = result["expectation_config"]
    kwargs, meta = config.get("kwargs", {}), config.get("meta") or {}
    column = kwargs.get("column") or (", ".join(kwargs["column_list"]) if "column_list" in kwargs else None)
    body = result.get("result") or {}
    success = bool(result.get("success"))
    rule = meta.get("rule", config["type"])
    exception = (result.get("exception_info") or {}).get("exception_message")
    examples = [] if success else _examples(body, evidence, column=kwargs.get("column"), rule=rule)
    return ExpectationOutcome(
        expectation=config["type"],
        column=column,
        severity=meta.get("severity", "error"),
        success=success,
        policy=meta.get("policy", ""),
        unexpected_count=int(body.get("unexpected_count") or 0),
        examples=examples,
        rule=rule,
        detail="" if success else _detail(rule, body, evidence, exception),
    )


def _examples(body: dict, evidence: _Evidence, *, column: str | None, rule: str) -> list[dict]:
    listed = body.get("partial_unexpected_index_list") or []
    rows = [item[ROW] for item in listed if isinstance(item, dict) and ROW in item][:EXAMPLES_KEPT]
    if rule == "key_unique" and rows:
        rows = [row for _, row in evidence.repeated]  # GX lists rows in file order; show pairs
    if not rows:
        return []
    frame = evidence.frame
    position = pd.Series(frame.index, index=frame[ROW]).groupby(level=0).first()
    examples = []
    for row in rows:
        i = position.get(row)
        if i is None:
            continue
        record = frame.loc[i]
        example: dict[str, Any] = {ROW: int(row)}
        if "series_id" in frame:
            example["series_id"] = record["series_id"]
        for name, raw in (("timestamp", TIMESTAMP_RAW), ("value", VALUE_RAW)):
            if raw in frame:
                example[name] = record[raw]
        if rule == "timestamp_parseable":
            example["problem"] = describe_timestamp(record.get(TIMESTAMP_RAW))
        elif column == STEP or column == TOLERATED_STEP:
            steps = int(record[STEP])
            example["problem"] = f"{steps - 1} step(s) missing before it"
        elif column == GRID_OFFSET:
            example["problem"] = f"{record[GRID_OFFSET]:.3g} of a step off the series' grid"
        elif column == HISTORY_EXCESS:
            example["problem"] = f"{record[HISTORY_EXCESS]:.3g} times the series' published range outside it"
        elif column and column not in REQUIRED_COLUMNS:
            example[column] = record.get(raw_column(column), record.get(column))
        examples.append(json_safe(example))
    return examples


def _detail(rule: str, body: dict, evidence: _Evidence, exception: str | None) -> str:
    if exception:
        return f"GX could not evaluate it: {exception}"
    if rule == "schema":
        mismatched = (body.get("details") or {}).get("mismatched") or {}
        missing = mismatched.get("missing") or []
        observed = [c for c in body.get("observed_value") or [] if not str(c).startswith("_")]
        extra = [c for c in observed if c not in REQUIRED_COLUMNS]
        hint = f"; extra columns {', '.join(map(repr, extra))} (renamed?)" if extra else ""
        return f"missing {', '.join(missing)}; found {', '.join(map(repr, observed)) or 'no columns'}{hint}"
    if rule == "row_count":
        return f"{body.get('observed_value', 0)} data rows"
    if "observed_value" in body and "unexpected_count" not in body:
        return f"observed {body['observed_value']}"
    count, total = int(body.get("unexpected_count") or 0), int(body.get("element_count") or evidence.rows)
    detail = f"{count} of {total} rows"
    if rule == "key_unique":
        keys, conflicting = evidence.keys, evidence.conflicting
        detail += (
            f"; {keys} key(s) repeated: {keys - conflicting} identical, {conflicting} with conflicting values"
        )
    return detail


def _repeated_keys(frame: pd.DataFrame) -> tuple[list[tuple[int, int]], int, int]:
    """Rows whose key repeats: the first :data:`EXAMPLES_KEPT` as (first line of the key, line),
    grouped by key, keys in order of first line; how many keys repeat; how many of those conflict."""
    keyed = frame[frame["series_id"].notna() & frame["timestamp"].notna()]
    repeated = keyed[keyed.duplicated(["series_id", "timestamp"], keep=False)]
    if repeated.empty:
        return [], 0, 0
    groups = repeated.groupby(["series_id", "timestamp"], sort=False)
    first = groups[ROW].transform("min")
    ordered = repeated.assign(_first=first).sort_values(["_first", ROW]).head(EXAMPLES_KEPT)
    pairs = list(zip(ordered["_first"].astype(int), ordered[ROW].astype(int), strict=True))
    data = [c for c in ("value", *covariate_columns(frame)) if c in repeated]
    conflicting = int((groups[data].nunique(dropna=False) > 1).any(axis=1).sum()) if data else 0
    return pairs, groups.ngroups, conflicting


def _gaps(frame: pd.DataFrame, spec: DatasetSpec) -> list[dict]:
    """Each missing stretch inside a series: where, how many steps, and its severity."""
    if STEP not in frame:
        return []
    gapped = frame[frame[STEP] >= 2].sort_values(["series_id", "timestamp"])
    step = pd.Timedelta(spec.step)
    gaps = []
    head = gapped.head(GAPS_KEPT)
    for sid, ts, steps, row in zip(head["series_id"], head["timestamp"], head[STEP], head[ROW], strict=True):
        gaps.append(
            {
                "series_id": sid,
                "after": (ts - int(steps) * step).isoformat(),
                "before": ts.isoformat(),
                "missing_steps": int(steps) - 1,
                "severity": "warning" if int(steps) - 1 <= spec.max_gap_steps else "error",
                ROW: int(row),
            }
        )
    return gaps


def result_json(result: ValidationResult) -> str:
    """``result`` as strict JSON text (GX result included)."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False)
