"""A DELETE with no WHERE clause empties the whole table.

Problem: the statement removes every row. In a maintenance script that is almost always a missing
WHERE, and it is what wiped the reservations in the stockpocalypse.

Bad:
    DELETE FROM reservations;

    WITH gone AS (DELETE FROM stock RETURNING *) SELECT count(*) FROM gone;

Good:
    DELETE FROM reservations WHERE expires_at < now() - interval '1 day';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-delete-without-where", Severity.ERROR, "DELETE without a WHERE clause")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("delete"):
        if not action.get("has_where"):
            yield Violation(
                message=f"DELETE FROM {action.table} has no WHERE clause: it removes every row",
                help="Add a WHERE clause that selects exactly the rows to remove; to empty a table on "
                "purpose, waive this rule with a reason.",
            )
