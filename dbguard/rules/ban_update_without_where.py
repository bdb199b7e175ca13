"""An UPDATE with no WHERE clause rewrites every row of the table.

Problem: the statement changes every row. In a maintenance script that is almost always a missing
WHERE (or one lost when the script was edited), and the old values are gone once it commits.

Bad:
    UPDATE stock SET qty = 0;

    WITH moved AS (UPDATE stock SET bin = 'B7' RETURNING sku) SELECT count(*) FROM moved;

Good:
    UPDATE stock SET qty = 0 WHERE sku = 'A-1001';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-update-without-where", Severity.ERROR, "UPDATE without a WHERE clause")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("update"):
        if not action.get("has_where"):
            yield Violation(
                message=f"UPDATE {action.table} has no WHERE clause: it changes every row",
                help="Add a WHERE clause that selects exactly the rows to change; to rewrite the whole "
                "table on purpose, waive this rule with a reason.",
            )
