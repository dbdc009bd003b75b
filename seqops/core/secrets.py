"""Secrets generated into ``SEQOPS_HOME/secrets`` on first use (mode 0600), never committed.

One place for every process that needs them: the launcher, the prediction service and the report
server all read the same files.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from seqops.core.settings import Settings


def stored_secret(settings: Settings, name: str, make: Callable[[], str]) -> str:
    """The secret ``name`` from home, made with ``make`` (and stored) the first time."""
    path = settings.secrets_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def admin_password(settings: Settings) -> str:
    """The login of every web surface: ``SEQOPS_ADMIN_PASSWORD``, else the generated one."""
    if settings.admin_password is not None:
        return settings.admin_password.get_secret_value()
    return stored_secret(settings, "admin_password", lambda: secrets.token_urlsafe(12))


def user_password(settings: Settings, user: str) -> str:
    """The Airflow login of ``user``: the admin's is :func:`admin_password`; every other user named
    in the settings (approvers, ``SEQOPS_AIRFLOW_USERS``) gets one generated into home."""
    if user == settings.admin_user:
        return admin_password(settings)
    return stored_secret(settings, f"airflow_password_{user}", lambda: secrets.token_urlsafe(12))
