"""The one custom operator: a drift check whose task page links to its report. Light at import.

A TaskFlow task cannot carry an operator extra link, so the drift check is a small operator; the
link is registered with Airflow by the ``seqops`` plugin (``seqops.dags.plugin``, an
``airflow.plugins`` entry point), as Airflow requires for links of custom operators.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

REPORT_URL_KEY = "report_url"


class DriftReportLink(BaseOperatorLink):
    """ "Drift report" on the task's page: the check's summary, served behind the platform login."""

    name = "Drift report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.bases.xcom import BaseXCom

        return BaseXCom.get_value(ti_key=ti_key, key=REPORT_URL_KEY) or ""


class DriftCheckOperator(BaseOperator):
    """Run one drift check of ``dataset`` (``seqops.flows.drift.check``); returns its summary.

    The summary (XCom) names the decision, the drifted series and the report; the task's
    "Drift report" link opens the report.
    """

    operator_extra_links = (DriftReportLink(),)
    template_fields = ("dataset",)

    def __init__(self, *, dataset: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset

    def execute(self, context: Any) -> dict:
        from seqops.core.settings import get_settings
        from seqops.flows.drift import check
        from seqops.monitoring.ui import report_url

        settings = get_settings()
        result = check(settings, self.dataset, progress=self.log.info)
        if "check_id" in result:
            result["report_url"] = report_url(settings, self.dataset, result["check_id"])
            context["ti"].xcom_push(key=REPORT_URL_KEY, value=result["report_url"])
        return result
