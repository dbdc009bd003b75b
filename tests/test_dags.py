"""DAG integrity, policy and shape: every file in dags/ parses fast, light, and as designed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqops.core.resources import dags_folder

DAGS = dags_folder()
# what the dag-processor parses: every .py file but those .airflowignore names (helpers, the plugin)
IGNORED = {"assets.py", "__init__.py", "operators.py", "plugin.py"}
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if p.name not in IGNORED)
HEAVY = ("torch", "mlflow", "evidently", "great_expectations", "feast", "pandas", "sklearn")

PROBE = """
import json, runpy, sys, time
import airflow.sdk  # the DAG processor has this loaded already: not part of the file's cost
before = set(sys.modules)
t0 = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="dagfile")
elapsed = time.perf_counter() - t0
heavy = sorted({m.split(".")[0] for m in set(sys.modules) - before} & set(json.loads(sys.argv[2])))
print(json.dumps({"seconds": elapsed, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_is_listed():
    assert DAG_FILES, "no DAG files found"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= len(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_light(path: Path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["heavy"] == [], f"{path.name} imports {probe['heavy']} at top level"
    assert probe["seconds"] < 1.0, f"{path.name} took {probe['seconds']:.2f} s to import"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_header_policy(path: Path, dagbag):
    source = path.read_text()
    assert "catchup=" in source, "catchup must be stated explicitly"
    assert "schedule=" in source, "schedule must be stated explicitly"
    dags = [d for d in dagbag.dags.values() if Path(d.fileloc).name == path.name]
    assert dags, f"{path.name} defines no DAG"
    for dag in dags:
        assert dag.tags and "seqops" in dag.tags
        assert dag.default_args.get("retries", 0) >= 1
        assert dag.doc_md and len(dag.doc_md) > 100
        assert dag.start_date is not None and dag.start_date.tzinfo is not None
        assert dag.max_active_runs == 1


def test_ingest_sequences_task_graph(dagbag):
    dag = dagbag.dags["ingest_sequences"]
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert set(dag.task_ids) == {
        "land",
        "each_batch.validate",
        "each_batch.publish",
        "emit_curated",
        "summarize",
    }
    assert edges == {
        ("land", "each_batch.validate"),
        ("land", "emit_curated"),
        ("land", "summarize"),
        ("each_batch.validate", "each_batch.publish"),
        ("each_batch.publish", "emit_curated"),
        ("emit_curated", "summarize"),
    }
    assert [o.uri for o in dag.get_task("emit_curated").outlets] == ["seqops://curated/"]
    assert dag.get_task("each_batch.validate").retries == 0  # a rejection is final, not flaky


def test_train_forecaster_task_graph_and_schedule(dagbag):
    dag = dagbag.dags["train_forecaster"]
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    group = "each_dataset"
    assert edges == {
        ("requests", f"{group}.features_ready"),
        ("requests", f"{group}.train"),
        (f"{group}.features_ready", f"{group}.train"),
        (f"{group}.train", f"{group}.backtest"),
        (f"{group}.backtest", f"{group}.register"),
    }
    assert dag.max_active_runs == 1
    # Weekly and on the retrain Asset (drift or a person), and manual.
    timetable = dag.timetable
    assert type(timetable).__name__ == "AssetOrTimeSchedule"
    assert "seqops_retrain" in str(timetable.asset_condition)
    assert set(dag.params) >= {"dataset", "profile", "max_epochs", "time_budget_s"}


def test_on_kubernetes_the_train_step_is_a_pod_on_the_gpu_template(monkeypatch):
    """SEQOPS_TRAINING_POD_TEMPLATE turns the train step into a KubernetesPodOperator pod that runs
    `seqops train --fit-only` and hands its result to the backtest as the XCom; the graph is the same."""
    import yaml
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    template = Path(__file__).resolve().parents[1] / "infra" / "k8s" / "training-pod.yaml"
    monkeypatch.setenv("SEQOPS_TRAINING_POD_TEMPLATE", str(template))
    bag = DagBag(dag_folder=str(DAGS / "train_forecaster.py"))
    assert bag.import_errors == {}
    dag = bag.dags["train_forecaster"]
    pod = dag.get_task("each_dataset.train")
    assert isinstance(pod, KubernetesPodOperator)
    assert pod.pod_template_file == str(template) and pod.cmds == ["seqops"] and pod.do_xcom_push
    assert "each_dataset.pod_arguments" in pod.upstream_task_ids
    assert dag.get_task("each_dataset.backtest").upstream_task_ids == {"each_dataset.train"}
    spec = yaml.safe_load(template.read_text())["spec"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1" and spec["tolerations"]


def test_the_training_pods_arguments_are_a_fit_only_seqops_train(monkeypatch):
    from seqops.cli import app

    monkeypatch.setenv("SEQOPS_TRAINING_POD_TEMPLATE", "/nonexistent/pod.yaml")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "train_forecaster.py")).dags["train_forecaster"]
    make = dag.get_task("each_dataset.pod_arguments").python_callable
    args = make(
        {"dataset": "pjm", "reason": "drift: DOM"},
        params={"profile": "default", "max_epochs": 3, "time_budget_s": 60, "history_days": 90},
    )
    assert args[:4] == ["train", "--fit-only", "--result-file", "/airflow/xcom/return.json"]
    from typer.main import get_command

    train = get_command(app).commands["train"]  # every argument is an option the command knows
    known = {opt for p in train.params for opt in p.opts}
    assert {a for a in args[1:] if a.startswith("--")} <= known


def test_airflowignore_keeps_helpers_out_of_the_dag_folder():
    ignore = (DAGS / ".airflowignore").read_text().split()
    assert sorted(ignore) == sorted(name.replace(".", "\\.") for name in IGNORED)


def test_retrain_events_for_several_datasets_each_get_a_training(dagbag):
    """Two datasets drifting together: one request each, mapped over the training task group."""
    from types import SimpleNamespace

    requests = dagbag.dags["train_forecaster"].get_task("requests").python_callable
    events = {
        "seqops_retrain": [
            SimpleNamespace(extra={"datasets": ["pjm"], "reason": "drift: report 17"}),
            SimpleNamespace(extra={"datasets": ["m4_hourly", "pjm"], "reason": "drift: report 18"}),
            SimpleNamespace(extra={"dataset": "etth1"}),  # an outside system's single-dataset event
        ]
    }
    got = requests(params={"dataset": "pjm"}, triggering_asset_events=events)
    assert got == [
        {"dataset": "etth1", "reason": "retrain-asset", "report": None},
        {"dataset": "m4_hourly", "reason": "drift: report 18", "report": None},
        {"dataset": "pjm", "reason": "drift: report 17", "report": None},
    ]
    assert requests(params={"dataset": "pjm"}, triggering_asset_events={}) == [
        {"dataset": "pjm", "reason": "manual", "report": None}
    ]


def test_a_drift_event_names_each_datasets_reason_and_report_for_its_training(dagbag):
    """monitor_drift's event: one per run, each drifted dataset with its own reason and report."""
    from types import SimpleNamespace

    requests = dagbag.dags["train_forecaster"].get_task("requests").python_callable
    extra = {
        "datasets": ["m4_hourly", "pjm"],
        "reason": "drift",
        "requests": {
            "pjm": {"reason": "drift 20180803T0000: error of DOM", "report": "http://r/pjm (MLflow run a)"},
            "m4_hourly": {"reason": "drift 20180803T0000: input level of H7", "report": "http://r/m4"},
        },
    }
    got = requests(params={"dataset": "pjm"}, triggering_asset_events={"r": [SimpleNamespace(extra=extra)]})
    assert got == [
        {"dataset": "m4_hourly", "reason": "drift 20180803T0000: input level of H7", "report": "http://r/m4"},
        {
            "dataset": "pjm",
            "reason": "drift 20180803T0000: error of DOM",
            "report": "http://r/pjm (MLflow run a)",
        },
    ]


def test_monitor_drift_gates_the_retrain_event_and_links_its_report(dagbag):
    dag = dagbag.dags["monitor_drift"]
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges == {
        ("datasets", "check"),
        ("check", "retrain_needed"),
        ("retrain_needed", "request_retrain"),
    }
    assert type(dag.get_task("retrain_needed")).__name__ == "_ShortCircuitDecoratedOperator"
    assert [o.name for o in dag.get_task("request_retrain").outlets] == ["seqops_retrain"]
    assert [link.name for link in dag.get_task("check").operator_extra_links] == ["Drift report"]
    assert type(dag.timetable).__name__ == "AssetOrTimeSchedule"
    assert "seqops_curated" in str(dag.timetable.asset_condition)


def test_the_plugin_registers_the_report_link():
    """Airflow needs a custom operator's link registered (entry point ``airflow.plugins``)."""
    from airflow import plugins_manager

    links = {type(link).__name__ for link in plugins_manager.get_operator_extra_links()}
    assert "DriftReportLink" in links
    # (a source checkout also shows its seqops.egg-info: "already registered, skipping" is harmless)
    failures = {k: v for k, v in plugins_manager.get_import_errors().items() if "already registered" not in v}
    assert failures == {}
