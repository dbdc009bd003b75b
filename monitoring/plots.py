"""Drift figures (PNG): each flagged series' current period against what its reference expected.

matplotlib's object API on the Agg canvas (no pyplot state), as ``seqops.training.plots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_level_check(
    reference: np.ndarray,
    current: np.ndarray,
    series_ids: Sequence[str],
    chosen: Sequence[str],
    stamps: Sequence,
    path: Path,
    *,
    labels: dict[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """One panel per chosen series: the current values over the reference mean and its range.

    Args:
        reference: ``[period, series, slot]`` reference values (aligned slot by slot).
        current: ``[series, slot]`` current values.
        series_ids: the series axis of both arrays.
        chosen: the series to draw (at most 6 are drawn).
        stamps: the timestamps of the current period's slots (the x axis).
        labels: a caption per series (its verdict and numbers).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    chosen = list(chosen)[:6]
    if not chosen:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(11, 2.4 * len(chosen)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(chosen), 1, squeeze=False)[:, 0]
    index = {s: i for i, s in enumerate(series_ids)}
    with np.errstate(invalid="ignore"):
        for ax, sid in zip(axes, chosen, strict=True):
            i = index[sid]
            ref = reference[:, i, :]
            low, high = np.nanmin(ref, axis=0), np.nanmax(ref, axis=0)
            ax.fill_between(stamps, low, high, color="0.85", label="reference range")
            ax.plot(stamps, np.nanmean(ref, axis=0), color="0.35", lw=1.0, label="reference mean")
            ax.plot(stamps, current[i], color="C3", lw=1.3, label="current")
            ax.legend(loc="upper left", fontsize=8, ncols=3)
            ax.set_title(f"{sid}  {(labels or {}).get(sid, '')}", fontsize=9, loc="left")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
