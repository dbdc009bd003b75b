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
