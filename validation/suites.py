"""The Great Expectations suite of one batch, in code: one expectation per rule of the dirt policy.

Every expectation carries ``meta={"rule", "severity", "policy"}``: a stable rule id, ``"error"``
(the batch is rejected) or ``"warning"`` (reported, accepted), and the rule in one line. GX's own
``severity`` field mirrors it (``critical``/``warning``) so GX's renderers agree.

GX checks columns, not groups, so the per-series time checks run on columns derived here
(:func:`derive_columns`):

* ``_grid_offset``: how far (in steps) a timestamp sits off its series' grid. The grid is the
  series' most common phase modulo the step, so a zone with a 30-minute offset is still regular.
* ``_step``: steps since the previous on-grid timestamp of the same series (NaN for a series'
  first row, off-grid rows and repeated keys). ``_step = k`` means ``k - 1`` missing observations.
* ``_tolerated_step``: ``_step`` where the gap is short enough to be only a warning.

GX is imported inside the functions: DAG files and the CLI import this module.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqops.core.canonical import REQUIRED_COLUMNS, ROW, covariate_columns, raw_column
from seqops.core.datasets import DatasetSpec

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite

GRID_OFFSET = "_grid_offset"
STEP = "_step"
TOLERATED_STEP = "_tolerated_step"
SERIES_ID_CANONICAL = "_series_id_canonical"
NUMBERS_EXACT = "_numbers_exact"
#: derived column -> the batch column a person should look at
HISTORY_EXCESS = "_history_excess"  # distance outside the series' published [min, max], in ranges
DERIVED_COLUMNS = {
    HISTORY_EXCESS: "value",
    GRID_OFFSET: "timestamp",
    STEP: "timestamp",
    TOLERATED_STEP: "timestamp",
    SERIES_ID_CANONICAL: "series_id",
    NUMBERS_EXACT: "value",
}
#: the identity rule for series ids (see :func:`series_id_problem`)
MAX_SERIES_ID_CHARS = 200
# a number written with an exponent and a non-zero mantissa: parsing it to 0.0 lost it (underflow)
_NONZERO_EXPONENT = re.compile(r"\s*[+-]?(?:\d*[1-9]\d*(?:\.\d*)?|\d*\.\d*[1-9]\d*)[eE][+-]?\d+\s*")

# Every rule, in the order reports list them.
RULES = (
    "schema",
    "row_count",
    "timestamp_type",
    "value_type",
    "series_id_present",
    "series_id_not_blank",
    "series_id_canonical",
    "timestamp_parseable",
    "key_unique",
    "value_present",
    "value_finite",
    "number_representable",
    "value_plausible",
    "value_in_history",
    "covariate_present",
    "covariate_type",
    "covariate_finite",
    "timestamp_in_interval",
    "timestamp_not_future",
    "on_grid",
    "gap_too_long",
    "short_gap",
    "known_series",
)

_FLOAT_MAX = float(np.finfo("float64").max)
_GX_SEVERITY = {"error": "critical", "warning": "warning"}


def import_gx() -> Any:
    """``great_expectations``, imported quietly (its INFO logging floods Airflow task logs)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx


def series_id_problem(series_id: object) -> str | None:
    """Why ``series_id`` is not a canonical identity, or None.

    The rule: text as given is the identity, so it must not hide a second spelling of itself:
    no leading or trailing whitespace (" lead" would split from "lead"), Unicode NFC (an NFD "é"
    would split from the NFC one), no control characters, at most 200 characters.
    """
    if not isinstance(series_id, str) or not series_id.strip():
        return None  # missing and blank ids have their own rules
    if series_id != series_id.strip():
        return "leading or trailing whitespace"
    if not unicodedata.is_normalized("NFC", series_id):
        return "not Unicode NFC (normalize it: the same name in NFD would be another series)"
    if any(unicodedata.category(ch).startswith("C") for ch in series_id):
        return "control or invisible format characters"
    if len(series_id) > MAX_SERIES_ID_CHARS:
        return f"longer than {MAX_SERIES_ID_CHARS} characters"
    return None


