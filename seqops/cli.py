"""The ``seqops`` command: one front door to every stage. Each command calls a plain function.

Heavy libraries are imported inside commands, so ``seqops --help`` answers at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from seqops.core.settings import Settings, get_settings

app = typer.Typer(
    help=(
        "seqops runs the life of LSTM forecasters over many time series: ingest and validate "
        "batches (Great Expectations), materialize features (Feast), train, backtest and register "
        "models (MLflow).\n\n"
        "Start the local platform with `make up` (or `seqops platform up`); ingest a file with "
        "`seqops ingest PATH`. State lives under SEQOPS_HOME (default: ~/.seqops)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
platform_app = typer.Typer(
    help="Start, stop and inspect the local platform (Airflow, MLflow).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Turn outside files into canonical batches in the landing zone.", no_args_is_help=True
)
features_app = typer.Typer(
    help="Feast features: window tables, apply, materialize, parity.", no_args_is_help=True
)
app.add_typer(platform_app, name="platform")
app.add_typer(import_app, name="import")
bench_app = typer.Typer(
    help="Public benchmarks (M4 Hourly, ETTh1) against the published numbers.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
forecast_app = typer.Typer(
    help="Forecasts: batch, actuals, one forecast's lineage, routing (champion, shadow, canary).",
    no_args_is_help=True,
)
app.add_typer(forecast_app, name="forecast")
drift_app = typer.Typer(
    help="Drift checks of the champion: run one, list them, show one, open its report.",
    no_args_is_help=True,
)
app.add_typer(drift_app, name="drift")
promote_app = typer.Typer(
    help="Promotion: where each challenger stands; approve or reject it (through Airflow); roll back.",
    no_args_is_help=True,
)
app.add_typer(promote_app, name="promote")
app.add_typer(bench_app, name="bench")


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="A canonical-format CSV or Parquet batch (series_id, timestamp with offset, value)."
        ),
    ],
    dataset: Annotated[str, typer.Option(help="Dataset whose policy applies (datasets.toml).")] = "default",
    interval_start: Annotated[
        str | None,
        typer.Option(help="Batch interval start (ISO 8601); default: from PATH.meta.json if present."),
    ] = None,
    interval_end: Annotated[str | None, typer.Option(help="Batch interval end, exclusive.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with a one-line JSON summary.")] = False,
) -> None:
    """Land, validate and publish one batch. Exit 0 when accepted, 1 when rejected (quarantined).

    Example: seqops ingest batch.csv --dataset pjm --json
    """
    from seqops.flows.ingest import ingest_file

    settings = get_settings()
    interval = (interval_start, interval_end) if (interval_start or interval_end) else None
    try:
        outcome = ingest_file(settings, path, dataset, interval=interval)
    except (FileNotFoundError, ValueError, TimeoutError) as exc:
        _say(f"error: {exc}")
        if as_json:
            typer.echo(json.dumps({"status": "error", "error": str(exc)}))
        raise typer.Exit(2) from exc
    _say(outcome.message)
    if as_json:
        typer.echo(json.dumps(outcome.summary()))
    raise typer.Exit(0 if outcome.accepted else 1)


@import_app.command("pjm")
def import_pjm_cmd(
    source: Annotated[
        Path | None,
        typer.Option(help="Folder of raw <ZONE>_hourly.csv[.gz] files (default: the shipped demo)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write batches (default: the landing zone's incoming folder for dataset pjm)."
        ),
    ] = None,
    period: Annotated[str, typer.Option(help="One batch per 'year', 'month' or 'all'.")] = "year",
) -> None:
    """Import raw PJM hourly-load files (mixed date formats, DST repeats, disorder) as batches."""
    from seqops.core.importers import import_pjm
    from seqops.core.resources import demo_dir
    from seqops.core.store import LandingZone

    settings = get_settings()
    source = source or demo_dir()
    out = out or LandingZone(settings).incoming("pjm")
    report = import_pjm(  # type: ignore[arg-type]
        source, out, period=period, tz=settings.dataset("pjm").source_timezone or "UTC"
    )
    _say(
        f"{report.rows_read} rows read, {report.rows_written} written in {len(report.batches)} "
        f"batches to {out}; repairs: {report.repairs}"
    )
    typer.echo(json.dumps(report.to_dict()))


@import_app.command("table")
def import_table_cmd(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file, long or wide.")],
    out: Annotated[Path, typer.Option(help="Canonical batch file to write (.csv or .parquet).")],
    layout: Annotated[
        str,
        typer.Option(
            help="'long' (series, timestamp, value columns) or 'wide' "
            "(a timestamp column and one column per series)."
        ),
    ] = "long",
    timestamp_column: Annotated[str, typer.Option()] = "timestamp",
    series_column: Annotated[str, typer.Option()] = "series_id",
    value_column: Annotated[str, typer.Option()] = "value",
    timezone: Annotated[str | None, typer.Option(help="Zone of naive timestamps, e.g. UTC.")] = None,
) -> None:
    """Convert a generic table to one canonical batch file (then `seqops ingest` it)."""
    from seqops.core.importers import SourceFormatError, import_table

    try:
        frame = import_table(
            path,
            layout=layout,
            timestamp_column=timestamp_column,  # type: ignore[arg-type]
            series_column=series_column,
            value_column=value_column,
            timezone=timezone,
        )
    except SourceFormatError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    frame = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.endswith(".parquet"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    _say(f"wrote {len(frame)} rows of {frame['series_id'].nunique()} series to {out}")


@platform_app.command("up")
def platform_up(
    demo: Annotated[bool, typer.Option(help="Load and ingest the PJM demo data.")] = True,
) -> None:
    """Initialise the home, start Airflow and MLflow on 127.0.0.1, ingest the demo, print URLs."""
    from seqops import platform

    settings = get_settings()
    try:
        platform.up(settings, demo=demo, progress=_say)
    except Exception as exc:
        _say(f"error: {exc}\nLogs: {settings.run_dir}. Stop what started with `{_stop_command(settings)}`.")
        raise typer.Exit(1) from exc
    password = platform.admin_password(settings)
    token_file = settings.secrets_dir / "serving_token"
    typer.echo(
        "\nseqops is up.\n"
        f"  Airflow UI : {platform.airflow_url(settings)}   login {settings.admin_user} / {password}\n"
        f"  MLflow UI  : {platform.mlflow_url(settings)}   login {settings.admin_user} / {password}\n"
        f"  Forecasts  : {platform.serving_url(settings)}   bearer token in {token_file}\n"
        f"  Drift      : {platform.drift_ui_url(settings)}   login {settings.admin_user} / {password}"
        " (Evidently UI; summaries under /reports/)\n"
        f"  home       : {settings.home}\n"
        f"Stop everything with `{_stop_command(settings)}`."
    )


def _stop_command(settings: Settings) -> str:
    return "make down" if settings.profile == "embedded" else "make down-production (or seqops platform down)"


@platform_app.command("down")
def platform_down() -> None:
    """Stop exactly the processes `platform up` started (by recorded pid)."""
    from seqops import platform

    stopped = platform.stop(get_settings(), progress=_say)
    typer.echo(f"stopped {len(stopped)} services" if stopped else "nothing was running")


@platform_app.command("status")
def platform_status() -> None:
    """Which services of this home are running."""
    from seqops import platform

    settings = get_settings()
    alive = platform.running(settings)
    for service in platform.services(settings):
        state = f"running (pid {alive[service.name]['pid']})" if service.name in alive else "stopped"
        typer.echo(f"{service.name:14s} {state}")


@platform_app.command("env")
def platform_env() -> None:
    """Print the environment (shell exports) to use the `airflow` CLI against this home."""
    from seqops import platform

    for key, value in platform.airflow_env(get_settings()).items():
        typer.echo(f"export {key}={json.dumps(value)}")


@features_app.command("build")
def features_build(dataset: Annotated[str, typer.Option(help="Curated dataset.")] = "pjm") -> None:
    """Cut every input window and target vector from the curated store into the window tables."""
    from seqops.flows.features import build

    typer.echo(json.dumps(build(get_settings(), dataset), default=str))


@features_app.command("apply")
def features_apply() -> None:
    """Apply the Feast declarations (feature_repo) to this home's registry (idempotent)."""
    from seqops.flows.features import apply

    typer.echo(json.dumps(apply(get_settings()), default=str))


