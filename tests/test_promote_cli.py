"""`seqops promote ...` without a running platform: a clear error and exit 1, not a traceback."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from seqops.cli import app


@pytest.fixture()
def closed_port(home, monkeypatch) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once the socket closes
    monkeypatch.setenv("SEQOPS_AIRFLOW_PORT", str(port))
    return port


@pytest.mark.parametrize("args", [["approve"], ["reject"], ["rollback", "--reason", "regressed"]])
def test_without_airflow_the_answer_says_where_it_looked_and_what_to_do(args, closed_port):
    result = CliRunner().invoke(app, ["promote", *args])
    assert result.exit_code == 1
    assert f"cannot reach Airflow at http://127.0.0.1:{closed_port}" in result.stderr
    assert "start the platform with `make up`" in result.stderr


def test_status_still_shows_the_registry_when_airflow_is_down(closed_port):
    result = CliRunner().invoke(app, ["promote", "status"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["champion"] is None and status["route"] == {"mode": "champion", "canary_share": 0.1}
    assert status["airflow"].startswith(f"cannot reach Airflow at http://127.0.0.1:{closed_port}")
