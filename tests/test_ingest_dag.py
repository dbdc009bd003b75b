"""A real ``dag.test()`` of ingest_sequences on PJM data against the embedded stack."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BAD_BATCH = (
    "series_id,timestamp,value\n"
    "AEP,2018-01-01T00:00:00Z,15000\n"
    "AEP,2018-01-01T01:00:00Z,nan\n"
    "AEP,2099-01-01T02:00:00Z,15100\n"
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


@pytest.mark.slow
def test_ingest_dag_publishes_good_batches_and_quarantines_bad(airflow_db, pjm_source):
    from seqops.core.importers import import_pjm
    from seqops.core.settings import get_settings
    from seqops.core.store import CuratedStore, LandingZone, Quarantine
    from seqops.flows.ingest import claim_for_run, run_summary

    settings = get_settings()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    incoming = LandingZone(settings).incoming("pjm")
    report = import_pjm(pjm_source, incoming, period="year", zones=["AEP", "DUQ"], since="2017-01-01")
    assert [Path(b).name for b in report.batches] == ["pjm_2017.csv.gz", "pjm_2018.csv.gz"]
    (incoming / "bad_2018.csv").write_text(BAD_BATCH)

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "ingest_sequences.py")).dags["ingest_sequences"]
    run = dag.test()

    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"  # summarize fails the run: one batch was quarantined
    assert states[("land", -1)] == "success"
    assert states[("emit_curated", -1)] == "success"  # good data flowed on
    assert states[("summarize", -1)] == "failed"
    validate_states = sorted(s for (t, _), s in states.items() if t == "each_batch.validate")
    assert validate_states == ["failed", "success", "success"]

    curated = CuratedStore(settings).read("pjm")
    assert set(curated["series_id"]) == {"AEP", "DUQ"}
    assert len(curated) == report.rows_written
    assert curated["timestamp"].max() < __import__("pandas").Timestamp("2018-09-01", tz="UTC")

    quarantined = Quarantine(settings).batches("pjm")
    assert len(quarantined) == 1
    folder = Quarantine(settings).folder("pjm", quarantined[0])
    assert (folder / "batch.csv").read_text() == BAD_BATCH
    assert (folder / "validation.json").exists()
    assert (folder / "data_docs" / "index.html").exists()

    refs = claim_for_run(settings, run.run_id)
    assert len(refs) == 3  # the run's claim is remembered
    summary = run_summary(settings, [r.to_dict() for r in refs])
    assert summary["rows_landed"] == summary["rows_accepted"] + summary["rows_quarantined"]
    assert summary["rows_quarantined"] == 3
    assert summary["rows_accepted"] == report.rows_written
    assert list(incoming.iterdir()) == []  # claimed files left incoming, kept under landed/

    # Re-processing the same batches changes nothing in the curated store.
    from seqops.flows.ingest import publish, validate

    before = _digest(settings.curated_dir)
    for ref in refs:
        if validate(settings, ref).accepted:
            publish(settings, ref)
    assert _digest(settings.curated_dir) == before
