"""
### forecast_batch: every series' next H values, logged; actuals joined as they arrive

Runs whenever `materialize_features` announces fresh features (the `seqops_features` Asset), and
by hand. For each dataset the event names:

1. **forecast**: every series with a usable online window is forecast through the router (the
   same code as the online service: champion, shadow or canary, as the registry says) and each
   forecast is committed to the prediction log with its model version and feature timestamp;
2. **join_actuals**: forecasts whose horizon has arrived in the curated store get their actuals.

`seqops forecast batch` and `seqops forecast actuals` run the same functions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from seqops.dags.assets import FEATURES, requested_datasets


@dag(
    schedule=[FEATURES],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["seqops", "serving"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            None, type=["null", "string"], description="Only this dataset; empty = those the events name."
        ),
    },
    doc_md=__doc__,
)
def forecast_batch():
    @task
    def datasets(params=None, triggering_asset_events=None) -> list[str]:
        """The datasets to forecast: the param, else those the feature events name."""
        return requested_datasets(params, triggering_asset_events, "feature")

    @task
    def forecast(dataset: str) -> dict:
        """Forecast every series through the router; commit the forecasts to the prediction log."""
        from airflow.sdk.exceptions import AirflowSkipException

        from seqops.core.settings import get_settings
        from seqops.flows.forecast import batch_forecast
        from seqops.serving.router import ForecastError

        try:
            result = batch_forecast(get_settings(), dataset)
        except ForecastError as exc:
            if exc.problems:
                raise
            raise AirflowSkipException(str(exc)) from None  # no model registered yet
        print(result)
        return result

    @task
    def join_actuals(forecasted: dict) -> dict:
        """Join arrived actuals to logged forecasts."""
        from seqops.core.settings import get_settings
        from seqops.flows.forecast import join_actuals as join

        return join(get_settings(), forecasted["dataset"])

    join_actuals.expand(forecasted=forecast.expand(dataset=datasets()))


forecast_batch()
