"""`seqops forecast ...` refuses bad input with a clear error and an exit code, never a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from seqops.cli import app


def test_forecast_commands_name_what_is_wrong(home):
    from seqops.registry.tracking import init_tracking_store

    init_tracking_store(home)
    runner = CliRunner()
    bad_mode = runner.invoke(app, ["forecast", "route", "--mode", "bogus"])
    assert (
        bad_mode.exit_code == 2
        and "route mode 'bogus' is not one of champion, shadow, canary" in bad_mode.stderr
    )
    unknown = runner.invoke(app, ["forecast", "batch", "--dataset", "PJM"])
    assert unknown.exit_code == 2 and "unknown dataset 'PJM' (did you mean 'pjm'?)" in unknown.stderr
    no_model = runner.invoke(app, ["forecast", "batch", "--dataset", "pjm"])
    assert no_model.exit_code == 1 and "no model of 'pjm' to serve: register one" in no_model.stderr
    assert no_model.stderr.strip().endswith("(train_forecaster)")  # no empty problem list appended
    missing = runner.invoke(app, ["forecast", "show", "5"])
    assert missing.exit_code == 1 and "no logged forecast with id 5" in missing.stderr