@features_app.command("materialize")
def features_materialize(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    build: Annotated[
        bool, typer.Option(help="Rebuild the window tables from the curated store first.")
    ] = True,
) -> None:
    """Bring the online store up to date (incremental, never backwards), as materialize_features does."""
    from seqops.flows.features import refresh

    result = refresh(get_settings(), dataset, rebuild=build)
    if build:
        _say(json.dumps(result["build"], default=str))
    typer.echo(json.dumps(result["materialize"], default=str))


@features_app.command("parity")
def features_parity(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    sample: Annotated[int, typer.Option(help="How many (series, moment) samples to compare.")] = 200,
    seed: Annotated[int, typer.Option()] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="End with a one-line JSON result.")] = False,
) -> None:
    """Historical (training) vs online (serving) vectors, element by element. Exit 1 on a mismatch.

    Example: seqops features parity --sample 200
    """
    from seqops.flows.features import parity

    result = parity(get_settings(), dataset, sample, seed)
    typer.echo(result.summary())
    typer.echo(f"mismatches: {result.mismatched_elements}")
    for item in result.mismatches[:20]:
        typer.echo(f"  {item}")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
    raise typer.Exit(0 if result.ok else 1)


@forecast_app.command("batch")
def forecast_batch(
    dataset: Annotated[str, typer.Option(help="Dataset with materialized features.")] = "pjm",
    as_of: Annotated[
        str | None, typer.Option(help="Serving moment (ISO 8601 with offset); default now.")
    ] = None,
) -> None:
    """Forecast every series from its online window through the router; log them (the forecast_batch DAG)."""
    from datetime import datetime

    from seqops.flows.forecast import batch_forecast
    from seqops.serving.router import ForecastError

    moment = datetime.fromisoformat(as_of) if as_of else None
    try:
        result = batch_forecast(get_settings(), dataset, as_of=moment)
    except ForecastError as exc:
        which = f" ({', '.join(f'{s}: {why}' for s, why in exc.problems.items())})" if exc.problems else ""
        _say(f"error: {exc}{which}")
        raise typer.Exit(1) from exc
    except ValueError as exc:  # an undeclared dataset
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, default=str))


