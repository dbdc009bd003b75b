"""Evidently 0.7 behind one small module: pinned drift methods, a typed result, HTML and the workspace.

Evidently's numeric drift method changes with the row count (at most 1,000 rows: a K-S p-value, low
means drift; above: a normed Wasserstein distance, high means drift), so every column's method is
pinned here and the direction of each method is declared in :data:`P_VALUE_METHODS` /
:data:`DISTANCE_METHODS`. The decision is read both ways, from that declaration and from
Evidently's own test status; if they ever disagree (an upgrade changed the meaning of a number), the
check fails loudly instead of deciding the wrong way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Methods whose score is a p-value: drift when the score is below the threshold.
P_VALUE_METHODS = frozenset(
    {"ks", "chisquare", "z", "t_test", "mannw", "anderson", "fisher_exact", "cramer_von_mises", "g_test"}
)
#: Methods whose score is a distance or divergence: drift when the score reaches the threshold.
DISTANCE_METHODS = frozenset({"wasserstein", "kl_div", "psi", "jensenshannon", "hellinger", "energy", "ed"})


class DriftMethodError(RuntimeError):
    """Evidently's verdict and the declared direction of the method disagree."""


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: Evidently's score, what kind of number it is, and the decision."""

    column: str
    method: str
    threshold: float
    score: float
    kind: str  # "p_value" (low = drift) or "distance" (high = drift)
    drifted: bool
    current_rows: int
    reference_rows: int

    def line(self) -> str:
        sign = "<" if self.kind == "p_value" else ">="
        verdict = "DRIFT" if self.drifted else "no drift"
        return (
            f"{self.column}: {verdict} ({self.method} {self.kind} {self.score:.4g}; drift when {sign} "
            f"{self.threshold:g}; {self.current_rows:,} current vs {self.reference_rows:,} reference rows)"
        )


def direction(method: str) -> str:
    """``"p_value"`` or ``"distance"`` for a pinned method (raises for one not declared here)."""
    if method in P_VALUE_METHODS:
        return "p_value"
    if method in DISTANCE_METHODS:
        return "distance"
    raise ValueError(f"drift method {method!r} has no declared direction; pin one of the declared methods")


def decide(method: str, score: float, threshold: float) -> bool:
    """Whether ``score`` means drift for ``method``."""
    return score < threshold if direction(method) == "p_value" else score >= threshold


@dataclass
class DriftReport:
    """An Evidently snapshot of several columns and their decisions."""

    columns: list[ColumnDrift]
    snapshot: Any  # evidently Snapshot

    def save_html(self, path: Path) -> Path:
        self.snapshot.save_html(str(path))
        return path

    def save_json(self, path: Path) -> Path:
        path.write_text(self.snapshot.json())
        return path


def pooled_frames(
    reference: np.ndarray, current: np.ndarray, extra: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pooled columns a check hands to Evidently: current and reference frames.

    ``load`` is every value; ``deviation`` is each value relative to the like-for-like profile (for a
    reference period: the profile of the *other* periods, so it is not compared with itself);
    ``extra`` adds columns as (current, reference) arrays of any length. Shorter columns are padded
    with NaN, which Evidently leaves out of that column's test.

    Args:
        reference: ``[period, series, slot]`` aligned reference values.
        current: ``[series, slot]`` current values.
    """
    import numpy as np
    import pandas as pd

    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.sum(~np.isnan(reference), axis=0)
        profile = np.nanmean(reference, axis=0)
        others = (n * profile - reference) / (n - 1.0)
        cur = {"load": current.ravel(), "deviation": (current / profile - 1.0).ravel()}
        ref = {"load": reference.ravel(), "deviation": (reference / others - 1.0).ravel()}
    for name, (c, r) in extra.items():
        cur[name], ref[name] = np.asarray(c, dtype=float), np.asarray(r, dtype=float)

    def frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
        longest = max(len(v) for v in cols.values())
        return pd.DataFrame(
            {k: np.concatenate([v, np.full(longest - len(v), np.nan)]) for k, v in cols.items()}
        )

    return frame(cur), frame(ref)


def column_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    methods: dict[str, tuple[str, float]],
    *,
    name: str,
    metadata: dict[str, str] | None = None,
    tags: list[str] | None = None,
    max_rows: int = 200_000,
    seed: int = 0,
) -> DriftReport:
    """Run one Evidently report of ``ValueDrift`` per column with its pinned (method, threshold).

    NaN rows of a column are left out of that column's test (Evidently drops them), so columns of
    different lengths can share one frame. Columns with no rows on either side are left out. A side
    longer than ``max_rows`` is sampled (seeded) to that many rows: a distance on 200,000 draws is
    as good as on millions, and Evidently's cost grows with the rows (STACK_NOTES: ~20 CPU-s for
    1M rows x 3 columns).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    usable = [
        c
        for c in methods
        if c in current and c in reference and current[c].notna().any() and reference[c].notna().any()
    ]
    if not usable:
        raise ValueError("no column has rows on both sides to compare")
    for column in usable:
        direction(methods[column][0])  # refuse undeclared methods before running anything
    if len(current) > max_rows:
        current = current.sample(max_rows, random_state=seed)
    if len(reference) > max_rows:
        reference = reference.sample(max_rows, random_state=seed)
    definition = DataDefinition(numerical_columns=usable)
    report = Report(
        [ValueDrift(column=c, method=methods[c][0], threshold=methods[c][1]) for c in usable],
        metadata=metadata or {},
        tags=tags or [],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current[usable], data_definition=definition),
        Dataset.from_pandas(reference[usable], data_definition=definition),
    )
    snapshot.set_name(name)
    result = json.loads(snapshot.json())
    status = {t["metric_config"]["params"]["column"]: t["status"] for t in result.get("tests", [])}
    out = []
    for metric in result["metrics"]:
        config = metric["config"]
        column, method, threshold = config["column"], config["method"], float(config["threshold"])
        if (method, threshold) != (methods[column][0], float(methods[column][1])):
            raise DriftMethodError(f"{column}: Evidently ran {method} at {threshold}, not the pinned method")
        score = float(metric["value"])
        drifted = decide(method, score, threshold)
        evidently_says = status.get(column)
        if evidently_says is not None and (evidently_says == "FAIL") != drifted:
            raise DriftMethodError(
                f"{column}: {method} score {score:.4g} at threshold {threshold:g} reads as "
                f"{'drift' if drifted else 'no drift'} ({direction(method)}), but Evidently's test says "
                f"{evidently_says}: check the method's direction after an Evidently upgrade"
            )
        out.append(
            ColumnDrift(
                column=column,
                method=method,
                threshold=threshold,
                score=score,
                kind=direction(method),
                drifted=drifted,
                current_rows=int(current[column].notna().sum()),
                reference_rows=int(reference[column].notna().sum()),
            )
        )
    return DriftReport(columns=out, snapshot=snapshot)


def add_to_workspace(workspace: Path, project: str, report: DriftReport, *, description: str = "") -> str:
    """Add the snapshot to the Evidently workspace (creating the project once); returns the run id."""
    from evidently.ui.workspace import Workspace

    ws = Workspace.create(str(workspace))
    found = ws.search_project(project)
    proj = found[0] if found else ws.create_project(project, description=description)
    ref = ws.add_run(proj.id, report.snapshot, include_data=False)
    return f"{proj.id}/{ref.id}"
