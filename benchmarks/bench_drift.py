"""Drift detection: how often it cries wolf, how fast it sees a real shift, and what it costs, beside
plain Evidently presets on the same data, in one run.

    .venv/bin/python benchmarks/bench_drift.py [--out benchmarks/results/drift.json] [--quick]

1. **False alarms** on real PJM load (7 zones): every week from 2016-01-04 to 2018-06-25 (130
   stable weeks: nothing was injected), each judged against the same season of the two years
   before it, as `monitor_drift` judges a champion trained on two years. Counted: weeks with any
   alarm, and series-weeks flagged, beside the configured false-discovery rate (5%).
2. **Retrain requests in a stable year**: daily checks through 2017 with the decision rules
   (drift seen for 24 h of data, a 72-hour cooldown); how many retrains stable data would request.
3. **Detection delay**: from 26 start dates (every 28 days, 2016-2017), two zones (AEP, DUQ) move
   by +20/+30/+40/+50% from that hour on; daily checks of the trailing week; the first day on which
   both are flagged (cap 14 days).
4. **Speed** for 1,000 series x one week of hourly data (synthetic load-like series: daily and
   weekly cycles, shared weather, noise; 14 reference weeks = 2.35M reference rows): seqops' check
   computation (alignment, per-series level and error tests with FDR, the pinned Evidently columns,
   the figure and the summary page) beside Evidently's DataDriftPreset on the series as 1,000
   columns, and beside its RegressionPreset on the errors (its slow path on a continuous target).
   The check's store read and MLflow logging are not in this figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
STEP = timedelta(hours=1)
WEEK = timedelta(days=7)


def say(message: str) -> None:
    print(message, flush=True)


def pjm_frame() -> tuple[pd.DataFrame, list[str]]:
    from seqops.core.importers import ImportReport, pjm_files, read_pjm_zone
    from seqops.core.resources import demo_dir

    frames = [read_pjm_zone(f, ImportReport(source=str(f))) for f in pjm_files(demo_dir())]
    frame = pd.concat(frames, ignore_index=True)
    return frame, sorted(frame["series_id"].unique())


def judge(frame, ids, start, ref_start, ref_end, scale=None, shift_from=None):
    from seqops.monitoring.statistics import aligned, level_shift, reference_periods

    periods = reference_periods(start, start + WEEK, ref_start, ref_end)
    ref = aligned(frame, periods.reference, ids, STEP)
    cur = aligned(frame, [periods.current], ids, STEP)[0]
    if scale:
        stamps = pd.date_range(start, periods=cur.shape[1], freq=STEP)
        after = np.asarray(stamps >= shift_from)
        for sid, factor in scale.items():
            cur[ids.index(sid), after] *= factor
    return level_shift(ref, cur, ids)


def false_alarms(frame, ids, weeks) -> dict:
    alarms, flagged, tested, which = 0, 0, 0, []
    for week in weeks:
        result = judge(frame, ids, week, week - 2 * 52 * WEEK - 4 * WEEK, week)
        alarms += result.any_drift
        flagged += int(result.drifted.sum())
        tested += int(np.isfinite(result.p_value).sum())
        if result.any_drift:
            which.append({"week": f"{week:%Y-%m-%d}", "series": result.drifted_series})
    return {
        "weeks": len(weeks),
        "weeks_with_an_alarm": alarms,
        "share_of_weeks": alarms / len(weeks),
        "series_weeks_flagged": flagged,
        "series_weeks_tested": tested,
        "configured_fdr": 0.05,
        "alarms": which,
    }


def retrain_requests(frame, ids, days) -> dict:
    from seqops.core.settings import Settings
    from seqops.flows.drift import decide

    settings = Settings(drift_persist_hours=24, drift_cooldown_hours=72)
    history: list[dict] = []
    requests, drifted_checks = [], 0
    for end in days:
        start = end - WEEK
        result = judge(frame, ids, start, start - 2 * 52 * WEEK - 4 * WEEK, start)
        drifted_checks += result.any_drift
        decision, _ = decide(settings, drifted_now=result.any_drift, as_of=end, history=history, pending=None)
        history.append(
            {
                "seqops.as_of": end.isoformat(),
                "seqops.drifted": str(result.any_drift).lower(),
                "seqops.retrain_requested": str(decision == "retrain").lower(),
            }
        )
        if decision == "retrain":
            requests.append(f"{end:%Y-%m-%d}")
    return {"daily_checks": len(days), "checks_with_drift": drifted_checks, "retrain_requests": requests}


def detection(frame, ids, starts, sizes, zones=("AEP", "DUQ"), cap=14) -> dict:
    out = {}
    for size in sizes:
        delays = []
        for shift_at in starts:
            first = None
            for day in range(1, cap + 1):
                end = shift_at + timedelta(days=day)
                result = judge(
                    frame,
                    ids,
                    end - WEEK,
                    shift_at - 2 * 52 * WEEK - 4 * WEEK,
                    shift_at,
                    scale=dict.fromkeys(zones, 1 + size),
                    shift_from=shift_at,
                )
                if set(zones) <= set(result.drifted_series):
                    first = day
                    break
            delays.append(first)
        caught = [d for d in delays if d is not None]
        out[f"+{size:.0%}"] = {
            "trials": len(delays),
            "caught_within_3_days": sum(d <= 3 for d in caught) / len(delays),
            "caught_within_7_days": sum(d <= 7 for d in caught) / len(delays),
            "caught_within_14_days": len(caught) / len(delays),
            "median_days_when_caught": float(np.median(caught)) if caught else None,
        }
        say(f"  +{size:.0%}: {out[f'+{size:.0%}']}")
    return out


def synthetic(series: int, weeks: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``[weeks, series, 168]`` reference and ``[series, 168]`` current load-like values."""
    rng = np.random.default_rng(seed)
    hours = np.arange(168)
    shape = 1 + 0.25 * np.sin(2 * np.pi * (hours % 24 - 8) / 24) - 0.1 * (hours // 24 >= 5)
    level = rng.uniform(500, 20_000, size=(1, series, 1))
    weather = rng.normal(0, 0.05, size=(weeks + 1, 1, 1))
    noise = rng.normal(0, 0.03, size=(weeks + 1, series, 168))
    values = level * shape[None, None, :] * (1 + weather + noise)
    return values[:-1], values[-1]


def speed(series: int = 1000, weeks: int = 14) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, RegressionPreset

    from seqops.flows.drift import summary_html
    from seqops.monitoring.drift import column_drift, pooled_frames
    from seqops.monitoring.plots import plot_level_check
    from seqops.monitoring.statistics import error_increase, level_shift

    ref, cur = synthetic(series, weeks)
    ids = [f"S{i:04d}" for i in range(series)]
    rng = np.random.default_rng(1)
    live_err = np.abs(rng.normal(0.06, 0.02, size=(series, 7)))
    bt_err = np.abs(rng.normal(0.06, 0.02, size=(series, 4)))
    start = pd.Timestamp("2018-07-02", tz="UTC")
    # the same long frame the check aligns from the curated store
    stamps = pd.date_range(start - weeks * WEEK, periods=(weeks + 1) * 168, freq=STEP)
    long = pd.DataFrame(
        {
            "series_id": np.repeat(ids, len(stamps)),
            "timestamp": np.tile(stamps, series),
            "value": np.concatenate([np.vstack([*ref[:, i, :], cur[i]]).ravel() for i in range(series)]),
        }
    )
    periods = [(start - k * WEEK, start - (k - 1) * WEEK) for k in range(weeks, 0, -1)]

    t0 = time.perf_counter()
    from seqops.monitoring.statistics import aligned

    r = aligned(long, periods, ids, STEP)
    c = aligned(long, [(start, start + WEEK)], ids, STEP)[0]
    t_align = time.perf_counter() - t0
    t1 = time.perf_counter()
    level = level_shift(r, c, ids)
    errors = error_increase(live_err, bt_err, ids)
    t_stats = time.perf_counter() - t1
    t2 = time.perf_counter()
    pooled_current, pooled_reference = pooled_frames(r, c, {"error": (live_err.ravel(), bt_err.ravel())})
    pinned = dict.fromkeys(pooled_current.columns, ("wasserstein", 0.1))
    report = column_drift(pooled_current, pooled_reference, pinned, name="bench")
    t_evidently = time.perf_counter() - t2
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_level_check(
            r,
            c,
            ids,
            level.table()["series_id"].head(6),
            pd.date_range(start, periods=168, freq=STEP),
            Path(tmp) / "p.png",
        )
        report.save_html(Path(tmp) / "evidently.html")
        result = {
            "dataset": "bench",
            "check_id": "x",
            "headline": "bench",
            "reference": "bench",
            "champion_version": "1",
            "columns": [col.line() for col in report.columns],
            "drifted": False,
        }
        summary_html(result, {"input": level.table(), "error": errors.table()}, png)
    t_write = time.perf_counter() - t3
    ours = time.perf_counter() - t0
    say(
        f"  seqops check computation: {ours:.1f} s (align {t_align:.1f}, tests {t_stats:.2f}, "
        f"Evidently columns {t_evidently:.1f}, figure+HTML {t_write:.1f})"
    )

    # Evidently presets on the same data: every series a column (what one would write first)
    wide_ref = pd.DataFrame(r.transpose(0, 2, 1).reshape(-1, series), columns=ids)
    wide_cur = pd.DataFrame(c.T, columns=ids)
    definition = DataDefinition(numerical_columns=ids)
    t4 = time.perf_counter()
    Report([DataDriftPreset()]).run(
        Dataset.from_pandas(wide_cur, data_definition=definition),
        Dataset.from_pandas(wide_ref, data_definition=definition),
    )
    preset = time.perf_counter() - t4
    say(f"  Evidently DataDriftPreset, {series} series as columns: {preset:.1f} s")
    # RegressionPreset on forecasts vs actuals (one row per forecast step, as the log holds them)
    from evidently import Regression

    reg_rows = 168 * series
    actual = c.ravel()
    forecast = actual * (1 + rng.normal(0, 0.05, size=actual.size))
    reg_cur = pd.DataFrame({"target": actual, "prediction": forecast})
    reg_ref = pd.DataFrame(
        {"target": r[-1].ravel(), "prediction": r[-1].ravel() * (1 + rng.normal(0, 0.05, size=actual.size))}
    )
    reg_def = DataDefinition(
        numerical_columns=["target", "prediction"],
        regression=[Regression(target="target", prediction="prediction")],
    )
    t5 = time.perf_counter()
    Report([RegressionPreset()]).run(
        Dataset.from_pandas(reg_cur, data_definition=reg_def),
        Dataset.from_pandas(reg_ref, data_definition=reg_def),
    )
    regression = time.perf_counter() - t5
    say(f"  Evidently RegressionPreset, {reg_rows:,} forecast steps: {regression:.1f} s")
    return {
        "series": series,
        "reference_weeks": weeks,
        "reference_rows": int(r.size),
        "current_rows": int(c.size),
        "seqops_check_seconds": ours,
        "seqops_parts_seconds": {
            "align": t_align,
            "per_series_tests": t_stats,
            "evidently_pinned_columns": t_evidently,
            "figure_and_html": t_write,
        },
        "evidently_data_drift_preset_seconds": preset,
        "evidently_regression_preset_seconds": regression,
        "preset_over_seqops": preset / ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "drift.json")
    parser.add_argument("--quick", action="store_true", help="fewer weeks and trials (a smoke run)")
    args = parser.parse_args()

    frame, ids = pjm_frame()
    quick = args.quick
    weeks = pd.date_range("2016-01-04", "2018-06-25", freq="7D" if not quick else "56D", tz="UTC")
    say(f"1. false alarms over {len(weeks)} stable weeks of PJM load ({len(ids)} zones)")
    fa = false_alarms(frame, ids, weeks)
    say(
        f"  {fa['weeks_with_an_alarm']} of {fa['weeks']} weeks ({fa['share_of_weeks']:.1%}) raised an alarm; "
        f"{fa['series_weeks_flagged']} of {fa['series_weeks_tested']} series-weeks flagged"
    )
    days = pd.date_range("2017-01-08", "2017-12-31", freq="1D" if not quick else "7D", tz="UTC")
    say(f"2. daily checks through 2017 ({len(days)}) with persistence 24 h and cooldown 72 h")
    rr = retrain_requests(frame, ids, days)
    say(
        f"  {rr['checks_with_drift']} checks saw drift; retrain requested on "
        f"{rr['retrain_requests'] or 'no day'}"
    )
    starts = pd.date_range("2016-01-04", "2017-12-25", freq="28D" if not quick else "112D", tz="UTC")
    say(f"3. detection delay: AEP and DUQ shifted from {len(starts)} start dates")
    det = detection(frame, ids, starts, (0.2, 0.3, 0.4, 0.5) if not quick else (0.4,))
    say("4. speed: 1,000 series x one week of hourly data")
    sp = speed()
    out = {
        "command": "python benchmarks/bench_drift.py" + (" --quick" if quick else ""),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}",
        "method": "per-series like-for-like level test (prediction-interval t over reference periods), "
        "Benjamini-Hochberg at 0.05, minimum effect 5%",
        "false_alarms": fa,
        "retrain_requests_2017": rr,
        "detection": det,
        "speed": sp,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