@forecast_app.command("actuals")
def forecast_actuals(dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm") -> None:
    """Join the actual values that have arrived to the logged forecasts."""
    from seqops.flows.forecast import join_actuals

    typer.echo(json.dumps(join_actuals(get_settings(), dataset)))


@forecast_app.command("show")
def forecast_show(prediction_id: Annotated[int, typer.Argument(help="Id of a logged forecast.")]) -> None:
    """One logged forecast and its lineage: model version, training run, data version."""
    from seqops.flows.forecast import show

    try:
        typer.echo(json.dumps(show(get_settings(), prediction_id), indent=2, default=str))
    except LookupError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc


@drift_app.command("check")
def drift_check(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    as_of: Annotated[
        str | None, typer.Option(help="End of the judged period (ISO 8601); default the newest data.")
    ] = None,
) -> None:
    """Run one drift check now (the monitor_drift DAG's check); prints its result as JSON.

    Exit 0 quiet or watching, 3 when it asks for a retrain (which only the DAG emits), 1 on error.
    """
    from seqops.flows.drift import check
    from seqops.monitoring.statistics import InsufficientReference

    try:
        result = check(get_settings(), dataset, as_of=as_of, progress=_say)
    except (LookupError, InsufficientReference) as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    except ValueError as exc:  # an undeclared dataset
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, default=str))
    raise typer.Exit(3 if result.get("retrain") else 0)


@drift_app.command("list")
def drift_list(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    limit: Annotated[int, typer.Option(help="How many of the latest checks.")] = 20,
) -> None:
    """The latest drift checks, newest first: period end, champion, drifted series, decision."""
    from seqops.flows.drift import history

    rows = history(get_settings(), dataset, limit=limit)
    if not rows:
        _say(f"no drift check of {dataset!r} yet (monitor_drift runs once a champion is approved)")
    for row in rows:
        typer.echo(
            f"{row['check_id']}  champion v{row['champion_version']}  input {row['input_drifted_series']}"
            f"/{row['series']}  error {row['error_drifted_series']}/{row['series']}  "
            f"{row['decision']:<9} run {row['mlflow_run_id']}"
        )


