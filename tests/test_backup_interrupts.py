"""`dbguard backup` interrupted while pg_dump runs: by SIGTERM, by Ctrl-C, by pg_terminate_backend of its own
session or of pg_dump's. Real processes and real sessions.

pg_dump is kept running deterministically by a lock: another session holds ACCESS EXCLUSIVE on a table
pg_dump must read (`b`, whose schema a scoped backup of `a` still dumps), so pg_dump waits for its ACCESS
SHARE lock for as long as the test wants.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from tests.test_backup_faults import assert_no_backup_written, dbguard_running, error_lines, stderr_of, wait_for
from tests.test_children import started_at
from tests.warehouse import ADMIN_URL, scratch_database


@pytest.fixture
def two_tables() -> Iterator[str]:
    with scratch_database("dbguard_interrupt") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE a (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 1000) i")
            conn.execute("CREATE TABLE b (id int PRIMARY KEY)")
            conn.execute("INSERT INTO b SELECT generate_series(1, 10)")
        yield url


class BackupWaiting(NamedTuple):
    process: subprocess.Popen[bytes]
    blocker: psycopg.Connection[tuple[object, ...]]


def holding(url: str, table: str) -> psycopg.Connection[tuple[object, ...]]:
    """A session holding ACCESS EXCLUSIVE on `table` until it is closed or rolled back."""
    conn = psycopg.connect(url)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def backend(url: str, application: str, *, waiting_for_a_lock: bool = False) -> int | None:
    """The pid of the server session of `application` (dbguard or pg_dump) in the database of `url`."""
    database = url.rsplit("/", 1)[1]
    # a client's own session, not the parallel workers its hashing query may start (they share its name)
    query = ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
             "AND backend_type = 'client backend'")  # fmt: skip
    if waiting_for_a_lock:
        query += " AND wait_event_type = 'Lock'"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(query, (database, application)).fetchone()
    return int(row[0]) if row else None


def terminate(pid: int) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def descendants(pid: int) -> dict[int, tuple[str, str]]:
    """Every process below `pid`: pid -> (start time, program name)."""
    found: dict[int, tuple[str, str]] = {}
    pending = [pid]
    while pending:
        for listing in Path(f"/proc/{pending.pop()}/task").glob("*/children"):
            try:
                pids = [int(child) for child in listing.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in pids:
                started = started_at(child)
                try:
                    name = Path(f"/proc/{child}/comm").read_text().strip()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if started is not None:
                    found[child] = (started, name)
                    pending.append(child)
    return found


def survivors(below: dict[int, tuple[str, str]]) -> list[str]:
    return [f"{name} ({pid})" for pid, (started, name) in below.items() if started_at(pid) == started]


@contextmanager
def backup_waiting(url: str, store_dir: Path, table: str, session: str) -> Iterator[BackupWaiting]:
    """`dbguard backup --tables a` under way, its `session` (dbguard's or pg_dump's) waiting for a lock on
    `table`, which another session holds until the block ends (or it rolls back)."""
    blocker = holding(url, table)
    try:
        with dbguard_running("backup", "--db", url, "--tables", "a", "--backup-dir", str(store_dir)) as process:
            wait_for(f"{session}'s session waiting for its lock",
                     lambda: backend(url, session, waiting_for_a_lock=True), process)  # fmt: skip
            yield BackupWaiting(process, blocker)
    finally:
        blocker.close()


def no_session_left(url: str, application: str) -> bool:
    deadline = time.monotonic() + 10
    while backend(url, application) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(("how", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_an_interrupt_stops_pg_dump_and_leaves_nothing(
    two_tables: str, tmp_path: Path, how: signal.Signals, exit_code: int
) -> None:
    store_dir = tmp_path / "backups"
    with backup_waiting(two_tables, store_dir, "b", "pg_dump") as (process, _):
        below = descendants(process.pid)
        assert "pg_dump" in {name for _, name in below.values()}, below
        process.send_signal(how)
        stderr = stderr_of(process)
    assert process.returncode == exit_code, stderr
    assert survivors(below) == [], "a child of dbguard outlived it"
    assert no_session_left(two_tables, "pg_dump"), "pg_dump's server session outlived it"
    assert "Traceback" not in stderr
    assert_no_backup_written(store_dir)


def test_a_terminated_session_while_hashing_is_a_backup_failure(two_tables: str, tmp_path: Path) -> None:
    """dbguard's own session, counting and hashing `a` (blocked by the lock), is ended by the server."""
    store_dir = tmp_path / "backups"
    with backup_waiting(two_tables, store_dir, "a", "dbguard") as (process, _):
        session = backend(two_tables, "dbguard")
        assert session is not None
        terminate(session)
        stderr = stderr_of(process)
    assert process.returncode == 5, stderr
    assert error_lines(stderr) == [
        f"dbguard: error: the connection to {two_tables.rsplit('/', 1)[1]} was lost during the backup "
        "(terminating connection due to administrator command); no backup was written"
    ]
    assert_no_backup_written(store_dir)


@pytest.mark.parametrize("whose", ["dbguard", "pg_dump"])
def test_a_terminated_session_while_pg_dump_runs_is_a_backup_failure(
    two_tables: str, tmp_path: Path, whose: str
) -> None:
    """dbguard's session holds the snapshot the dump describes (and, under `run`, the locks): once it is
    gone, what pg_dump goes on to write is no backup. pg_dump's own session ending is a failed dump."""
    store_dir = tmp_path / "backups"
    with backup_waiting(two_tables, store_dir, "b", "pg_dump") as (process, blocker):
        session = backend(two_tables, whose)
        assert session is not None
        terminate(session)
        blocker.rollback()  # pg_dump goes on (or finds its session gone)
        stderr = stderr_of(process)
    assert process.returncode == 5, stderr
    (line,) = error_lines(stderr)
    if whose == "dbguard":
        assert "was lost during the backup" in line and "no backup was written" in line, line
    else:
        assert line == (
            "dbguard: error: pg_dump failed: query failed: FATAL: terminating connection due to "
            "administrator command; no backup was written"
        ), line
    assert_no_backup_written(store_dir)
