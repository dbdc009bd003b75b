"""Forecast-vs-actual figures (PNG) for a few series of a backtest or benchmark.

Uses matplotlib's object API with the Agg canvas directly: no pyplot state, no GUI backend, safe
inside Airflow workers and threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from seqops.core.windows import utc_naive


def plot_forecasts(
    forecasts: pd.DataFrame,
    path: Path,
    *,
    series: Sequence[str] | None = None,
    max_series: int = 4,
    history: pd.DataFrame | None = None,
    history_steps: int = 168,
    models: Sequence[str] = ("model", "seasonal_naive"),
    title: str | None = None,
) -> Path:
    """Plot actuals and forecasts of a few series, one panel each.

    Args:
        forecasts: long frame with ``series_id``, ``origin``, ``timestamp``, ``actual`` and one column
            per name in ``models`` (the forecasts frame of ``seqops.flows.train.backtest``).
        path: PNG file to write (parents are created).
        series: which series; default the first ``max_series`` ids.
        max_series: panels at most.
        history: canonical long frame; its last ``history_steps`` values before each panel's first
            origin are drawn as context.
        history_steps: context length.
        models: forecast columns to draw.
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ids = list(series) if series is not None else sorted(forecasts["series_id"].unique())[:max_series]
    ids = ids[:max_series]
    if not ids:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(11, 2.6 * len(ids)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ids), 1, squeeze=False)[:, 0]
    for ax, sid in zip(axes, ids, strict=True):
        f = forecasts[forecasts["series_id"] == sid].sort_values("timestamp")
        if history is not None:
            h = history[history["series_id"].astype(str) == sid].copy()
            h["timestamp"] = utc_naive(h["timestamp"])
            first_origin = pd.Timestamp(f["origin"].min())
            h = h[h["timestamp"] <= first_origin].sort_values("timestamp").tail(history_steps)
            ax.plot(h["timestamp"], h["value"], color="0.55", lw=1.0, label="history")
        ax.plot(f["timestamp"], f["actual"], color="black", lw=1.2, label="actual")
        for k, name in enumerate(models):
            if name in f:
                for _, fold in f.groupby("origin"):  # one line per fold, one colour per model
                    ax.plot(fold["timestamp"], fold[name], lw=1.1, color=f"C{k}", label=name)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8, ncols=4)
        ax.set_title(str(sid), fontsize=9, loc="left")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