@drift_app.command("show")
def drift_show(
    check_id: Annotated[
        str | None, typer.Argument(help="Check id (from `drift list`); default the latest.")
    ] = None,
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
) -> None:
    """One check: its headline (what drifted, how sure, what happens next) and where its report is."""
    from seqops.flows.drift import show
    from seqops.monitoring.ui import report_url

    try:
        result = show(get_settings(), dataset, check_id)
    except LookupError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    typer.echo(result["headline"])
    typer.echo(f"report: {result['report']}")
    typer.echo(f"served: {report_url(get_settings(), dataset, result['check_id'])}")
    typer.echo(f"MLflow run: {result.get('mlflow_run_id')}")


@drift_app.command("open")
def drift_open(
    check_id: Annotated[str | None, typer.Argument(help="Check id; default the latest.")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
) -> None:
    """Open a check's report in the browser (the local file; the served copy asks for the login)."""
    import webbrowser

    from seqops.flows.drift import show

    try:
        result = show(get_settings(), dataset, check_id)
    except LookupError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    url = Path(result["report"]).resolve().as_uri()
    if not webbrowser.open(url):
        _say(f"no browser here; open {url}")
    typer.echo(url)


def _airflow_as(user: str | None, password: str | None):
    """An Airflow REST client logged in as ``user`` (default the admin; password from home/secrets)."""
    from seqops import platform
    from seqops.core.secrets import user_password
    from seqops.platform.airflow_client import AirflowClient

    settings = get_settings()
    user = user or settings.admin_user
    return AirflowClient(platform.airflow_url(settings), user, password or user_password(settings, user))


def _waiting_approval(client, dataset: str) -> dict | None:
    waiting = client.hitl_details("promote_forecaster", task_id="approval", response_received=False)
    mine = [h for h in waiting if h["subject"].startswith(f"Promote {dataset} challenger")]
    return mine[0] if mine else None


@promote_app.command("status")
def promote_status(dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm") -> None:
    """Champion, challenger, routing, the latest promote_forecaster runs and a waiting approval."""
    from seqops.platform.airflow_client import AirflowError
    from seqops.registry.registry import Registry, get_route

    settings = get_settings()
    registry = Registry(settings)
    out: dict = {"dataset": dataset}
    for alias in ("champion", "challenger", "previous_champion"):
        v = registry.by_alias(dataset, alias)
        out[alias] = (
            None
            if v is None
            else {
                "version": v.version,
                **{
                    k: v.tags.get(k)
                    for k in (
                        "validation_status",
                        "approved_by",
                        "approved_at",
                        "rejected_reason",
                        "trigger_reason",
                    )
                },
            }
        )
    route = get_route(registry, dataset)
    out["route"] = {"mode": route.mode, "canary_share": route.canary_share}
    try:
        client = _airflow_as(None, None)
        runs = client.dag_runs("promote_forecaster", limit=5)
        out["runs"] = []
        for run in runs:
            tis = client.task_instances("promote_forecaster", run["dag_run_id"])
            current = [
                t["task_id"]
                for t in tis
                if t["state"] in ("running", "deferred", "up_for_reschedule", "queued")
            ]
            out["runs"].append({"run_id": run["dag_run_id"], "state": run["state"], "at": current})
        waiting = _waiting_approval(client, dataset)
        out["waiting_approval"] = (
            None
            if waiting is None
            else {
                "run_id": waiting["task_instance"]["dag_run_id"],
                "subject": waiting["subject"],
                "assigned_users": [u["name"] for u in waiting["assigned_users"]],
            }
        )
    except AirflowError as exc:
        out["airflow"] = str(exc)
    typer.echo(json.dumps(out, indent=2, default=str))


def _answer(dataset: str, choice: str, user: str | None, password: str | None) -> None:
    from seqops.platform.airflow_client import AirflowError

    waiting = None
    try:
        client = _airflow_as(user, password)
        waiting = _waiting_approval(client, dataset)
        if waiting is None:
            _say(f"error: no promotion of {dataset!r} is waiting for approval (see `seqops promote status`)")
            raise typer.Exit(1)
        run_id = waiting["task_instance"]["dag_run_id"]
        for _ in range(3):
            waiting = client.settled_input("promote_forecaster", run_id, "approval")
            answer = client.respond("promote_forecaster", run_id, "approval", [choice])
            if not client.answer_lost(
                "promote_forecaster", run_id, "approval", waiting["task_instance"]["try_number"]
            ):
                break
        else:
            raise TimeoutError("Airflow lost the answer three times (the approval task kept restarting)")
    except TimeoutError as exc:
        _say(f"error: {exc}; see the run in the Airflow UI")
        raise typer.Exit(1) from exc
    except AirflowError as exc:
        if exc.status == 403:
            assigned = ", ".join(u["name"] for u in (waiting or {}).get("assigned_users", []))
            _say(
                f"error: {user or 'admin'} may not answer this approval; "
                f"assigned: {assigned} (SEQOPS_APPROVERS)"
            )
        else:
            _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"run_id": run_id, "subject": waiting["subject"], **answer}, default=str))


