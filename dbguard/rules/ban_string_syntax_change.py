"""A setting that changes how the server reads string literals for the rest of the script.

Problem: dbguard splits and checks a script with the standard string syntax. After
`SET standard_conforming_strings = off` (PostgreSQL) or a `sql_mode` with NO_BACKSLASH_ESCAPES (MySQL),
the server reads backslashes differently, so text that dbguard saw inside a string literal can become
statements the server runs: `SELECT 'x\\', '; DELETE FROM stock; --';` hides a DELETE. dbguard fails
closed rather than check a script whose statements it may not see.

Bad:
    SET standard_conforming_strings = off;

    SET backslash_quote = on;

Good:
    SET lock_timeout = '2s';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_SETTINGS = frozenset({"standard_conforming_strings", "backslash_quote", "sql_mode"})


@rule("ban-string-syntax-change", Severity.ERROR, "Changing how string literals are read")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("set"):
        name = str(action.get("name") or "").rsplit(".", 1)[-1].lstrip("@").lower()
        if name in _SETTINGS:
            yield Violation(
                message=f"SET {name} changes how the server reads string literals: later statements may not be "
                "the ones dbguard checked",
                help="Leave the string syntax at its default in maintenance scripts; write the literals in the "
                "standard form (E'...' for escapes on PostgreSQL).",
            )
