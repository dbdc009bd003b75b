"""Parity on the real PJM demo data (7 zones, 2004-2018, DST repairs and missing hours): 200
(series, moment) samples, the 7 zones at their newest window and 193 at replayed past moments."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_pjm_parity_200_samples(pjm_source, tmp_path, monkeypatch):
    """~2 minutes: 638k windows built, applied, materialized, 28 past moments replayed."""
    from datetime import UTC, datetime

    monkeypatch.setenv("SEQOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEQOPS_FEATURES_DATASETS", "pjm")
    from seqops.core.importers import ImportReport, pjm_files, read_pjm_zone
    from seqops.core.settings import get_settings
    from seqops.core.store import BatchRef, CuratedStore
    from seqops.features import store
    from seqops.features.materialize import materialize
    from seqops.features.parity import check_parity
    from seqops.features.tables import build_windows

    settings = get_settings()
    report = ImportReport(source=str(pjm_source))
    for path in pjm_files(pjm_source):
        frame = read_pjm_zone(path, report)
        ref = BatchRef(
            "pjm", path.name[:8], "-", str(path), path.name, datetime(2024, 1, 1, tzinfo=UTC).isoformat()
        )
        CuratedStore(settings).write("pjm", ref, frame)
    build = build_windows("pjm", settings=get_settings())
    assert build.series == 7 and build.windows > 600_000
    store.apply(settings=get_settings())
    result = materialize("pjm", settings=get_settings())
    assert result.series == 7
    parity = check_parity("pjm", sample=200, seed=0, settings=get_settings())
    assert parity.ok, parity.mismatches
    assert parity.samples == 200 and parity.latest_samples == 7 and parity.replay_samples == 193
    assert parity.mismatched_samples == 0 and parity.mismatched_elements == 0
    assert parity.both_present >= 150
