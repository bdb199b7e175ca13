"""TRUNCATE removes every row of a table at once, outside the reach of row-level safeguards.

Problem: TRUNCATE empties the table without a WHERE, fires no DELETE triggers, and takes an ACCESS
EXCLUSIVE lock that blocks even readers. In a maintenance script it is almost never what was meant
for a table that holds real data.

Bad:
    TRUNCATE stock;

    TRUNCATE TABLE reservations, stock_moves;

Good:
    DELETE FROM reservations WHERE expires_at < now() - interval '30 days';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-truncate", Severity.ERROR, "TRUNCATE empties a whole table")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("truncate"):
        yield Violation(
            message=f"TRUNCATE {action.table} removes every row of the table",
            help="Delete only the rows you mean with DELETE ... WHERE; to empty the table on purpose, "
            "waive this rule with a reason.",
        )
