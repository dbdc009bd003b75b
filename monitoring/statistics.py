"""Per-series drift statistics for all series at once: like-for-like tests with false-discovery control.

Kept here rather than run through Evidently once per series: a thousand series would be a thousand
reports (minutes), and Evidently's tests treat hourly values as independent draws, which load is not
(one warm afternoon gives 24 "significant" hours). Each series' current period is compared with
reference periods of the *same* length, aligned slot by slot (hour of week), taken from the same
season of earlier years where the reference reaches back that far; the spread of the statistic over
those reference periods is the null, so daily and weekly cycles and autocorrelation live in the null
and are not called drift. Everything is a numpy array over ``[period, series, slot]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

WEEK = timedelta(days=7)
YEAR = timedelta(days=364)  # 52 weeks: the same weekday a year earlier


class InsufficientReference(ValueError):
    """The reference holds too few periods to say what normal looks like."""


@dataclass(frozen=True)
class Periods:
    """The current period and the reference periods it is judged against (all ``[start, end)``)."""

    current: tuple[pd.Timestamp, pd.Timestamp]
    reference: list[tuple[pd.Timestamp, pd.Timestamp]]
    same_season: bool  # True: the same weeks of earlier years; False: the latest weeks before the end

    def describe(self) -> str:
        first, last = min(s for s, _ in self.reference), max(e for _, e in self.reference)
        kind = "the same season of earlier years" if self.same_season else "the most recent weeks"
        return f"{len(self.reference)} periods from {kind} ({first:%Y-%m-%d} to {last:%Y-%m-%d})"


def reference_periods(
    current_start: pd.Timestamp,
    current_end: pd.Timestamp,
    reference_start: pd.Timestamp,
    reference_end: pd.Timestamp,
    *,
    season_weeks: int = 3,
    max_years: int = 2,
    min_periods: int = 6,
    recent_periods: int = 8,
) -> Periods:
    """Choose reference periods as long as the current one, shifted by whole weeks (slots line up).

    Same season first: the current period shifted back by 52 weeks (times k up to ``max_years``),
    give or take ``season_weeks`` weeks, inside ``[reference_start, min(reference_end,
    current_start))``. When the reference does not reach back to ``min_periods`` of those, the
    latest ``recent_periods`` periods before its end are used instead (and a season change then
    shows up as drift, as it should: the model never saw that season).

    Raises:
        InsufficientReference: fewer than 3 periods fit.
    """
    length = current_end - current_start
    if length <= timedelta(0):
        raise ValueError(f"empty current period {current_start} .. {current_end}")
    end = min(reference_end, current_start)
    fits = lambda s: s >= reference_start and s + length <= end  # noqa: E731
    seasonal = []
    for years in range(1, max_years + 1):  # older years add trend more than they add evidence
        base = current_start - years * YEAR
        if base + length + season_weeks * WEEK < reference_start:
            break
        seasonal += [base + j * WEEK for j in range(-season_weeks, season_weeks + 1) if fits(base + j * WEEK)]
    if len(seasonal) >= min_periods:
        starts, same_season = sorted(seasonal), True
    else:
        stride = WEEK * max(1, -(-length // WEEK))  # whole weeks, at least the period's length
        starts, k = [], 1
        while len(starts) < recent_periods:
            start = current_start - k * stride
            if start < reference_start:
                break
            if fits(start):
                starts.append(start)
            k += 1
        starts, same_season = sorted(starts), False
    if len(starts) < 3:
        raise InsufficientReference(
            f"the reference {reference_start:%Y-%m-%d} .. {reference_end:%Y-%m-%d} holds {len(starts)} "
            f"period(s) of {length} before {current_start:%Y-%m-%d}; at least 3 are needed: widen the "
            "reference (train on more history) or shorten the check period"
        )
    return Periods((current_start, current_end), [(s, s + length) for s in starts], same_season)


def aligned(
    frame: pd.DataFrame,
    periods: list[tuple[pd.Timestamp, pd.Timestamp]],
    series_ids: list[str],
    step: timedelta,
) -> np.ndarray:
    """Values as ``[period, series, slot]`` (NaN where missing); slot ``t`` is ``start + t * step``."""
    import pandas as pd

    n_slots = int((periods[0][1] - periods[0][0]) / step)
    out = np.full((len(periods), len(series_ids), n_slots), np.nan)
    if frame.empty:
        return out
    codes = pd.Categorical(frame["series_id"].astype(str), categories=series_ids).codes
    ts = frame["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    values = frame["value"].to_numpy(dtype=np.float64)
    step_us = int(step / timedelta(microseconds=1))
    for p, (start, _) in enumerate(periods):
        offset = ts - pd.Timestamp(start).tz_convert("UTC").tz_localize(None).value // 1000
        slot = offset // step_us
        keep = (offset >= 0) & (offset % step_us == 0) & (slot < n_slots) & (codes >= 0)
        out[p, codes[keep], slot[keep]] = values[keep]
    return out


@dataclass(frozen=True)
class SeriesTest:
    """One test over all series; arrays are aligned with ``series_ids``.

    ``shift`` is current minus expected in the data's units and ``relative_shift`` that as a share of
    the expected level; ``p_value`` is NaN where a series could not be tested (``untested`` says why),
    and such series take no part in the false-discovery control.
    """

    name: str
    series_ids: list[str]
    current: np.ndarray
    expected: np.ndarray
    shift: np.ndarray
    relative_shift: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    drifted: np.ndarray
    alpha: float
    n_reference: np.ndarray
    untested: dict[str, str]
    common: CommonShift | None = None  # level tests over 3+ series: the move all series made together
    own_shift: np.ndarray | None = None  # level tests: the relative move beyond the common one

    @property
    def any_drift(self) -> bool:
        return bool(self.drifted.any() or (self.common is not None and self.common.drifted))

    @property
    def drifted_series(self) -> list[str]:
        return [s for s, d in zip(self.series_ids, self.drifted, strict=True) if d]

    def table(self) -> pd.DataFrame:
        """One row per series, the drifted first, then by q-value."""
        import pandas as pd

        out = pd.DataFrame(
            {
                "series_id": self.series_ids,
                "current": self.current,
                "expected": self.expected,
                "shift": self.shift,
                "relative_shift": self.relative_shift,
                **({"own_shift": self.own_shift} if self.own_shift is not None else {}),
                "statistic": self.statistic,
                "p_value": self.p_value,
                "q_value": self.q_value,
                "drifted": self.drifted,
                "n_reference": self.n_reference,
            }
        )
        return out.sort_values(["drifted", "q_value"], ascending=[False, True], kind="stable")


def _fdr(p_value: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg q-values over the tested series; NaN p-values stay NaN and never drift."""
    from scipy.stats import false_discovery_control

    q = np.full_like(p_value, np.nan)
    tested = ~np.isnan(p_value)
    if tested.any():
        q[tested] = false_discovery_control(p_value[tested], method="bh")
    return q, np.where(tested, q < alpha, False)


