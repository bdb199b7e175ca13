"""ALTER TABLE ... DROP COLUMN destroys the column's data.

Problem: the values in the column are gone once the change commits, and any code still reading or
writing the column fails at once.

Bad:
    ALTER TABLE stock DROP COLUMN legacy_bin;

    ALTER TABLE stock DROP COLUMN IF EXISTS reserved_qty CASCADE;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN bin_code text;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-drop-column", Severity.ERROR, "DROP COLUMN destroys a column and its data")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("drop-column"):
        yield Violation(
            message=f"dropping column {action.column} of {action.table} destroys its data",
            help="First stop the code from using the column and copy the data out if it is needed; drop "
            "it in a later change, and waive this rule with a reason there.",
        )