@promote_app.command("approve")
def promote_approve(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    user: Annotated[str | None, typer.Option(help="Airflow user answering (default the admin).")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="SEQOPS_AIRFLOW_PASSWORD", help="Its password.")
    ] = None,
) -> None:
    """Approve the waiting promotion: the same Airflow approval task the UI answers (one audit trail)."""
    _answer(dataset, "Approve", user, password)


@promote_app.command("reject")
def promote_reject(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    user: Annotated[str | None, typer.Option(help="Airflow user answering (default the admin).")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="SEQOPS_AIRFLOW_PASSWORD", help="Its password.")
    ] = None,
) -> None:
    """Reject the waiting promotion (the challenger is archived with the reason)."""
    _answer(dataset, "Reject", user, password)


@promote_app.command("rollback")
def promote_rollback(
    reason: Annotated[str, typer.Option(help="Why (recorded on the version rolled back from).")],
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    user: Annotated[str | None, typer.Option(help="Airflow user asking (default the admin).")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="SEQOPS_AIRFLOW_PASSWORD", help="Its password.")
    ] = None,
) -> None:
    """Move champion back to the last approved version before it (never "the previous number").

    Runs the rollback_forecaster DAG as USER and waits for it: the rollback is in Airflow's history
    with who asked and why, like a promotion.
    """
    from seqops.platform.airflow_client import AirflowError

    try:
        client = _airflow_as(user, password)
        run_id = client.trigger("rollback_forecaster", conf={"dataset": dataset, "reason": reason})
        state = client.wait_for_run("rollback_forecaster", run_id, timeout=600)
        if state != "success":
            _say(f"error: rollback_forecaster run {run_id} {state}; its log says why (Airflow UI)")
            raise typer.Exit(1)
    except AirflowError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    from seqops.registry.registry import CHAMPION, Registry

    champion = Registry(get_settings()).by_alias(dataset, CHAMPION)
    typer.echo(json.dumps({"run_id": run_id, "dataset": dataset, "champion": champion and champion.version}))


@forecast_app.command("route")
def forecast_route(
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "pjm",
    mode: Annotated[str | None, typer.Option(help="champion, shadow or canary; omit to show.")] = None,
    canary_share: Annotated[float, typer.Option(help="Share of series the canary serves.")] = 0.1,
) -> None:
    """Show or set how the router serves a dataset (the promotion flow sets it too)."""
    from seqops.registry.registry import Registry, Route, get_route, set_route

    registry = Registry(get_settings())
    if mode is not None:
        try:
            set_route(registry, dataset, Route(mode=mode, canary_share=canary_share))
        except ValueError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(2) from exc
    typer.echo(json.dumps(vars(get_route(registry, dataset))))


