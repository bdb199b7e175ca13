"""DROP SCHEMA and DROP DATABASE destroy many tables at once.

Problem: dropping a schema or a database removes every object in it, with all of their data. A
maintenance script has no business doing that, and a typo in the name can take the wrong one.

Bad:
    DROP SCHEMA warehouse CASCADE;

    DROP DATABASE warehouse_old;

Good:
    SET lock_timeout = '2s';
    DROP VIEW warehouse.stock_summary;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-drop-schema-or-database", Severity.ERROR, "DROP SCHEMA or DROP DATABASE")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("drop"):
        if action.get("object") in ("schema", "database"):
            what = action.get("object")
            yield Violation(
                message=f"DROP {what.upper()} {action.table} destroys everything in the {what} with its data",
                help=f"Leave dropping a whole {what} out of maintenance scripts: do it by hand after a "
                "verified backup, or waive this rule with a reason after review.",
            )
