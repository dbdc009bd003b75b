"""The training-set representation: a :class:`WindowSet` of fixed-length input windows.

This is the contract between the feature side (Feast historical retrieval for training, the online
store for serving) and the model. One row ``i`` is one forecast origin of one series:

==============  ======================  =====================================================================
field           shape / dtype           meaning
==============  ======================  =====================================================================
``x``           [N, L] float32          the L values up to and including the origin, oldest first (raw units)
``y``           [N, H] float32          the H values after the origin (raw units); NaN where not known yet
``series_idx``  [N] int64               position of the series in ``series_ids``; -1 = a series the model
                                        has not seen (gets no embedding)
``origin``      [N] datetime64[ns]      forecast origin = timestamp of the last input value, UTC, tz-naive
``calendar``    [N, H, C] float32       calendar features of the H target timestamps (C = 0 when off),
                                        from :func:`calendar_features`
``scale``       [N, 2] float32          per-window (loc, scale) from :func:`window_scale`; the model reads
                                        ``(x - loc) / scale`` and its output is mapped back by the same pair
==============  ======================  =====================================================================

plus ``series_ids`` (index -> id), ``step`` (the regular spacing) and ``calendar_tz``.

The window travels as one ``Array(Float32)`` of length L in Feast (see docs/STACK_NOTES.md: one array feature
beats L lag columns); the scale pair and the calendar are *derived* from the window and its origin by
the two public functions here, so training (historical retrieval), serving (online read) and this
module's own builder produce bit-identical model inputs when they call them on the same float32 window.

:func:`windows_from_frame` builds a WindowSet from a canonical long frame (``series_id``,
``timestamp``, ``value``) for the benchmarks, the backtest and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from seqops.core.datasets import CALENDAR_FEATURES, Scaler

_EPS = 1e-8


def calendar_features(timestamps: np.ndarray, tz: str = "UTC") -> np.ndarray:
    """Cyclic calendar features of UTC timestamps, read in the local time zone ``tz``.

    Args:
        timestamps: datetime64 array of any shape, UTC, tz-naive.
        tz: IANA zone whose wall clock the features follow (load follows local time, DST included).

    Returns:
        float32 array ``timestamps.shape + (len(CALENDAR_FEATURES),)``: sin/cos of hour of day,
        day of week and day of year.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    idx = pd.DatetimeIndex(ts.ravel()).tz_localize("UTC")
    if tz != "UTC":
        idx = idx.tz_convert(tz)
    hour = (idx.hour.to_numpy() + idx.minute.to_numpy() / 60.0) / 24.0
    dow = idx.dayofweek.to_numpy() / 7.0
    doy = (idx.dayofyear.to_numpy() - 1) / 365.25
    angles = 2.0 * np.pi * np.stack([hour, dow, doy], axis=-1)  # [n, 3]
    feats = np.stack([np.sin(angles), np.cos(angles)], axis=-1)  # [n, 3, 2]
    return feats.reshape(*ts.shape, len(CALENDAR_FEATURES)).astype(np.float32)  # [n, 3, 2] -> [..., 6]


def window_scale(x: np.ndarray, method: Scaler) -> np.ndarray:
    """Per-window (loc, scale) of input windows.

    Args:
        x: [N, L] float32 windows in raw units.
        method: 'mean' (loc 0, scale = mean |x|: the window's level, for positive data), 'standard'
            (mean, std), 'robust' (median, interquartile range) or 'none' (0, 1). A scale below 1e-8
            (a flat window) becomes 1.

    Returns:
        [N, 2] float32, column 0 = loc, column 1 = scale.
    """
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    n = x64.shape[0]
    if method == "mean":
        loc, scale = np.zeros(n), np.abs(x64).mean(axis=1)
    elif method == "standard":
        loc, scale = x64.mean(axis=1), x64.std(axis=1)
    elif method == "robust":
        q25, loc, q75 = np.quantile(x64, [0.25, 0.5, 0.75], axis=1)
        scale = q75 - q25
    elif method == "none":
        loc, scale = np.zeros(n), np.ones(n)
    else:
        raise ValueError(f"unknown scaler {method!r}")
    scale = np.where(scale < _EPS, 1.0, scale)
    return np.stack([loc, scale], axis=1).astype(np.float32)


