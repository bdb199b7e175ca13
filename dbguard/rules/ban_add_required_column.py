"""Adding a NOT NULL column without a default fails on a table that has rows.

Problem: existing rows have nothing to put in the new column. PostgreSQL and SQLite refuse the ALTER
on any non-empty table ("column contains null values"), after PostgreSQL has already queued for its
ACCESS EXCLUSIVE lock; MySQL silently fills existing rows with the type's implicit default (0, '',
a zero date) instead of a value anyone chose.

Bad:
    ALTER TABLE stock ADD COLUMN warehouse_id bigint NOT NULL;

    ALTER TABLE orders ADD COLUMN channel text NOT NULL, ADD COLUMN note text;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN warehouse_id bigint NOT NULL DEFAULT 1;

    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN warehouse_id bigint;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-add-required-column", Severity.ERROR, "NOT NULL column added without a default")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("add-column"):
        if not action.get("not_null") or action.get("has_default"):
            continue
        if statement.dialect is Dialect.MYSQL:
            outcome = "existing rows silently get the type's implicit default (0, '', a zero date)"
        else:
            outcome = f"the ALTER fails as soon as {action.table} has a row"
        yield Violation(
            message=f"column {action.table}.{action.column} is added NOT NULL without a default: {outcome}",
            help="Give the column a constant DEFAULT, or add it nullable, backfill it in batches, and make "
            "it NOT NULL in a later step without a scan: CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a "
            "step of its own, then SET NOT NULL (see ban-set-not-null).",
        )
