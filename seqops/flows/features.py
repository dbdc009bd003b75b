"""The ``materialize_features`` flow: window tables -> apply -> materialize -> parity gate.

Plain functions, one per DAG task, that ``seqops features ...`` calls too. Each returns a small,
XCom-safe dict (the typed results' ``to_dict()``), except :func:`parity`, whose ``ParityResult``
the caller turns into a verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqops.core.settings import Settings

if TYPE_CHECKING:
    from seqops.features.parity import ParityResult


def build(settings: Settings, dataset: str) -> dict[str, Any]:
    """Cut every input window and target vector of ``dataset`` from the curated store."""
    from seqops.features.tables import build_windows

    return build_windows(dataset, settings=settings).to_dict()


def apply(settings: Settings) -> dict[str, Any]:
    """Register the feature declarations in this home's registry (idempotent)."""
    from seqops.features.store import apply as feast_apply

    return feast_apply(settings).to_dict()


def materialize(settings: Settings, dataset: str) -> dict[str, Any]:
    """The newest window of every series to the online store, never older over newer."""
    from seqops.features.materialize import materialize as run

    return run(dataset, settings=settings).to_dict()


def parity(settings: Settings, dataset: str, sample: int = 200, seed: int = 0) -> ParityResult:
    """The gate: historical (training) vs online (serving) vectors, element by element."""
    from seqops.features.parity import check_parity

    return check_parity(dataset, sample, seed, settings=settings)


def refresh(settings: Settings, dataset: str, *, rebuild: bool = True) -> dict[str, Any]:
    """What the DAG does for one dataset up to the gate: build, apply, materialize."""
    out: dict[str, Any] = {}
    if rebuild:
        out["build"] = build(settings, dataset)
        out["apply"] = apply(settings)
    out["materialize"] = materialize(settings, dataset)
    return out
