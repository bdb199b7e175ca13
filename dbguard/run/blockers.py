"""Who makes the run wait for a lock: a watcher on a connection of its own polls `pg_blocking_pids` of
the run's backend ("Lock waits" in the PostgreSQL docs' "System Information Functions") and names the
blocking sessions: pid, application, state and age. Never their query text, which can hold data. A lock
not granted within a `lock_timeout` shorter than the watcher's poll is named afterwards by `lock_holders`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from types import TracebackType

import psycopg

from dbguard.journal.entries import LockWait
from dbguard.targets import postgres
from dbguard.targets.url import DatabaseUrl

POLL_SECONDS = 0.5
_BLOCKERS = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), 'no application name'), coalesce(a.state, 'unknown'),
       extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::int
FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.pid"""
# Sessions holding a lock on the tables that conflicts with EXCLUSIVE (all but ACCESS SHARE and ROW SHARE).
_HOLDERS = """
SELECT DISTINCT a.pid, coalesce(nullif(a.application_name, ''), 'no application name'), coalesce(a.state, 'unknown'),
       extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::int
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_class c ON c.oid = l.relation
     JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.mode NOT IN ('AccessShareLock', 'RowShareLock') AND n.nspname || '.' || c.relname = ANY(%s)
ORDER BY a.pid"""


def describe(rows: Sequence[Sequence[object]]) -> str:
    """'pid 123 (nightly import, idle in transaction, 4 s); ...' from (pid, application, state, age) rows."""
    return "; ".join(f"pid {pid} ({app}, {state}, {age} s)" for pid, app, state, age in rows)


def lock_holders(conn: psycopg.Connection[tuple[object, ...]], tables: Sequence[str]) -> str:
    """The sessions holding locks on `tables` (canonical names) that EXCLUSIVE waits for, described; "" if
    none is left. Runs a query on `conn`: call it outside the run's transaction."""
    return describe(conn.execute(_HOLDERS, [list(tables)]).fetchall())


class BlockerWatch:
    """While the block runs, report each change in who blocks `backend_pid` through `say`, and collect
    the waits (per statement, as `statement()` names it) for the journal."""

    def __init__(self, url: DatabaseUrl, backend_pid: int, say: Callable[[str], None],
                 statement: Callable[[], int]) -> None:  # fmt: skip
        self.url, self.backend_pid, self.say, self.statement = url, backend_pid, say, statement
        self.waits: list[LockWait] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dbguard lock watch", daemon=True)

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        try:
            with closing(postgres.connect(self.url, autocommit=True, application_name="dbguard lock watch",
                                          read_only=True).conn) as conn:  # fmt: skip
                self._poll(conn)
        except Exception:
            return

    def _poll(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        waiting_since: float | None = None
        seen: tuple[int, ...] = ()
        while not self._stop.wait(POLL_SECONDS):
            rows = conn.execute(_BLOCKERS, [self.backend_pid]).fetchall()
            pids = tuple(int(str(row[0])) for row in rows)
            if pids and waiting_since is None:
                waiting_since = time.monotonic()
            if pids and pids != seen:
                self.say(f"waiting for a lock held by {describe(rows)}")
            if not pids and waiting_since is not None:
                self._record(waiting_since, seen)
                waiting_since = None
            seen = pids
        if waiting_since is not None:
            self._record(waiting_since, seen)

    def _record(self, since: float, pids: tuple[int, ...]) -> None:
        seconds = round(time.monotonic() - since + POLL_SECONDS / 2, 2)
        self.waits.append(LockWait(statement=self.statement(), seconds=seconds, blocking_pids=pids))
