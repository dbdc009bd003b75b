"""The seqops Airflow plugin (entry point ``airflow.plugins``): registers the drift report link."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from seqops.dags.operators import DriftReportLink


class SeqopsPlugin(AirflowPlugin):
    name = "seqops"
    operator_extra_links = [DriftReportLink()]
