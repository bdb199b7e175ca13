"""A statement that needs a strong lock must not wait for it forever: set lock_timeout first.

Problem: an ALTER TABLE, or any statement taking SHARE ROW EXCLUSIVE or a stronger lock on a table
(ACCESS EXCLUSIVE for DROP, TRUNCATE, CREATE RULE, a new partition's parent; SHARE ROW EXCLUSIVE on
the table a new foreign key references, even from CREATE TABLE), queues behind every running
transaction on that table, and while it waits every later write (for ACCESS EXCLUSIVE, every query)
on the table queues behind it (a waiting lock request conflicts with the ones after it: PostgreSQL
docs, "Explicit Locking"). One slow report can then stall the whole application. With lock_timeout
set, the statement gives up instead and the script can be retried. `lock_timeout = 0` means no timeout.

Bad:
    ALTER TABLE stock ADD COLUMN note text;

    SET lock_timeout = 0;
    TRUNCATE stock_staging;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN note text;

    SET LOCAL lock_timeout = '500ms';
    ALTER TABLE stock ALTER COLUMN note SET DEFAULT '';
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


# SHARE ROW EXCLUSIVE and stronger conflict with every write, and with themselves: while such a request
# waits, the table's writers (for ACCESS EXCLUSIVE, its readers too) queue behind it.
_STRONG = LockMode.SHARE_ROW_EXCLUSIVE


@rule("require-lock-timeout", Severity.ERROR, "strong lock taken with no lock_timeout set",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    locks = dict(statement.facts.locks)
    altered = [a.table for a in statement.actions_of("alter-table") if a.table]
    waiting = [*altered, *(t for t, mode in statement.facts.locks if mode >= _STRONG and t not in altered)]
    if not waiting or _lock_timeout_set(statement, context):
        return
    by_mode: dict[LockMode | None, list[str]] = {}
    for table in sorted(waiting, key=lambda t: -(locks.get(t) or 9)):  # strongest first; unknown counts as strongest
        by_mode.setdefault(locks.get(table), []).append(table)
    what = statement.kind if statement.recognized else "The statement"
    tables = ", ".join(waiting)
    if len(by_mode) == 1:
        ((lock, _),) = by_mode.items()
        mode = f" for its {lock.label} lock" if lock else ""
        queued = f"{_queued(lock)} on {tables} queues behind it"
    else:
        mode = " for its locks"
        queued = " and ".join(f"{_queued(lock)} on {', '.join(group)} ({lock.label if lock else 'its lock'})"
                              for lock, group in by_mode.items()) + " queue behind it"  # fmt: skip
    yield Violation(
        message=f"{what} on {tables} runs with no lock_timeout: while it waits{mode}, {queued}",
        help="Put SET lock_timeout = '2s' (or SET LOCAL lock_timeout) before it, and retry the script if it times out.",
    )


def _queued(lock: LockMode | None) -> str:
    if lock is None or lock.blocks_reads:
        return "every query"
    return "every write" if lock.blocks_writes else "other DDL and maintenance"
