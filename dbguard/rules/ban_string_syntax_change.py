"""A setting that changes how the server reads string literals for the rest of the script.

Problem: dbguard splits and checks a script with the standard string syntax. After
`SET standard_conforming_strings = off` (PostgreSQL) or a `sql_mode` with NO_BACKSLASH_ESCAPES (MySQL),
the server reads backslashes differently, so text that dbguard saw inside a string literal can become
statements the server runs: `SELECT 'x\\', '; DELETE FROM stock; --';` hides a DELETE. dbguard fails
closed rather than check a script whose statements it may not see. A MySQL `sql_mode` listed in full
without ANSI_QUOTES, NO_BACKSLASH_ESCAPES, PIPES_AS_CONCAT or ANSI (`SET sql_mode = 'STRICT_ALL_TABLES'`)
reads statements as dbguard did, and passes.

Bad:
    SET standard_conforming_strings = off;

    SET backslash_quote = on;

Good:
    SET lock_timeout = '2s';
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_SETTINGS = frozenset({"standard_conforming_strings", "backslash_quote", "sql_mode"})
# MySQL sql_mode flags that change how a statement is split or read ("Server SQL Modes": ANSI includes
# ANSI_QUOTES and PIPES_AS_CONCAT); any other mode leaves the text as dbguard read it.
_READING_MODES = frozenset({"ansi_quotes", "no_backslash_escapes", "pipes_as_concat", "ansi"})
_PLAIN_MODES = re.compile(r"'[A-Za-z_,\s]*'|\"[A-Za-z_,\s]*\"")


@rule("ban-string-syntax-change", Severity.ERROR, "Changing how string literals are read")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("set"):
        name = str(action.get("name") or "").rsplit(".", 1)[-1].lstrip("@").lower()
        if name == "sql_mode" and _keeps_reading(str(action.get("value") or "")):
            continue
        if name in _SETTINGS:
            yield Violation(
                message=f"SET {name} changes how the server reads string literals: later statements may not be "
                "the ones dbguard checked",
                help="Leave the string syntax at its default in maintenance scripts; write the literals in the "
                "standard form (E'...' for escapes on PostgreSQL).",
            )


def _keeps_reading(value: str) -> bool:
    """A sql_mode written out as a list of modes, none of which changes how statements are read. Fail
    closed: a variable or an expression (`@OLD_SQL_MODE`, `CONCAT(@@sql_mode, ...)`) could hold anything."""
    if not _PLAIN_MODES.fullmatch(value.strip()):
        return False
    modes = {m.strip().lower() for m in value.strip()[1:-1].split(",")}
    return not modes & _READING_MODES