@app.command("replay")
def replay_cmd(
    dataset: Annotated[str, typer.Option(help="Dataset whose held-back data to land.")] = "pjm",
    steps: Annotated[int, typer.Option(help="Batches to land.")] = 7,
    hours: Annotated[int, typer.Option(help="Hours of data per batch.")] = 24,
    inline: Annotated[bool, typer.Option(help="Run each step in this process, without Airflow.")] = False,
    show: Annotated[bool, typer.Option("--status", help="Only say how much is left.")] = False,
) -> None:
    """Land the held-back end of the demo as live data, batch by batch, moving the platform clock.

    Through the running platform (Airflow ingests, materializes and forecasts each batch), or inline.
    Example: seqops replay --steps 7 --hours 24
    """
    from seqops.flows import replay as flow

    settings = get_settings()
    try:
        if show:
            typer.echo(json.dumps(flow.status(settings, dataset)))
            return
        if inline:
            for k in range(steps):
                result = flow.step_inline(settings, dataset, hours)
                if result is None:
                    _say("replay: nothing left to land")
                    break
                _say(f"replay step {k + 1}/{steps}: {json.dumps(result, default=str)}")
        else:
            from seqops import platform

            platform.replay(settings, dataset, steps=steps, hours=hours, progress=_say)
    except FileNotFoundError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(flow.status(settings, dataset)))


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default SEQOPS_SERVING_PORT, 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (default SEQOPS_SERVING_WORKERS, 1)."),
    ] = None,
) -> None:
    """Run the prediction service in the foreground on the configured host (127.0.0.1)."""
    import uvicorn

    from seqops.serving.app import create_app

    settings = get_settings()
    workers = workers or settings.serving_workers
    # No access log: a line per forecast costs more than the forecast's own logging; /metrics counts
    # requests by outcome and the prediction log holds every forecast.
    options = {"host": settings.host, "port": port or settings.serving_port, "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(settings), workers=1, **options)
    else:  # each worker process builds its own app from the same environment
        uvicorn.run("seqops.serving.app:create_app", factory=True, workers=workers, **options)


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset with materialized features.")] = "pjm",
    profile: Annotated[
        str, typer.Option(help="Hyperparameter profile (seqops.training.config).")
    ] = "default",
    max_epochs: Annotated[int, typer.Option()] = 30,
    time_budget_s: Annotated[float, typer.Option(help="Training wall-time budget in seconds.")] = 900,
    history_days: Annotated[int, typer.Option(help="How far back training origins reach.")] = 730,
    reason: Annotated[str, typer.Option(help="Why this training runs (recorded on the run).")] = "manual",
    fit_only: Annotated[
        bool, typer.Option("--fit-only", help="Train and log the run, no backtest or registration.")
    ] = False,
    result_file: Annotated[
        Path | None,
        typer.Option(help="Also write the result JSON here (a training pod: /airflow/xcom/return.json)."),
    ] = None,
) -> None:
    """Train, backtest and register a forecaster (what the train_forecaster DAG runs), with progress.

    With --fit-only it is the DAG's train step alone, as a KubernetesPodOperator pod runs it.
    """
    from seqops.flows import train as flow

    settings = get_settings()
    trained = flow.train(
        dataset,
        profile=profile,
        history_days=history_days,
        reason=reason,
        settings=settings,
        progress=_say,
        overrides={"max_epochs": max_epochs, "time_budget_s": time_budget_s},
    )
    if fit_only:
        text = json.dumps(trained, default=str)
        if result_file is not None:
            result_file.parent.mkdir(parents=True, exist_ok=True)
            result_file.write_text(text)
        typer.echo(text)
        return
    evaluated = flow.backtest(trained, settings=settings, progress=_say)
    typer.echo(json.dumps(flow.register(evaluated, settings=settings, progress=_say), default=str))