@dataclass(frozen=True)
class CommonShift:
    """The move all series made together (the cross-sectional median deviation), tested like one
    more series: in the same false-discovery family as the per-series tests."""

    statistic: float
    p_value: float
    q_value: float
    drifted: bool
    size: float  # the median series' deviation over the period, in reference standard deviations
    relative_shift: float  # the median series' shift as a share of its expected level


def _t_test(cur: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prediction-interval t-test of ``cur[...]`` as one new draw from ``ref[P, ...]``: t, p, n."""
    from scipy.stats import t as student_t

    n = np.sum(~np.isnan(ref), axis=0).astype(float)
    mean_ref = np.nanmean(ref, axis=0)
    sd_ref = np.nanstd(ref, axis=0, ddof=1)
    stat = (cur - mean_ref) / (sd_ref * np.sqrt(1.0 + 1.0 / n))
    return stat, 2.0 * student_t.sf(np.abs(stat), df=np.maximum(n - 1.0, 1.0)), n


def level_shift(
    reference: np.ndarray,
    current: np.ndarray,
    series_ids: list[str],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    min_coverage: float = 0.5,
    min_pooled: int = 20,
    name: str = "level",
) -> SeriesTest:
    """Has each series' level moved, against what its own reference periods would lead one to expect?

    Per series and slot, the expected value is the mean over the reference periods (the hour-of-week
    profile); deviations from it are put in units of the series' own reference spread. Each
    reference period gets the same deviations against the profile of the *other* periods (leave one
    out, exact: ``(x - mean) * n / (n - 1)``), so the reference says how far a normal period strays.

    Series that share weather stray together; with at least ``min_pooled`` series, the
    cross-sectional median deviation, slot by slot, is split off as the **common** move and tested
    once, and each series is tested on what is left (its own move). With fewer series the median is
    too fragile (on the seven PJM zones, two zones moving 25% dragged the median along and made the
    other five look moved; and 8.5% of stable weeks raised an alarm against 1.5% without the split),
    so each series is judged on its whole deviation. Each statistic is
    the mean over the period, judged as a new draw from its reference-period values: a
    prediction-interval t-test, ``t = (m - mean_ref) / (sd_ref * sqrt(1 + 1/n))`` on ``n - 1``
    degrees of freedom, two-sided. Benjamini-Hochberg over the series and the common move controls
    the false discoveries.

    Args:
        reference: ``[period, series, slot]`` values of the reference periods.
        current: ``[series, slot]`` values of the current period.
        series_ids: the series axis.
        alpha: the false-discovery rate.
        min_effect: the smallest move worth an alarm, as a share of the expected level (a
            significant 1% move of a thousand tightly measured series is not drift to act on).
        min_coverage: a series with fewer observed current slots than this share is not tested.
        min_pooled: the fewest series for which the common move is split off.
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: handled as untested below
        n_cell = np.sum(~np.isnan(reference), axis=0)  # [S, T]
        profile = np.nanmean(reference, axis=0)  # [P, S, T] -> [S, T]
        scale = np.nanstd(reference, axis=(0, 2))[:, None]  # [S, 1]: the series' reference spread
        loo = (reference - profile) * (n_cell / (n_cell - 1.0)) / scale  # vs the others' profile
        loo[:, n_cell < 2] = np.nan
        usable = ~np.isnan(current) & (n_cell >= 2)
        dev = np.where(usable, (current - profile) / scale, np.nan)  # [S, T]
        expected = np.nanmean(np.where(usable, profile, np.nan), axis=1)
        observed = np.nanmean(np.where(usable, current, np.nan), axis=1)
        coverage = usable.mean(axis=1)
        pooled = len(series_ids) >= max(min_pooled, 3)
        common_ref = np.nanmedian(loo, axis=1) if pooled else np.zeros(loo.shape[::2])  # [P, T]
        common_cur = np.nanmedian(dev, axis=0) if pooled else np.zeros(dev.shape[1])  # [T]
        stat, p, n = _t_test(
            np.nanmean(dev - common_cur, axis=1), np.nanmean(loo - common_ref[:, None], axis=2)
        )
        relative = np.nanmean((current - profile) / np.abs(profile), axis=1)  # [S]
        common_rel = float(np.nanmedian(relative)) if pooled else 0.0
        own = relative - common_rel  # each series' move beyond the common one
        if pooled:
            c_stat, c_p, c_n = _t_test(np.nanmean(common_cur), np.nanmean(common_ref, axis=1))
    untested: dict[str, str] = {}
    for i, sid in enumerate(series_ids):
        if coverage[i] < min_coverage:
            untested[sid] = f"{coverage[i]:.0%} of the current period observed (needs {min_coverage:.0%})"
        elif n[i] < 3:
            untested[sid] = f"{int(n[i])} reference period(s) with data (needs 3)"
        elif not np.isfinite(stat[i]):
            untested[sid] = "no spread in the reference periods"
    bad = np.array([s in untested for s in series_ids], dtype=bool)
    p = np.where(bad, np.nan, p)
    common = None
    if pooled and np.isfinite(c_p) and c_n >= 3:
        q_all, drifted_all = _fdr(np.append(p, c_p), alpha)
        q, drifted = q_all[:-1], drifted_all[:-1]
        common = CommonShift(
            statistic=float(c_stat),
            p_value=float(c_p),
            q_value=float(q_all[-1]),
            drifted=bool(drifted_all[-1]) and abs(common_rel) >= min_effect,
            size=float(np.nanmean(common_cur)),
            relative_shift=common_rel,
        )
    else:
        q, drifted = _fdr(p, alpha)
    drifted = drifted & (np.abs(own) >= min_effect)
    shift = observed - expected
    return SeriesTest(
        name=name,
        series_ids=list(series_ids),
        current=observed,
        expected=expected,
        shift=shift,
        relative_shift=shift / np.abs(expected),
        statistic=stat,
        p_value=p,
        q_value=q,
        drifted=drifted,
        alpha=alpha,
        n_reference=n.astype(int),
        untested=untested,
        common=common,
        own_shift=own,
    )


def error_increase(
    live: np.ndarray,
    backtest: np.ndarray,
    series_ids: list[str],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.05,
    min_live: int = 3,
    name: str = "error",
) -> SeriesTest:
    """Is each series' live error larger than its backtest error? One-sided Welch t-test per series.

    Args:
        live: ``[series, k]`` live error per block (for example the mean absolute percentage error of
            one day's forecasts; NaN-padded): blocks, not single forecasts, so that overlapping
            horizons do not count as independent evidence.
        backtest: ``[series, j]`` the same error per backtest fold (NaN-padded).
        min_effect: the smallest relative increase worth an alarm.
    """
    from scipy.stats import ttest_ind

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        n_live = np.sum(~np.isnan(live), axis=1)
        n_back = np.sum(~np.isnan(backtest), axis=1)
        result = ttest_ind(live, backtest, axis=1, equal_var=False, nan_policy="omit", alternative="greater")
        stat = np.asarray(result.statistic, dtype=float)
        p = np.asarray(result.pvalue, dtype=float)
        observed = np.nanmean(live, axis=1)
        expected = np.nanmean(backtest, axis=1)
    untested: dict[str, str] = {}
    for i, sid in enumerate(series_ids):
        if n_live[i] < min_live:
            untested[sid] = f"{int(n_live[i])} block(s) of live errors (needs {min_live})"
        elif n_back[i] < 2:
            untested[sid] = f"{int(n_back[i])} backtest fold(s) (needs 2)"
        elif not np.isfinite(p[i]):
            untested[sid] = "no spread in the errors"
    bad = np.array([s in untested for s in series_ids], dtype=bool)
    p = np.where(bad, np.nan, p)
    q, drifted = _fdr(p, alpha)
    shift = observed - expected
    drifted = drifted & (shift / np.abs(expected) >= min_effect)
    return SeriesTest(
        name=name,
        series_ids=list(series_ids),
        current=observed,
        expected=expected,
        shift=shift,
        relative_shift=shift / np.abs(expected),
        statistic=stat,
        p_value=p,
        q_value=q,
        drifted=drifted,
        alpha=alpha,
        n_reference=n_back.astype(int),
        untested=untested,
    )
