"""DROP TABLE destroys a table and all of its data.

Problem: once committed, the table, its rows, indexes, constraints and grants are gone; only a
restore brings them back. Code still reading the table fails immediately.

Bad:
    DROP TABLE stock;

    DROP TABLE IF EXISTS stock_moves_old, stock;

Good:
    ALTER TABLE stock_moves_old RENAME TO stock_moves_old_deprecated;

    DROP VIEW stock_summary;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-drop-table", Severity.ERROR, "DROP TABLE destroys a table and its data")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("drop"):
        if action.get("object") == "table":
            yield Violation(
                message=f"DROP TABLE {action.table} destroys the table and every row in it",
                help="Rename the table out of the way first and drop it in a later change once nothing "
                "uses it; if it must go now, waive this rule with a reason.",
            )
