"""Resetting a sequence can hand out keys that already exist.

Problem: `ALTER SEQUENCE ... RESTART` / `START` and `SELECT setval(...)` move a sequence. Moved
below the highest key already in the table, the next inserts get duplicate keys and fail (or, with
no unique constraint, silently collide), long after the script has finished.

Bad:
    ALTER SEQUENCE stock_id_seq RESTART WITH 1;

    SELECT setval('stock_id_seq', 1);

Good:
    SELECT last_value FROM stock_id_seq;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-sequence-reset", Severity.ERROR, "Resetting a sequence")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("sequence-reset"):
        how = action.get("how") or "a reset"
        sequence = str(action.table).strip("'")
        yield Violation(
            message=f"{how} moves sequence {sequence}: set below the highest existing key, later inserts "
            "fail with duplicate keys",
            help="Leave the sequence alone; if it really is behind, move it forward only, from the data: "
            "SELECT setval('<sequence>', (SELECT max(id) FROM <table>)), and waive this rule with a reason.",
        )