@dataclass(frozen=True)
class WindowSet:
    """Input windows, targets and their metadata; see the module docstring for every field."""

    x: np.ndarray
    y: np.ndarray
    series_idx: np.ndarray
    origin: np.ndarray
    calendar: np.ndarray
    scale: np.ndarray
    series_ids: tuple[str, ...]
    step: np.timedelta64
    calendar_tz: str = "UTC"

    def __post_init__(self) -> None:
        n, length = self.x.shape
        horizon = self.y.shape[1]
        checks = {
            "x float32": self.x.dtype == np.float32,
            "y [N, H] float32": self.y.dtype == np.float32 and self.y.shape[0] == n,
            "series_idx [N] int64": self.series_idx.dtype == np.int64 and self.series_idx.shape == (n,),
            "origin [N] datetime64[ns]": self.origin.dtype == "datetime64[ns]" and self.origin.shape == (n,),
            "calendar [N, H, C] float32": self.calendar.dtype == np.float32
            and self.calendar.shape[:2] == (n, horizon),
            "scale [N, 2] float32": self.scale.dtype == np.float32 and self.scale.shape == (n, 2),
            "series_idx < len(series_ids)": n == 0 or int(self.series_idx.max()) < len(self.series_ids),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad or length == 0:
            raise ValueError(f"malformed WindowSet: {', '.join(bad) or 'empty input window'}")

    # ---- shape ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_size(self) -> int:
        return int(self.x.shape[1])

    @property
    def horizon(self) -> int:
        return int(self.y.shape[1])

    @property
    def n_calendar(self) -> int:
        return int(self.calendar.shape[2])

    # ---- selection ------------------------------------------------------------------------------
    def subset(self, rows: np.ndarray) -> WindowSet:
        """The windows at ``rows`` (integer positions or a boolean mask), same metadata."""
        return replace(
            self,
            x=self.x[rows],
            y=self.y[rows],
            series_idx=self.series_idx[rows],
            origin=self.origin[rows],
            calendar=self.calendar[rows],
            scale=self.scale[rows],
        )

    def ids(self) -> list[str]:
        """[N] series id of every window ("" for index -1)."""
        return [self.series_ids[i] if i >= 0 else "" for i in self.series_idx]

    def with_series_index(self, series_ids: Sequence[str]) -> WindowSet:
        """The same windows indexed against another series index (a model's); unknown ids get -1."""
        position = {sid: i for i, sid in enumerate(series_ids)}
        remap = np.array([position.get(sid, -1) for sid in self.series_ids] + [-1], dtype=np.int64)
        return replace(self, series_idx=remap[self.series_idx], series_ids=tuple(series_ids))

    def target_timestamps(self) -> np.ndarray:
        """[N, H] datetime64[ns] timestamps of the target steps (UTC, tz-naive)."""
        k = np.arange(1, self.horizon + 1)
        return self.origin[:, None] + k[None, :] * self.step  # [N] -> [N, H]

    # ---- scaling --------------------------------------------------------------------------------
    def scaled_x(self) -> np.ndarray:
        """[N, L] float32 model input ``(x - loc) / scale``."""
        return ((self.x - self.scale[:, :1]) / self.scale[:, 1:]).astype(np.float32)

    def scaled_y(self) -> np.ndarray:
        """[N, H] float32 targets on the model's scale."""
        return ((self.y - self.scale[:, :1]) / self.scale[:, 1:]).astype(np.float32)

    def unscale(self, values: np.ndarray) -> np.ndarray:
        """Map model outputs [N, H] or [N, H, Q] back to raw units."""
        loc, scale = self.scale[:, 0], self.scale[:, 1]
        extra = (1,) * (values.ndim - 1)
        return values * scale.reshape(-1, *extra) + loc.reshape(-1, *extra)


def infer_step(df: pd.DataFrame) -> pd.Timedelta:
    diffs = df.sort_values(["series_id", "timestamp"]).groupby("series_id", sort=False)["timestamp"].diff()
    mode = diffs.dropna().mode()
    if mode.empty:
        raise ValueError("cannot infer the step: no series has two timestamps; pass freq")
    return pd.Timedelta(mode.iloc[0])


def utc_naive(values: pd.Series | pd.Index | Sequence) -> np.ndarray:
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def windows_from_frame(
    df: pd.DataFrame,
    input_size: int,
    horizon: int,
    *,
    origins: Sequence | pd.DataFrame | None = None,
    stride: int = 1,
    scaler: Scaler = "mean",
    calendar: bool = True,
    calendar_tz: str = "UTC",
    freq: str | pd.Timedelta | None = None,
    series_ids: Sequence[str] | None = None,
    require_target: bool = True,
) -> WindowSet:
    """Cut a canonical long frame into windows.

    A window is kept only when its L input values are all present on the regular grid (a missing
    row is a gap) and, with ``require_target``, its H targets too.

    Args:
        df: columns ``series_id``, ``timestamp`` (tz-aware, or naive = UTC), ``value``.
        input_size: L.
        horizon: H.
        origins: None = every origin, counted back from each series' last possible one in steps of
            ``stride`` (so the most recent is always in); a sequence of timestamps = these origins
            in every series; a frame with ``series_id`` and ``origin`` = per-series origins.
            Origins whose window cannot be built are skipped.
        stride: spacing of the origins when ``origins`` is None.
        scaler: see :func:`window_scale`.
        calendar: compute :func:`calendar_features` of the target timestamps (else C = 0).
        calendar_tz: time zone the calendar follows.
        freq: the regular step; None = the most common spacing in ``df``.
        series_ids: the series index to use (a trained model's); series outside it get index -1.
            None = the sorted ids of ``df``.
        require_target: False allows origins whose targets are not (all) known yet: forecasting.

    Returns:
        The windows, ordered by series then origin.
    """
    if stride < 1:
        raise ValueError("stride must be >= 1")
    frame = df[["series_id", "timestamp", "value"]].copy()
    frame["series_id"] = frame["series_id"].astype(str)
    frame["timestamp"] = utc_naive(frame["timestamp"])
    if frame.duplicated(["series_id", "timestamp"]).any():
        raise ValueError("duplicate (series_id, timestamp) rows: deduplicate before windowing")
    step = pd.Timedelta(freq) if freq is not None else infer_step(frame)
    step_ns = np.int64(step.value)
    ids = tuple(series_ids) if series_ids is not None else tuple(sorted(frame["series_id"].unique()))
    position = {sid: i for i, sid in enumerate(ids)}

    per_series_origins: dict[str, np.ndarray] | None = None
    shared_origins: np.ndarray | None = None
    if isinstance(origins, pd.DataFrame):
        o = origins.assign(series_id=origins["series_id"].astype(str), origin=utc_naive(origins["origin"]))
        per_series_origins = {sid: g["origin"].to_numpy() for sid, g in o.groupby("series_id", sort=False)}
    elif origins is not None:
        shared_origins = np.unique(utc_naive(list(origins)))

    span = input_size + horizon
    xs, ys, idxs, ors = [], [], [], []
    for sid, g in frame.sort_values(["series_id", "timestamp"]).groupby("series_id", sort=True):
        t = g["timestamp"].to_numpy().astype(np.int64)
        offset = t - t[0]
        if np.any(offset % step_ns):
            raise ValueError(f"series {sid!r} has timestamps off the {step} grid")
        pos = offset // step_ns
        grid = np.full(int(pos[-1]) + 1 + horizon, np.nan)  # H trailing NaNs: targets past the end
        grid[pos] = g["value"].to_numpy(dtype=np.float64)
        last = int(pos[-1])
        # candidate origin positions (index of the last input value on the grid)
        if per_series_origins is not None or shared_origins is not None:
            wanted = shared_origins if shared_origins is not None else per_series_origins.get(sid)
            if wanted is None or len(wanted) == 0:
                continue
            delta = wanted.astype(np.int64) - t[0]
            cand = delta // step_ns
            cand = cand[(delta % step_ns == 0) & (cand >= input_size - 1) & (cand <= last)]
        else:
            top = last - horizon if require_target else last
            cand = np.arange(top, input_size - 2, -stride)[::-1]
        if len(cand) == 0:
            continue
        view = np.lib.stride_tricks.sliding_window_view(grid, span)  # [n_start, L + H]
        win = view[cand - (input_size - 1)]  # [n, L + H]
        ok = np.isfinite(win[:, :input_size]).all(axis=1)
        if require_target:
            ok &= np.isfinite(win[:, input_size:]).all(axis=1)
        win, cand = win[ok], cand[ok]
        xs.append(win[:, :input_size])
        ys.append(win[:, input_size:])
        idxs.append(np.full(len(cand), position.get(sid, -1), dtype=np.int64))
        ors.append(t[0] + cand * step_ns)

    x = np.concatenate(xs).astype(np.float32) if xs else np.zeros((0, input_size), np.float32)
    y = np.concatenate(ys).astype(np.float32) if ys else np.zeros((0, horizon), np.float32)
    origin = (np.concatenate(ors) if ors else np.zeros(0, np.int64)).astype("datetime64[ns]")
    series_idx = np.concatenate(idxs) if idxs else np.zeros(0, np.int64)
    k = np.arange(1, horizon + 1, dtype=np.int64)
    targets = origin[:, None] + (k * step_ns).astype("timedelta64[ns]")[None, :]  # [N] -> [N, H]
    cal = calendar_features(targets, calendar_tz) if calendar else np.zeros((len(x), horizon, 0), np.float32)
    return WindowSet(
        x=x,
        y=y,
        series_idx=series_idx,
        origin=origin,
        calendar=cal,
        scale=window_scale(x, scaler),
        series_ids=ids,
        step=np.timedelta64(int(step_ns), "ns"),
        calendar_tz=calendar_tz,
    )


def split_last_origins(ws: WindowSet, n_val: int) -> tuple[WindowSet, WindowSet]:
    """Split in time per series: the last ``n_val`` origins validate, earlier ones train.

    Training windows keep only origins whose targets end at or before the first validation origin,
    so no training target lies in the validation targets' period.

    Args:
        ws: windows of one or many series.
        n_val: validation origins per series.

    Returns:
        (train, validation) WindowSets.
    """
    order = np.lexsort((ws.origin, ws.series_idx))  # by series, then origin
    sidx, orig = ws.series_idx[order], ws.origin[order]
    is_val = np.zeros(len(ws), bool)
    is_train = np.zeros(len(ws), bool)
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]])
    ends = np.r_[starts[1:], len(ws)]
    horizon_span = ws.horizon * ws.step
    for s, e in zip(starts, ends, strict=True):
        first_val = max(s, e - n_val)
        is_val[first_val:e] = True
        is_train[s:first_val] = orig[s:first_val] + horizon_span <= orig[first_val]
    return ws.subset(order[is_train]), ws.subset(order[is_val])


