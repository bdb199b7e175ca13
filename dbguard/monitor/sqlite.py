"""`verify`'s checks on a SQLite file opened read-only (mode=ro: SQLite itself refuses every write).

- `PRAGMA integrity_check` (with `sample_percent`: `PRAGMA quick_check`, which skips the check that every
  index matches its table; SQLite cannot read a sample of pages);
- `PRAGMA foreign_key_check`, table by table;
- every CHECK clause of every table, re-evaluated row by row (SQLite does not: integrity_check leaves them
  out, and `PRAGMA ignore_check_constraints` lets violating rows in).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from functools import partial

from dbguard.monitor.model import CheckOutcome, Status
from dbguard.monitor.runner import PlannedCheck
from dbguard.targets.sqlite import SAMPLE_LIMIT, SqliteTarget, check_clauses, quote_identifier

_PROGRESS_STEPS = 10_000  # SQLite virtual machine instructions between two looks at the clock


def planned_checks(target: SqliteTarget, sample_percent: float | None) -> list[PlannedCheck]:
    conn = target.conn
    pragma = "quick_check" if sample_percent is not None else "integrity_check"
    checks = [PlannedCheck(pragma, "main", None, lambda: _integrity(conn, pragma))]
    create_sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    for table in target.all_tables():
        if conn.execute(f"PRAGMA foreign_key_list({quote_identifier(table)})").fetchone():
            checks.append(PlannedCheck("foreign_key_check", table, table, partial(_foreign_keys, conn, table)))
        for number, expression in enumerate(check_clauses(create_sql[table] or ""), start=1):
            subject = f"{table}.check{number}"
            checks.append(PlannedCheck("check constraint", subject, table,
                                       partial(_check_clause, conn, table, subject, expression)))  # fmt: skip
    return checks


def arm(conn: sqlite3.Connection) -> Callable[[float | None], None]:
    """Interrupt the next check when the budget's remaining seconds have passed."""

    def set_deadline(remaining: float | None) -> None:
        if remaining is None:
            conn.set_progress_handler(None, 0)
            return
        deadline = time.monotonic() + remaining
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)

    return set_deadline


def why_stopped(error: Exception) -> str:
    if isinstance(error, sqlite3.OperationalError) and "interrupted" in str(error):
        return "stopped: the time budget ran out during this check"
    if isinstance(error, sqlite3.Error):
        return f"could not run: {error}"
    raise error  # not the database's answer: a bug, reported as one


def _integrity(conn: sqlite3.Connection, pragma: str) -> CheckOutcome:
    try:
        messages = [str(message) for (message,) in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as error:
        if "interrupted" in str(error):
            raise
        # the file is too damaged for the pragma to read on: that is its finding
        return CheckOutcome(pragma, "main", None, Status.FAIL, f"the database file is corrupt: {error}", 1,
                            columns=("problem",), sample=((str(error),),))  # fmt: skip
    if messages == ["ok"]:
        return CheckOutcome(pragma, "main", None, Status.PASS, "ok", 0)
    return CheckOutcome(pragma, "main", None, Status.FAIL, f"{len(messages)} problem(s) found: {messages[0]}",
                        len(messages), columns=("problem",),
                        sample=tuple((message,) for message in messages[:SAMPLE_LIMIT]))  # fmt: skip


def _foreign_keys(conn: sqlite3.Connection, table: str) -> CheckOutcome:
    rows = conn.execute(f"PRAGMA foreign_key_check({quote_identifier(table)})").fetchall()
    if not rows:
        return CheckOutcome("foreign_key_check", table, table, Status.PASS,
                            "every row's foreign keys have their parent row", 0)  # fmt: skip
    parents = ", ".join(sorted({str(row[2]) for row in rows}))
    return CheckOutcome("foreign_key_check", table, table, Status.FAIL,
                        f"{len(rows)} row(s) reference a missing row of {parents}", len(rows),
                        columns=("table", "rowid", "parent"),
                        sample=tuple((row[0], row[1], row[2]) for row in rows[:SAMPLE_LIMIT]))  # fmt: skip


def _check_clause(conn: sqlite3.Connection, table: str, subject: str, expression: str) -> CheckOutcome:
    # NOT (expr): a CHECK passes on NULL, and so does this filter
    cursor = conn.execute(f"SELECT count(*) OVER (), * FROM {quote_identifier(table)} WHERE NOT ({expression}) "
                          f"LIMIT {SAMPLE_LIMIT}")  # fmt: skip
    rows = cursor.fetchall()
    columns = tuple(column[0] for column in (cursor.description or ())[1:])
    if not rows:
        return CheckOutcome("check constraint", subject, table, Status.PASS, f"CHECK ({expression}): holds", 0)
    found = int(rows[0][0])
    return CheckOutcome("check constraint", subject, table, Status.FAIL,
                        f"CHECK ({expression}): {found} row(s) violate it", found, columns=columns,
                        sample=tuple(tuple(row[1:]) for row in rows))  # fmt: skip