@app.command("backtest")
def backtest_cmd(
    data: Annotated[Path, typer.Option(help="Canonical long-format CSV or Parquet file.")],
    horizon: Annotated[int, typer.Option(help="H: steps forecast from each origin.")] = 24,
    season: Annotated[int, typer.Option(help="m: seasonal period in steps (24 for hourly).")] = 24,
    folds: Annotated[int, typer.Option(help="Rolling origins at the end of the data.")] = 4,
    time_budget_s: Annotated[float, typer.Option(help="Training wall-time budget.")] = 600,
    max_epochs: Annotated[int, typer.Option()] = 30,
    home: Annotated[Path | None, typer.Option(help="Fresh SEQOPS_HOME (default: a new temp dir).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with a one-line JSON result.")] = False,
) -> None:
    """Validate, build features, train and backtest on one file, in a fresh home.

    Prints the model against last-value naive and seasonal naive on the same folds (sMAPE as M4
    defines it, MASE, MAE,
    RMSE). Example: seqops backtest --data series.csv --horizon 24 --season 24 --json
    """
    from seqops.flows.backtest import backtest_file
    from seqops.flows.ingest import BatchRejected

    try:
        result = backtest_file(
            data,
            settings=get_settings(),
            horizon=horizon,
            season=season,
            folds=folds,
            home=home,
            time_budget_s=time_budget_s,
            max_epochs=max_epochs,
            progress=_say,
        )
    except BatchRejected as exc:
        _say(str(exc))
        raise typer.Exit(1) from exc
    except (FileNotFoundError, ValueError) as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from exc
    for name in ("model", "naive", "seasonal_naive"):
        scores = result[name]
        typer.echo(
            f"{name:15s} sMAPE {scores['smape']:8.3f}  MASE {scores['mase']:6.3f}  "
            f"MAE {scores['mae']:10.3f}  RMSE {scores['rmse']:10.3f}"
        )
    if as_json:
        typer.echo(json.dumps(result))


def _bench_data(name: str) -> Path:
    root = get_settings().bench_data_dir
    if root is None:
        _say(
            "error: no data folder: pass --data-dir, or set SEQOPS_BENCH_DATA_DIR to the folder "
            f"holding {name}/"
        )
        raise typer.Exit(2)
    return root / name


def _peer_names(peers: str) -> tuple[str, ...]:
    from seqops.training.peers import PEERS

    if peers in ("", "none"):
        return ()
    names = tuple(PEERS) if peers == "all" else tuple(p.strip() for p in peers.split(","))
    unknown = sorted(set(names) - set(PEERS))
    if unknown:
        _say(f"error: unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}, or all / none")
        raise typer.Exit(2)
    return names


_THREADS = typer.Option(help="torch threads per member (1 is fastest on a busy 2-core machine).")
_JOBS = typer.Option(min=1, help="Seeds trained at once, each in its own process.")


@bench_app.command("m4-hourly")
def bench_m4(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with Hourly-train.csv and Hourly-test.csv "
            "(default $SEQOPS_BENCH_DATA_DIR/m4_hourly)."
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            help="test (the official 48 points) or validation (each series' last 48 training points)."
        ),
    ] = "test",
    seeds: Annotated[
        int, typer.Option(min=1, help="Seeds: reported one by one, as mean and spread, and as an ensemble.")
    ] = 3,
    jobs: Annotated[int, _JOBS] = 1,
    peers: Annotated[
        str,
        typer.Option(
            help="Peers fitted in the same run: comma list of autoets, autotheta, mstl, lgbm; all; none."
        ),
    ] = "none",
    max_epochs: Annotated[int | None, typer.Option(help="Override the profile's epoch cap.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Report file (default $SEQOPS_HOME/benchmarks/m4_hourly.json).")
    ] = None,
    threads: Annotated[int, _THREADS] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="End with a one-line JSON result.")] = False,
) -> None:
    """The official M4 Hourly protocol: train on train, forecast 48; sMAPE, MASE, OWA as M4 defines them."""
    from seqops.training.bench import bench_m4_hourly
    from seqops.training.config import make_config

    if split not in ("test", "validation"):
        _say(f"error: --split must be test or validation, not {split!r}")
        raise typer.Exit(2)
    config = make_config("m4_hourly", **({"max_epochs": max_epochs} if max_epochs else {}))
    report = bench_m4_hourly(
        data_dir or _bench_data("m4_hourly"),
        split=split,  # type: ignore[arg-type]
        seeds=seeds,
        jobs=jobs,
        peers=_peer_names(peers),
        config=config,
        threads=threads,
        json_out=out or get_settings().home / "benchmarks" / f"m4_hourly_{split}.json",
        progress=_say,
    )
    scores, ratios = report["scores"], report["ratios_of_lstm_mean"]
    typer.echo(f"{'method':44s} {'sMAPE':>8s} {'MASE':>7s} {'OWA':>7s}   LSTM mean / method (sMAPE, MASE)")
    rows = {
        f"seqops LSTM, mean of {seeds} seeds": scores["lstm_mean"],
        "seqops LSTM, median ensemble": scores["lstm_ensemble"],
    }
    rows.update(
        {
            name: scores[name]
            for name in scores
            if name not in ("lstm_mean", "lstm_std", "lstm_seeds", "lstm_ensemble")
        }
    )
    rows.update(report["reference"] if split == "test" else {})
    for name, row in rows.items():
        ratio = ratios.get(name)
        tail = f"   {ratio['smape']:.3f}, {ratio['mase']:.3f}" if ratio else ""
        typer.echo(f"{name[:44]:44s} {row['smape']:8.3f} {row['mase']:7.3f} {row['owa']:7.3f}{tail}")
    if as_json:
        typer.echo(
            json.dumps({k: report[k] for k in ("scores", "reference", "ratios_of_lstm_mean")}, default=str)
        )


