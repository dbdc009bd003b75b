"""
### train_forecaster: train, backtest and register an LSTM forecaster

Runs weekly (Sunday 03:00 UTC), whenever a retrain is requested through the `seqops_retrain` Asset
(drift, or `POST /api/v2/assets/events`), and on demand (Trigger DAG, with `dataset` and
`profile` params). One run at a time; one training per dataset the retrain events name.

0. **features_ready**: a gate; when the dataset has no materialized features yet (a fresh
   install), the run is skipped with the reason instead of failing.
1. **train**: a training set from the Feast *training* feature service (historical retrieval, point
   in time), a global LSTM with early stopping; every epoch's losses go to the MLflow run, and a
   retried task resumes from its checkpoint. The run (and later the registered version) records its
   trigger: `manual`, the schedule, or the drift check's reason and report (`monitor_drift`). On
   Kubernetes (`SEQOPS_TRAINING_POD_TEMPLATE`) this step is a KubernetesPodOperator pod on the GPU
   node pool (`seqops train --fit-only`); the steps around it stay in the workers.
2. **backtest**: the model, last-value naive and seasonal naive on the same rolling origins after the training
   data (sMAPE, MASE, MAE, RMSE), with a forecast-vs-actual plot in the run's `backtest/` artifacts.
3. **register**: a new version of `seqops-forecaster-<dataset>`, tagged with its backtest metrics,
   data snapshot and range and `validation_status=pending_approval`; it becomes the `challenger`
   alias, and emits the `seqops_challenger` Asset: `promote_forecaster` takes it from there. Only
   promotion (with a person's approval) moves `champion`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task, task_group

from seqops.core.settings import get_settings
from seqops.dags.assets import CHALLENGER, RETRAIN

_settings = get_settings()  # light: this deployment's training defaults (SEQOPS_TRAIN_*)


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC"), assets=[RETRAIN]
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "training"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "dataset": Param("pjm", type="string", description="Dataset to train on (materialized features)."),
        "profile": Param(
            "default", type="string", description="Hyperparameter profile (seqops.training.config)."
        ),
        "max_epochs": Param(
            _settings.train_max_epochs, type="integer", minimum=1, description="Upper bound on epochs."
        ),
        "time_budget_s": Param(
            _settings.train_time_budget_s,
            type="integer",
            minimum=10,
            description="Training wall-time budget.",
        ),
        "history_days": Param(
            730, type="integer", minimum=7, description="Training origins reach back this far."
        ),
    },
    doc_md=__doc__,
)
def train_forecaster():
    @task
    def requests(params=None, triggering_asset_events=None) -> list[dict]:
        """What to train and why: one request per dataset the retrain events name, else the params.

        Several datasets drifting together each get their own training (mapped below).
        """
        from seqops.dags.assets import datasets_of

        params = params or {}
        wanted: dict[str, dict] = {}
        for events in (triggering_asset_events or {}).values():
            for event in events:
                extra = event.extra or {}
                for dataset in datasets_of(extra):
                    per = (extra.get("requests") or {}).get(dataset, {})
                    wanted.setdefault(  # the first request's reason wins; later ones are absorbed
                        dataset,
                        {
                            "reason": per.get("reason") or extra.get("reason", "retrain-asset"),
                            "report": per.get("report") or extra.get("report"),
                        },
                    )
        if not wanted:
            wanted[params["dataset"]] = {"reason": "manual", "report": None}
        return [{"dataset": d, **r} for d, r in sorted(wanted.items())]

    @task_group
    def each_dataset(req: dict):
        @task
        def features_ready(req: dict) -> str:
            """Gate: skip this dataset's training (with the reason) when it has no materialized features.

            A skip, not a short-circuit: the skip propagates to this map index only.
            """
            from airflow.sdk.exceptions import AirflowSkipException

            from seqops.core.settings import get_settings
            from seqops.flows.train import features_ready as check

            ready, why = check(req["dataset"], settings=get_settings())
            if not ready:
                raise AirflowSkipException(why)
            return why

        @task(execution_timeout=timedelta(hours=3))
        def train(req: dict, params=None) -> dict:
            """Feast training set -> fit (progress per epoch) -> MLflow run with the model."""
            from seqops.core.settings import get_settings
            from seqops.flows.train import train as run_training

            params = params or {}
            overrides = {"max_epochs": params["max_epochs"], "time_budget_s": params["time_budget_s"]}
            return run_training(
                req["dataset"],
                profile=params["profile"],
                overrides=overrides,
                history_days=params["history_days"],
                reason=req["reason"],
                trigger_report=req.get("report"),
                settings=get_settings(),
            )

        @task
        def pod_arguments(req: dict, params=None) -> list[str]:
            """The training pod's `seqops train --fit-only` arguments for this dataset and run."""
            params = params or {}
            return [
                "train", "--fit-only", "--result-file", "/airflow/xcom/return.json",
                "--dataset", req["dataset"], "--profile", params["profile"],
                "--max-epochs", str(params["max_epochs"]), "--time-budget-s", str(params["time_budget_s"]),
                "--history-days", str(params["history_days"]), "--reason", req["reason"],
            ]  # fmt: skip

        @task
        def backtest(trained: dict) -> dict:
            """Model vs naive and seasonal naive on the same folds; metrics and plot into the same run."""
            from seqops.core.settings import get_settings
            from seqops.flows.train import backtest as run_backtest

            return run_backtest(trained, settings=get_settings())

        @task(outlets=[CHALLENGER])
        def register(evaluated: dict, outlet_events=None) -> dict:
            """New registry version with its evidence as tags; alias challenger, pending approval.

            Emits the challenger Asset, which starts promote_forecaster.
            """
            from seqops.core.settings import get_settings
            from seqops.flows.train import register as run_register

            result = run_register(evaluated, settings=get_settings())
            dataset = evaluated["plan"]["dataset"]
            outlet_events[CHALLENGER].extra = {"datasets": [dataset], "version": result["version"]}
            return result

        if _settings.training_pod_template is None:
            trained = train(req)
        else:  # on Kubernetes: the fit runs in its own pod (a GPU node), the rest in the workers
            trained = _training_pod(pod_arguments(req)).output
        features_ready(req) >> trained
        register(backtest(trained))

    each_dataset.expand(req=requests())


def _training_pod(arguments):
    """The train step as a KubernetesPodOperator pod from SEQOPS_TRAINING_POD_TEMPLATE (its image, GPU
    request, node selector and tolerations); the pod's result comes back as the task's XCom."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    return KubernetesPodOperator(
        task_id="train",
        pod_template_file=str(_settings.training_pod_template),
        cmds=["seqops"],
        arguments=arguments,
        do_xcom_push=True,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        execution_timeout=timedelta(hours=3),
    )


train_forecaster()
