"""A statement that needs a strong lock must not wait for it forever: set lock_timeout first.

Problem: an ALTER TABLE, or any statement taking SHARE ROW EXCLUSIVE or a stronger lock on a table
(ACCESS EXCLUSIVE for DROP, TRUNCATE, CREATE RULE, a new partition's parent; SHARE ROW EXCLUSIVE on
the table a new foreign key references, even from CREATE TABLE), queues behind every running
transaction on that table, and while it waits every later write (for ACCESS EXCLUSIVE, every query)
on the table queues behind it (a waiting lock request conflicts with the ones after it: PostgreSQL
docs, "Explicit Locking"). One slow report can then stall the whole application. With lock_timeout
set, the statement gives up instead and the script can be retried. `lock_timeout = 0` means no timeout.

A relation that an earlier statement of the same transaction created (CREATE TABLE, VIEW, SEQUENCE
without IF NOT EXISTS or OR REPLACE) is seen by no other session until the commit, so no one can hold
or queue for a lock on it: no finding. One that may already exist (IF NOT EXISTS, OR REPLACE) is a
warning, and with check --db or --stats the catalog decides. A lock on a view alone is a warning: a
view holds no data, so only queries that read through it queue; the tables under it are not locked
(DROP VIEW, CREATE OR REPLACE VIEW: checked against PostgreSQL 15's pg_locks).

Bad:
    ALTER TABLE stock ADD COLUMN note text;

    SET lock_timeout = 0;
    TRUNCATE stock_staging;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN note text;

    SET LOCAL lock_timeout = '500ms';
    ALTER TABLE stock ALTER COLUMN note SET DEFAULT '';

    CREATE TABLE stock_notes (sku text PRIMARY KEY, note text);
    ALTER TABLE stock_notes ENABLE ROW LEVEL SECURITY;
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import LockMode, Script, Statement
from dbguard.sql.session import bare_table

_ZERO = re.compile(r"0+(\.0*)?\s*(us|ms|s|min|h|d)?", re.IGNORECASE)


def _lock_timeout_set(statement: Statement, context: RuleContext) -> bool:
    value = context.session(statement).settings.get("lock_timeout")  # RESET / TO DEFAULT: no timeout
    return value is not None and not _ZERO.fullmatch(value.strip().strip("'\""))


# SHARE ROW EXCLUSIVE and stronger conflict with every write, and with themselves: while such a request
# waits, the table's writers (for ACCESS EXCLUSIVE, its readers too) queue behind it.
_STRONG = LockMode.SHARE_ROW_EXCLUSIVE


@dataclass(frozen=True)
class _Created:
    index: int  # the creating statement's index
    line: int
    how: str  # "CREATE SEQUENCE", ...
    certain: bool  # False: IF NOT EXISTS or OR REPLACE, which may leave an existing relation in place
    view: bool


def _creations(script: Script) -> dict[str, _Created]:
    """Relation (`public.` dropped) -> the first statement of the script that creates it."""
    created: dict[str, _Created] = {}
    for statement in script.statements:
        for action in statement.actions_of("create-table", "create-relation"):
            if not action.table:
                continue
            certain, view = not action.get("if_not_exists"), action.get("object") == "view"
            how = statement.kind if certain else "CREATE OR REPLACE VIEW" if view else f"{statement.kind} IF NOT EXISTS"
            created.setdefault(bare_table(action.table), _Created(statement.index, statement.span.line, how, certain,
                                                                  view))  # fmt: skip
    return created


@rule("require-lock-timeout", Severity.ERROR, "strong lock taken with no lock_timeout set",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    locks = dict(statement.facts.locks)
    altered = [a.table for a in statement.actions_of("alter-table") if a.table]
    waiting = [*altered, *(t for t, mode in statement.facts.locks if mode >= _STRONG and t not in altered)]
    if not waiting or _lock_timeout_set(statement, context):
        return
    created = context.per_script("require-lock-timeout:creations", _creations)
    maybe_new: dict[str, _Created] = {}
    views = {a.table for a in statement.actions if a.get("object") == "view"}  # DROP VIEW, ALTER VIEW
    for table in list(waiting):
        made = created.get(bare_table(table))
        if made is None or made.index > statement.index or context.step_of(made.index) != context.step_of(statement):
            continue  # not created by this transaction (a committed earlier step's relation is everyone's)
        if made.view:
            views.add(table)
        if made.certain and made.index < statement.index:
            waiting.remove(table)  # created in this transaction: no other session sees it, so none holds a lock
        elif context.catalog is None:
            maybe_new[table] = made
        elif not context.catalog.exists(table, context.search_path(statement)):
            waiting.remove(table)  # IF NOT EXISTS / OR REPLACE of a relation the database does not have
    if not waiting:
        return
    if context.catalog is not None:
        views |= {t for t in waiting if context.catalog.kind(t, context.search_path(statement)) == "view"}
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
    lighter = [t for t in waiting if t in views or t in maybe_new]
    notes = [f"{t} is a view: it holds no data, so only queries through it queue; its tables' readers and writers "
             "go on" for t in waiting if t in views]  # fmt: skip
    notes += [f"{t} is new unless it already existed ({m.how} on line {m.line} may have found it)"
              for t, m in maybe_new.items() if t not in views]  # fmt: skip
    yield Violation(
        message=f"{what} on {tables} runs with no lock_timeout: while it waits{mode}, {queued}"
        + (f"; {'; '.join(notes)}" if notes else ""),
        help="Put SET lock_timeout = '2s' (or SET LOCAL lock_timeout) before it, and retry the script if it times out.",
        at_most=Severity.WARNING if len(lighter) == len(waiting) else None,
    )


def _queued(lock: LockMode | None) -> str:
    if lock is None or lock.blocks_reads:
        return "every query"
    return "every write" if lock.blocks_writes else "other DDL and maintenance"