def _lost_to_underflow(parsed: pd.Series, raw: pd.Series) -> pd.Series:
    """True where a non-zero number written with an exponent parsed to 0.0 (e.g. 1e-400)."""
    zero = parsed.eq(0.0).fillna(False).to_numpy(dtype=bool)
    lost = np.zeros(len(parsed), dtype=bool)
    if zero.any():
        text = raw[zero].map(lambda v: isinstance(v, str) and bool(_NONZERO_EXPONENT.fullmatch(v)))
        lost[zero] = text.to_numpy(dtype=bool)
    return pd.Series(lost, index=parsed.index)


def derive_columns(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """``frame`` (a :func:`seqops.core.canonical.coerce` output) plus the per-series time columns.

    Args:
        frame: the typed batch; left unchanged.
        spec: gives the step (``spec.freq``) and the gap tolerance (``spec.max_gap_steps``).

    Returns:
        A copy with a 0..n-1 index, ``_row`` (added as index + 1 if absent) and, when
        ``series_id`` and ``timestamp`` exist, ``_grid_offset``, ``_step`` and ``_tolerated_step``.
    """
    out = frame.reset_index(drop=True)  # a new frame: the columns added below never reach ``frame``
    if ROW not in out:
        out[ROW] = np.arange(1, len(out) + 1, dtype="int64")
    if "series_id" in out:
        problems = {s: series_id_problem(s) for s in out["series_id"].dropna().unique()}
        canonical = out["series_id"].map(lambda s: None if s is None else float(problems.get(s) is None))
        out[SERIES_ID_CANONICAL] = canonical.astype("float64")
    if "value" in out:
        lost = np.zeros(len(out), dtype=bool)
        for name in ("value", *covariate_columns(out)):
            raw_name = raw_column(name)
            if name in out and raw_name in out:
                lost |= _lost_to_underflow(out[name], out[raw_name]).to_numpy()
        out[NUMBERS_EXACT] = np.where(lost, 0.0, 1.0)
    if "series_id" not in out or "timestamp" not in out:
        return out
    step_ns = int(pd.Timedelta(spec.step).value)
    if step_ns <= 0:
        raise ValueError(f"dataset {spec.name}: freq {spec.freq!r} is not a positive fixed step")
    ts = pd.to_datetime(out["timestamp"], utc=True, errors="coerce")
    valid = ts.notna() & out["series_id"].notna()
    sid = out.loc[valid, "series_id"]
    ns = ts[valid].astype("int64")  # UTC nanoseconds since the epoch

    # Off-grid: phase (ns modulo step) differs from the series' most common phase.
    phase = pd.DataFrame({"sid": sid, "phase": np.mod(ns, step_ns)})
    counts = phase.groupby(["sid", "phase"], sort=False).size().reset_index(name="n")
    modal = counts.sort_values(["sid", "n", "phase"], ascending=[True, False, True]).drop_duplicates("sid")
    anchor = phase["sid"].map(modal.set_index("sid")["phase"])
    offset = np.mod(phase["phase"] - anchor, step_ns) / step_ns
    out[GRID_OFFSET] = offset.reindex(out.index).astype("float64")

    # Steps between consecutive distinct on-grid timestamps of each series.
    on = pd.DataFrame({"sid": sid, "ns": ns})[offset == 0]
    on = on.sort_values(["sid", "ns"], kind="stable")
    on = on[~on.duplicated(["sid", "ns"])]
    steps = on.groupby("sid", sort=False)["ns"].diff() / step_ns
    out[STEP] = steps.reindex(out.index).astype("float64")
    out[TOLERATED_STEP] = out[STEP].where(out[STEP] <= spec.max_gap_steps + 1)
    return out


def _utc(moment: datetime | None, what: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {moment.isoformat()})")
    return moment.astimezone(UTC)


def build_suite(
    spec: DatasetSpec,
    *,
    interval: tuple[datetime | None, datetime | None] | None = None,
    known_series: Collection[str] | None = None,
    history: Mapping[str, tuple[float, float]] | None = None,
    now: datetime | None = None,
    covariates: Iterable[str] = (),
    columns: Collection[str] | None = None,
) -> ExpectationSuite:
    """The expectation suite a batch of ``spec``'s dataset must meet.

    Args:
        spec: the dataset's policy (step, plausibility range, gap tolerance, new-series rule).
        interval: the batch's declared ``[start, end)``; either bound may be None. Zone-aware.
        known_series: series the dataset already has; None skips the unknown-series check.
        history: each published series' (min, max); None or empty skips the history rule.
        now: timestamps after it are in the future; default the current time. Zone-aware.
        covariates: extra numeric columns of this batch.
        columns: the batch's columns; when given, expectations on absent columns are left out
            (the schema expectation reports the absence). Leave None to get every expectation.

    Returns:
        An unsaved ``ExpectationSuite`` named ``seqops.<dataset>``.
    """
    gx = import_gx()
    gxe = gx.expectations
    now = _utc(now, "now") or datetime.now(UTC)
    start, end = (None, None) if interval is None else interval
    start, end = _utc(start, "interval start"), _utc(end, "interval end")
    covariates = list(covariates)
    have = None if columns is None else set(columns)
    expectations: list[Any] = []

    def add(expectation_cls: Any, rule: str, severity: str, policy: str, **kwargs: Any) -> None:
        needed = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", []))
        if have is not None and not set(needed) <= have:
            return
        meta = {"rule": rule, "severity": severity, "policy": policy}
        expectations.append(expectation_cls(meta=meta, severity=_GX_SEVERITY[severity], **kwargs))

    # Schema and types.
    add(
        gxe.ExpectTableColumnsToMatchSet,
        "schema",
        "error",
        "a batch has the columns series_id, timestamp and value; extra columns are numeric covariates",
        column_set=list(REQUIRED_COLUMNS),
        exact_match=False,
    )
    add(
        gxe.ExpectColumnValuesToBeOfType,
        "timestamp_type",
        "error",
        "timestamp is typed as a zone-aware datetime (the output of seqops.core.canonical.coerce)",
        column="timestamp",
        type_="Timestamp",
    )
    add(
        gxe.ExpectColumnValuesToBeOfType,
        "value_type",
        "error",
        "value is typed float64",
        column="value",
        type_="float64",
    )
    add(
        gxe.ExpectTableRowCountToBeBetween,
        "row_count",
        "error",
        "a batch has at least one data row",
        min_value=1,
    )
    # Keys.
    add(
        gxe.ExpectColumnValuesToNotBeNull,
        "series_id_present",
        "error",
        "every row names its series (series_id is not null)",
        column="series_id",
    )
    add(
        gxe.ExpectColumnValuesToMatchRegex,
        "series_id_not_blank",
        "error",
        "series_id is non-blank text",
        column="series_id",
        regex=r"\S",
    )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "series_id_canonical",
        "error",
        "series_id is its own only spelling: no leading/trailing whitespace, Unicode NFC, no control "
        f"characters, at most {MAX_SERIES_ID_CHARS} characters",
        column=SERIES_ID_CANONICAL,
        min_value=1.0,
        max_value=1.0,
    )
    add(
        gxe.ExpectColumnValuesToNotBeNull,
        "timestamp_parseable",
        "error",
        "timestamp is ISO 8601 with a UTC offset or Z (e.g. 2014-01-01T05:00:00Z); "
        "naive, non-ISO and impossible dates are rejected",
        column="timestamp",
    )
    add(
        gxe.ExpectCompoundColumnsToBeUnique,
        "key_unique",
        "error",
        "one row per (series_id, timestamp) in a batch: identical and conflicting duplicates are "
        "both rejected",
        column_list=["series_id", "timestamp"],
        ignore_row_if="any_value_is_missing",  # unparseable keys are reported by their own rules
    )
    # Values.
    add(
        gxe.ExpectColumnValuesToNotBeNull,
        "value_present",
        "error",
        "value is a number: empty, NaN and text cells are rejected (a missing observation is a missing row)",
        column="value",
    )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "value_finite",
        "error",
        "value is finite (inf and -inf are rejected)",
        column="value",
        min_value=-_FLOAT_MAX,
        max_value=_FLOAT_MAX,
    )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "number_representable",
        "error",
        "every number keeps its value as float64 (a non-zero number like 1e-400 would become 0)",
        column=NUMBERS_EXACT,
        min_value=1.0,
        max_value=1.0,
    )
    if spec.value_min is not None or spec.value_max is not None:
        low = "-inf" if spec.value_min is None else f"{spec.value_min:g}"
        high = "inf" if spec.value_max is None else f"{spec.value_max:g}"
        add(
            gxe.ExpectColumnValuesToBeBetween,
            "value_plausible",
            "error",
            f"value lies in the plausible range [{low}, {high}] of dataset {spec.name}",
            column="value",
            min_value=spec.value_min,
            max_value=spec.value_max,
        )
    if history and spec.history_outlier_ranges is not None:
        k = spec.history_outlier_ranges
        add(
            gxe.ExpectColumnValuesToBeBetween,
            "value_in_history",
            "error",
            f"value lies within {k:g}x its series' published range beyond that range (a value far "
            "outside a series' own history is rejected: a typo, a unit or scale change)",
            column=HISTORY_EXCESS,
            max_value=k,
        )
    for name in covariates:
        add(
            gxe.ExpectColumnValuesToNotBeNull,
            "covariate_present",
            "error",
            f"covariate {name} is a number in every row (empty and text cells are rejected)",
            column=name,
        )
        add(
            gxe.ExpectColumnValuesToBeOfType,
            "covariate_type",
            "error",
            f"covariate {name} is typed float64",
            column=name,
            type_="float64",
        )
        add(
            gxe.ExpectColumnValuesToBeBetween,
            "covariate_finite",
            "error",
            f"covariate {name} is finite (inf and -inf are rejected)",
            column=name,
            min_value=-_FLOAT_MAX,
            max_value=_FLOAT_MAX,
        )
    # Time.
    if start is not None or end is not None:
        add(
            gxe.ExpectColumnValuesToBeBetween,
            "timestamp_in_interval",
            "error",
            "timestamps lie inside the batch interval "
            f"[{start.isoformat() if start else '-inf'}, {end.isoformat() if end else 'inf'})",
            column="timestamp",
            min_value=start,
            max_value=end,
            strict_max=end is not None,
        )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "timestamp_not_future",
        "error",
        f"no timestamp is in the future (after {now.isoformat(timespec='seconds')})",
        column="timestamp",
        max_value=now,
    )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "on_grid",
        "error",
        f"timestamps sit on their series' {spec.freq} grid (a whole number of steps apart)",
        column=GRID_OFFSET,
        min_value=0.0,
        max_value=0.0,
    )
    add(
        gxe.ExpectColumnValuesToBeBetween,
        "gap_too_long",
        "error",
        f"a series misses at most {spec.max_gap_steps} consecutive steps ({spec.freq} each); "
        "longer gaps are rejected",
        column=STEP,
        min_value=1.0,
        max_value=float(spec.max_gap_steps + 1),
    )
    if spec.max_gap_steps > 0:
        add(
            gxe.ExpectColumnValuesToBeBetween,
            "short_gap",
            "warning",
            f"short gap, reported: a series misses 1 to {spec.max_gap_steps} consecutive steps",
            column=TOLERATED_STEP,
            min_value=1.0,
            max_value=1.0,
        )
    if known_series is not None:
        severity = "warning" if spec.allow_new_series else "error"
        verdict = "reported" if spec.allow_new_series else "rejected (allow_new_series = false)"
        add(
            gxe.ExpectColumnValuesToBeInSet,
            "known_series",
            severity,
            f"series_id names a series dataset {spec.name} already has; new series are {verdict}",
            column="series_id",
            value_set=sorted(known_series),
        )
    # Built whole: ``add_expectation`` on an unsaved suite needs a live data context.
    return gx.ExpectationSuite(name=f"seqops.{spec.name}", expectations=expectations)


def history_excess(frame: pd.DataFrame, history: Mapping[str, tuple[float, float]]) -> pd.Series:
    """How far each value lies outside its series' published [min, max], in multiples of that range
    (0 inside; NaN for a series with no history or no parsed value)."""
    ids = frame["series_id"].astype("string") if "series_id" in frame else pd.Series(dtype="string")
    low = ids.map({k: v[0] for k, v in history.items()}).astype("float64")
    high = ids.map({k: v[1] for k, v in history.items()}).astype("float64")
    value = pd.to_numeric(frame.get("value"), errors="coerce").astype("float64")
    span = (high - low).where(high > low, np.maximum(np.abs(high), 1.0))  # a flat series: its level
    outside = np.maximum(value - high, low - value).clip(lower=0.0)
    return outside / span
