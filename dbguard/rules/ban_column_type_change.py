"""Changing a column's type rewrites the table while it is locked.

Problem: ALTER COLUMN ... TYPE takes an ACCESS EXCLUSIVE lock and, unless the old type is binary
coercible to the new one (varchar(n) to text, say), rewrites the table and rebuilds its indexes
(PostgreSQL docs, ALTER TABLE): every query on the table waits for the whole rewrite. MySQL's MODIFY
or CHANGE with a new type copies the table, blocking writes until the copy is done.

Bad:
    ALTER TABLE stock ALTER COLUMN qty TYPE bigint;

    ALTER TABLE orders ALTER total SET DATA TYPE numeric(12,2) USING total::numeric;

Good:
    ALTER TABLE stock ADD COLUMN qty_big bigint;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-column-type-change", Severity.ERROR, "changing a column's type rewrites the table")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("alter-column-type"):
        where = f"{action.table}.{action.column}"
        if statement.dialect is Dialect.MYSQL:
            effect = f"copies {action.table} row by row: writes to it wait until the copy is done"
        else:
            effect = (f"takes an ACCESS EXCLUSIVE lock on {action.table} and rewrites it with its indexes: "
                      "every query on the table waits for the whole rewrite")  # fmt: skip
        yield Violation(
            message=f"changing the type of {where} to {action.get('type')} {effect}",
            help=f"Add a new column of the new type, backfill it in batches (keeping it in step with a "
            f"trigger), switch the application over, then drop {action.column} in a later release.",
        )