@bench_app.command("m4-select")
def bench_m4_select(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with Hourly-train.csv (default $SEQOPS_BENCH_DATA_DIR/m4_hourly)."),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Variants trained at once, each in its own process.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option(help="Report file (default $SEQOPS_HOME/benchmarks/m4_hourly_selection.json)."),
    ] = None,
    threads: Annotated[int, _THREADS] = 1,
) -> None:
    """Choose the M4 settings on validation only: the profile and one change at a time, lowest OWA wins."""
    from seqops.training.bench import select_m4_hourly

    report = select_m4_hourly(
        data_dir or _bench_data("m4_hourly"),
        jobs=jobs,
        threads=threads,
        json_out=out or get_settings().home / "benchmarks" / "m4_hourly_selection.json",
        progress=_say,
    )
    typer.echo(f"pick: {report['pick']}")


@bench_app.command("etth1")
def bench_etth1_cmd(
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with ETTh1.csv (default $SEQOPS_BENCH_DATA_DIR/ETTh1).")
    ] = None,
    horizons: Annotated[str, typer.Option(help="Comma-separated horizons.")] = "24,48,96,168,192,336,720",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per horizon.")] = 3,
    jobs: Annotated[int, _JOBS] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Report file (default $SEQOPS_HOME/benchmarks/etth1.json).")
    ] = None,
    threads: Annotated[int, _THREADS] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="End with a one-line JSON result.")] = False,
) -> None:
    """ETTh1 univariate OT, the Informer protocol: MSE / MAE on the z-scored scale, per horizon."""
    from seqops.training.bench import bench_etth1

    try:
        chosen = tuple(int(h) for h in horizons.split(","))
        if min(chosen) < 1:
            raise ValueError(horizons)
    except ValueError:
        _say(
            f"error: --horizons {horizons!r}: give positive whole numbers separated by commas, e.g. 24,48,96"
        )
        raise typer.Exit(2) from None
    report = bench_etth1(
        data_dir or _bench_data("ETTh1"),
        chosen,
        seeds=seeds,
        jobs=jobs,
        threads=threads,
        json_out=out or get_settings().home / "benchmarks" / "etth1.json",
        progress=_say,
    )
    typer.echo(
        f"{'H':>4s} {'seqops MSE':>11s} {'± sd':>7s} {'MAE':>7s} {'naive MSE':>10s} {'best paper MSE':>15s}"
    )
    for h, row in report["horizons"].items():
        best = min((p["mse"] for p in row["papers"].values()), default=float("nan"))
        typer.echo(
            f"{h:>4s} {row['lstm_mean']['mse']:11.4f} {row['lstm_std']['mse']:7.4f} "
            f"{row['lstm_mean']['mae']:7.4f} {row['naive']['mse']:10.4f} {best:15.3f}"
        )
    if as_json:
        keys = ("lstm_mean", "lstm_std", "lstm_ensemble", "naive", "seasonal_naive", "papers")
        typer.echo(
            json.dumps({h: {k: r[k] for k in keys} for h, r in report["horizons"].items()}, default=str)
        )


def main() -> None:
    """The ``seqops`` command: a setting that does not validate is named, not a traceback."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        for error in exc.errors():
            loc = "_".join(str(part) for part in error["loc"]).upper()
            where = f"SEQOPS_{loc}={error.get('input')!r}" if loc else "settings"
            _say(f"error: {where}: {error['msg']}")
        _say("fix the setting (environment or .env) and run the command again")
        sys.exit(2)
