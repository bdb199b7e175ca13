"""Who makes the run wait for a lock: a watcher on a connection of its own polls `pg_blocking_pids` of
the run's backend ("Lock waits" in the PostgreSQL docs' "System Information Functions") and names the
blocking sessions: pid, application, state and age. Never their query text, which can hold data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
                who = "; ".join(f"pid {pid} ({app}, {state}, {age} s)" for pid, app, state, age in rows)
                self.say(f"waiting for a lock held by {who}")
            if not pids and waiting_since is not None:
                self._record(waiting_since, seen)
                waiting_since = None
            seen = pids
        if waiting_since is not None:
            self._record(waiting_since, seen)

    def _record(self, since: float, pids: tuple[int, ...]) -> None:
        seconds = round(time.monotonic() - since + POLL_SECONDS / 2, 2)
        self.waits.append(LockWait(statement=self.statement(), seconds=seconds, blocking_pids=pids))
