"""CASCADE silently extends a DROP or TRUNCATE to every object that depends on its target.

Problem: `DROP ... CASCADE` also drops the views, foreign keys and other objects that depend on the
target, and `TRUNCATE ... CASCADE` also empties every table that references it by foreign key. Which
objects those are depends on the database, not on the script, so the script's reader cannot see them.

Bad:
    DROP VIEW stock_summary CASCADE;

    TRUNCATE stock_moves CASCADE;

    ALTER TABLE stock DROP COLUMN legacy_bin CASCADE;

Good:
    SET lock_timeout = '2s';
    DROP VIEW stock_summary;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Action, Statement


@rule("ban-cascade", Severity.ERROR, "CASCADE drops or empties dependent objects too")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions:
        if action.get("cascade"):
            also = ("empties every table that references it by foreign key" if action.kind == "truncate"
                    else "drops every object that depends on it")  # fmt: skip
            yield Violation(
                message=f"{_describe(action)} uses CASCADE: it also {also}, which the script does not name",
                help="Remove CASCADE (the default, RESTRICT, fails while anything still depends on the "
                "target), and first drop or empty each dependent object by name in its own statement.",
            )


def _describe(action: Action) -> str:
    if action.kind == "drop":
        return f"DROP {str(action.get('object', '')).upper()} {action.table}"
    if action.kind == "drop-column":
        return f"DROP COLUMN {action.column} of {action.table}"
    if action.kind == "drop-constraint":
        return f"DROP CONSTRAINT {action.get('name')} of {action.table}"
    return f"{action.kind.upper()} {action.table}"
