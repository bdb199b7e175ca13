"""DROP TABLE destroys a table and all of its data.

Problem: once committed, the table, its rows, indexes, constraints and grants are gone; only a
restore brings them back. Code still reading the table fails immediately.

Bad:
    DROP TABLE stock;

    DROP TABLE IF EXISTS stock_moves_old, stock;

Good:
    SET lock_timeout = '2s';
    -- dbguard: allow ban-drop-table reason="unused since the 2024 move: no reads or writes in 90 days"
    DROP TABLE stock_moves_old;

    SET lock_timeout = '2s';
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
                help="First make sure nothing uses it any more (pg_stat_user_tables shows its recent reads and "
                "writes), then waive this rule with that reason: the run's verified backup keeps its rows.",
            )
