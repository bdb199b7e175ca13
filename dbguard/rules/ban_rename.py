"""Renaming a table or column breaks every running query that still uses the old name.

Problem: application code deployed before the script still sends the old name, and fails at once
when the rename commits; rolling the code forward and the schema together is never atomic. On
PostgreSQL the rename also takes an ACCESS EXCLUSIVE lock (docs, ALTER TABLE).

Bad:
    ALTER TABLE stock RENAME TO inventory;

    ALTER TABLE stock RENAME COLUMN qty TO quantity;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN quantity integer;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-rename", Severity.ERROR, "renaming a table or column")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("rename-table", "rename-column"):
        if action.kind == "rename-table":
            old, steps = action.table, "create a view with the old name over the renamed table"
        else:
            old, steps = f"{action.table}.{action.column}", "add the new column and keep both filled"
        yield Violation(
            message=f"renaming {old} to {action.get('new_name')} breaks every running query and deployed "
            "application still using the old name",
            help=f"Expand and contract: {steps}, move the application to the new name, and remove the old "
            "one in a later release.",
        )
