"""Named locks that hold across machines.

Where the deployment has a PostgreSQL database (the production profile: the prediction log's), a
lock is a PostgreSQL session advisory lock: every worker of every machine that shares the database
waits for it, and a holder that dies releases it with its connection. The embedded profile runs on
one machine: a file lock under home does the same there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from seqops.core.settings import Settings


def lock_database(settings: Settings) -> str | None:
    """The libpq URL of the PostgreSQL database that holds the locks, or None (file locks)."""
    if settings.prediction_log_url is None:
        return None
    url = settings.prediction_log_url.get_secret_value()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        return None
    return f"postgresql://{rest}"  # an SQLAlchemy URL names its driver (postgresql+psycopg); libpq not


@contextmanager
def named_lock(settings: Settings, name: str, *, timeout: float = 120.0) -> Iterator[None]:
    """Hold the lock ``name`` for the block; wait at most ``timeout`` seconds for it.

    Raises:
        TimeoutError: another process held it all that time (the message names the lock).
    """
    database = lock_database(settings)
    if database is None:
        from filelock import FileLock, Timeout

        settings.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(settings.run_dir / f"{name}.lock"), timeout=timeout):
                yield
        except Timeout as exc:
            raise TimeoutError(f"lock {name!r} still held by another process after {timeout:g} s") from exc
        return
    import psycopg

    key = f"seqops:{name}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
        try:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        except psycopg.errors.LockNotAvailable as exc:
            raise TimeoutError(f"lock {name!r} still held by another process after {timeout:g} s") from exc
        try:
            yield
        finally:
            # a dropped connection already released the lock; its error must not fail the block's work
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
