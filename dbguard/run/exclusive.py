"""One `run` per target at a time.

PostgreSQL: a session-level advisory lock on the run's own connection, keyed on the database's name
(`pg_try_advisory_lock`, "Advisory Locks" in the PostgreSQL docs' "Explicit Locking" chapter). It lasts
across the run's transactions and goes with the session: a crashed run cannot leave it behind.
SQLite: an exclusive `flock` on a lock file beside the database, released by the kernel when the process
ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dbguard.errors import ConnectionFailure
from dbguard.targets.postgres import PostgresTarget
from dbguard.targets.url import DatabaseUrl

_KEY = "SELECT hashtextextended('dbguard run ' || current_database(), 0)"
_HOLDER = """
SELECT a.pid, a.application_name, extract(epoch FROM now() - a.backend_start)::int
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database
                                                             WHERE datname = current_database())
  AND l.classid = ((%(key)s >> 32) & 4294967295)::oid AND l.objid = (%(key)s & 4294967295)::oid AND l.objsubid = 1"""


@contextmanager
def postgres_run_lock(target: PostgresTarget) -> Iterator[None]:
    """Hold the target's run lock on `target.conn` for the block; another run holding it: exit 4."""
    conn = target.conn
    row = conn.execute(_KEY).fetchone()
    key = int(row[0]) if row else 0
    granted = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    if not conn.autocommit:
        conn.commit()  # the lock is the session's, not the transaction's: end the one the query began
    if not (granted and granted[0]):
        holder = conn.execute(_HOLDER, {"key": key}).fetchone()
        if not conn.autocommit:
            conn.rollback()
        who = f" (backend pid {holder[0]}, {holder[1] or 'no application name'}, for {holder[2]} s)" if holder else ""
        raise ConnectionFailure(f"another dbguard run is running on {target.url.database}{who}: wait for it to end")
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            try:
                if conn.info.transaction_status != conn.info.transaction_status.IDLE:
                    conn.rollback()
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])
                if not conn.autocommit:
                    conn.commit()
            except Exception:  # the session ends with the connection: so does the lock
                pass


@contextmanager
def sqlite_run_lock(url: DatabaseUrl) -> Iterator[Path]:
    """Hold `<database>.dbguard-run.lock` exclusively for the block; another run holding it: exit 4."""
    path = url.sqlite_path.with_name(url.sqlite_path.name + ".dbguard-run.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise ConnectionFailure(f"cannot create the run lock {path}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise ConnectionFailure(
                f"another dbguard run is running on {url.sqlite_path} (pid {holder or 'unknown'}): wait for it to end"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race with a waiting run)