def concat(sets: Sequence[WindowSet]) -> WindowSet:
    """Concatenate WindowSets that share the series index, step and calendar zone."""
    first = sets[0]
    for other in sets[1:]:
        same = (other.series_ids, other.step, other.calendar_tz) == (
            first.series_ids,
            first.step,
            first.calendar_tz,
        )
        if not same:
            raise ValueError("WindowSets differ in series index, step or calendar zone")
    return replace(
        first,
        x=np.concatenate([s.x for s in sets]),
        y=np.concatenate([s.y for s in sets]),
        series_idx=np.concatenate([s.series_idx for s in sets]),
        origin=np.concatenate([s.origin for s in sets]),
        calendar=np.concatenate([s.calendar for s in sets]),
        scale=np.concatenate([s.scale for s in sets]),
    )


def windows_from_arrays(
    series_id: Sequence[str],
    origin: Sequence | np.ndarray,
    window: Sequence[Sequence[float]] | np.ndarray,
    *,
    horizon: int,
    series_ids: Sequence[str],
    step: np.timedelta64 | pd.Timedelta,
    scaler: Scaler,
    calendar: bool,
    calendar_tz: str = "UTC",
    scale: np.ndarray | None = None,
) -> WindowSet:
    """A WindowSet from windows as a feature store hands them over (serving, Feast retrieval).

    Args:
        series_id: [N] ids.
        origin: [N] forecast origins (tz-aware or UTC-naive timestamps).
        window: [N] arrays of L values, oldest first.
        horizon: H.
        series_ids: the model's series index; ids outside it get index -1.
        step: spacing of the series.
        scaler: see :func:`window_scale` (ignored when ``scale`` is given).
        calendar: compute calendar features of the target steps.
        calendar_tz: the zone the calendar follows.
        scale: [N, 2] precomputed (loc, scale), e.g. from a feature view.

    Returns:
        Windows with NaN targets.
    """
    x = np.stack([np.asarray(w, dtype=np.float32) for w in window]) if len(window) else None
    if x is None:
        raise ValueError("no windows")
    position = {sid: i for i, sid in enumerate(series_ids)}
    ids = np.array([position.get(str(s), -1) for s in series_id], dtype=np.int64)
    orig = utc_naive(origin)
    step_ns = np.timedelta64(pd.Timedelta(step).value, "ns")
    targets = orig[:, None] + np.arange(1, horizon + 1)[None, :] * step_ns  # [N] -> [N, H]
    return WindowSet(
        x=x,
        y=np.full((len(x), horizon), np.nan, np.float32),
        series_idx=ids,
        origin=orig,
        calendar=(
            calendar_features(targets, calendar_tz)
            if calendar
            else np.zeros((len(x), horizon, 0), np.float32)
        ),
        scale=np.asarray(scale, np.float32) if scale is not None else window_scale(x, scaler),
        series_ids=tuple(series_ids),
        step=step_ns,
        calendar_tz=calendar_tz,
    )
