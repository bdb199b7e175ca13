"""A statement that needs a strong lock must not wait for it forever: set lock_timeout first.

Problem: an ALTER TABLE or any statement taking an ACCESS EXCLUSIVE lock queues behind every running
transaction on its table, and while it waits every later query on the table queues behind it (a
waiting lock request conflicts with the ones after it: PostgreSQL docs, "Explicit Locking"). One slow
report can then stall the whole application. With lock_timeout set, the statement gives up instead and
the script can be retried. `lock_timeout = 0` means no timeout.

Bad:
    ALTER TABLE stock ADD COLUMN note text;

    SET lock_timeout = 0;
    TRUNCATE stock_staging;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN note text;

    SET LOCAL lock_timeout = '500ms';
    DROP TABLE stock_staging;
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import LockMode, Statement

_ZERO = re.compile(r"0+(\.0*)?\s*(us|ms|s|min|h|d)?", re.IGNORECASE)


def _lock_timeout_set(statement: Statement, context: RuleContext) -> bool:
    value = context.session(statement).settings.get("lock_timeout")  # RESET / TO DEFAULT: no timeout
    return value is not None and not _ZERO.fullmatch(value.strip().strip("'\""))


@rule("require-lock-timeout", Severity.ERROR, "strong lock taken with no lock_timeout set",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    lock = statement.facts.lock
    altered = [a.table for a in statement.actions_of("alter-table") if a.table]
    if not (altered or lock is LockMode.ACCESS_EXCLUSIVE) or _lock_timeout_set(statement, context):
        return
    tables = ", ".join(altered or statement.facts.tables_written) or "its table"
    if lock is None or lock.blocks_reads:
        queued = "every query"
    else:
        queued = "every write" if lock.blocks_writes else "other DDL and maintenance"
    mode = f" for its {lock.label} lock" if lock else ""
    yield Violation(
        message=f"{statement.kind} on {tables} runs with no lock_timeout: while it waits{mode}, {queued} "
        f"on {tables} queues behind it",
        help="Put SET lock_timeout = '2s' (or SET LOCAL lock_timeout) before it, and retry the script if it times out.",
    )
