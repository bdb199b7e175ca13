"""SQLite cannot add a column whose default is not a constant to a table that has rows.

Problem: `ALTER TABLE ... ADD COLUMN` in SQLite only rewrites the table's definition; existing rows
read the new column's default from it, so the default must be a constant. CURRENT_TIME, CURRENT_DATE,
CURRENT_TIMESTAMP or an expression in parentheses fail with "Cannot add a column with non-constant
default" as soon as the table holds a row (SQLite docs, ALTER TABLE: ADD COLUMN), so the script stops
there on the real database even if it passed on an empty copy.

Bad:
    ALTER TABLE orders ADD COLUMN imported_at TEXT DEFAULT CURRENT_TIMESTAMP;

    ALTER TABLE orders ADD COLUMN bucket INTEGER DEFAULT (abs(random()) % 10);

Good:
    ALTER TABLE orders ADD COLUMN imported_at TEXT;

    ALTER TABLE orders ADD COLUMN bucket INTEGER NOT NULL DEFAULT 0;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-non-constant-default", Severity.ERROR, "SQLite column added with a default that is not a constant",
      dialects=frozenset({Dialect.SQLITE}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("add-column"):
        if action.get("default_constant", True) or context.created_earlier(action.table, statement):
            continue
        yield Violation(
            message=f"adding {action.table}.{action.column} with DEFAULT {action.get('default_sql')}: SQLite "
            "refuses a non-constant default on a table that has rows, so the script fails here",
            help="Add the column with no default (or a constant one), then fill it with an UPDATE.",
        )
