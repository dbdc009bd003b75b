"""Named locks across processes: a PostgreSQL advisory lock in the production profile (two workers
racing on a read-modify-write), a file lock in the embedded one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seqops.core.settings import Settings

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from seqops.core.locks import named_lock
    from seqops.core.settings import Settings

    home, url, counter, guarded = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
    settings = Settings(home=home, prediction_log_url=url or None)

    def add_one():  # read, pause, write (atomically: a reader never sees half a number)
        n = int(counter.read_text()); time.sleep(0.004)
        part = counter.with_name(f"{counter.name}.{os.getpid()}"); part.write_text(str(n + 1))
        os.replace(part, counter)

    for _ in range(25):
        if guarded:
            with named_lock(settings, "counter"):
                add_one()
        else:
            add_one()
    """
)


def _race(tmp_path: Path, url: str, *, guarded: bool) -> int:
    """Two worker processes each add 1 to a counter 25 times (read, pause, write)."""
    counter = tmp_path / f"counter-{guarded}"
    counter.write_text("0")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "home"), url, str(counter), "1" if guarded else "0"]
        )
        for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    return int(counter.read_text())


@pytest.mark.services
def test_a_postgres_advisory_lock_serialises_two_racing_workers(servers, tmp_path):
    url = "postgresql+psycopg://" + servers[0].removeprefix("postgresql://")
    assert _race(tmp_path, url, guarded=False) < 50  # the race is real: updates get lost unguarded
    assert _race(tmp_path, url, guarded=True) == 50  # under the lock none is


@pytest.mark.services
def test_a_held_lock_times_out_naming_it_and_a_dead_holder_releases_it(servers, tmp_path):
    from seqops.core.locks import lock_database, named_lock

    settings = Settings(home=tmp_path / "home", prediction_log_url=servers[0])
    assert lock_database(settings) == servers[0]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from seqops.core.locks import named_lock\nfrom seqops.core.settings import Settings\n"
            f"s = Settings(home={str(tmp_path / 'home')!r}, prediction_log_url={servers[0]!r})\n"
            "with named_lock(s, 'registry-aliases'):\n    print('held', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TimeoutError, match="lock 'registry-aliases' still held by another process"):
            with named_lock(settings, "registry-aliases", timeout=0.5):
                pass
    finally:
        holder.kill()  # dies holding it: its connection closes and PostgreSQL releases the lock
        holder.wait(timeout=30)
    with named_lock(settings, "registry-aliases", timeout=10):
        pass


@pytest.mark.services
def test_a_lock_whose_connection_dropped_does_not_fail_the_work_it_guarded(servers, tmp_path):
    import psycopg

    from seqops.core.locks import named_lock

    settings = Settings(home=tmp_path / "home", prediction_log_url=servers[0])
    with named_lock(settings, "dropped"):  # the database restarts, or ends the idle session
        with psycopg.connect(servers[0], autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
                " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('seqops:dropped', 0)"
            ).fetchall()
            assert ended == [(True,)]  # the holder's own session, ended under it
    with named_lock(settings, "dropped", timeout=5):  # PostgreSQL released it with the connection
        pass


def test_the_embedded_profile_locks_with_a_file_under_home(tmp_path):
    from seqops.core.locks import lock_database

    settings = Settings(home=tmp_path / "home")
    assert lock_database(settings) is None
    assert _race(tmp_path, "", guarded=True) == 50
    assert (settings.run_dir / "counter.lock").exists()
