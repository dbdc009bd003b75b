"""The drift report server: the Evidently UI and the seqops summary pages, behind one login.

The OSS Evidently UI has no login of its own (its secret guards writes only), so it is not started
as its own server on a port anyone on the machine could open: its ASGI app is built in this process
and mounted behind HTTP Basic authentication with the platform's admin login (the same as Airflow
and MLflow). ``/reports/<dataset>/<check>/`` serves each check's self-contained pages; ``/healthz``
answers without a login and says nothing but status. Started by ``make up`` on 127.0.0.1
(``SEQOPS_EVIDENTLY_PORT``, 8001), telemetry off.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from seqops.core.secrets import admin_password, stored_secret
from seqops.core.settings import Settings, get_settings

REALM = "seqops drift reports"


def _evidently_app(settings: Settings) -> Any:
    """Evidently's own UI app over the workspace, its write routes guarded by a generated secret."""
    from evidently.ui.service.app import create_app, get_config

    workspace = settings.drift_dir / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    secret = stored_secret(settings, "evidently_secret", lambda: secrets.token_urlsafe(24))
    return create_app(get_config(workspace=str(workspace), secret=secret))


class BasicAuth:
    """ASGI middleware: every HTTP request but ``/healthz`` needs the admin login."""

    def __init__(self, app: Any, user: str, password: str) -> None:
        self.app, self.user, self.password = app, user, password

    def _ok(self, header: bytes | None) -> bool:
        if not header or not header.startswith(b"Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.user) & secrets.compare_digest(password, self.password)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            headers = dict(scope.get("headers") or [])
            if not self._ok(headers.get(b"authorization")):
                from starlette.responses import PlainTextResponse

                response = PlainTextResponse(
                    "log in with the seqops admin user (see `seqops platform status`)",
                    status_code=401,
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, password: str | None = None) -> Any:
    """The report server's ASGI app (``uvicorn --factory seqops.monitoring.ui:create_app``)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    settings = settings or get_settings()
    reports = settings.drift_dir
    reports.mkdir(parents=True, exist_ok=True)

    async def healthz(_request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Mount("/reports", StaticFiles(directory=str(reports), html=True)),
            Mount("/", _evidently_app(settings)),
        ]
    )
    return BasicAuth(app, settings.admin_user, password or admin_password(settings))


def report_url(settings: Settings, dataset: str, check_id: str) -> str:
    """Where a check's summary page is served (behind the login)."""
    return f"http://{settings.host}:{settings.evidently_port}/reports/{dataset}/{check_id}/summary.html"
