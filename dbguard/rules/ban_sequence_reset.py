"""Resetting a sequence can hand out keys that already exist.

Problem: `SELECT setval(seq, <constant>)`, `ALTER SEQUENCE ... RESTART` and `TRUNCATE ... RESTART
IDENTITY` move a sequence to a value chosen without looking at the data. Moved to or below the highest
key already in use, the next inserts get duplicate keys and fail (or, with no unique constraint,
silently collide), long after the script has finished. `setval(seq, (SELECT max(id) FROM t))` reads the
value from the data: it is the standard repair of a sequence left behind, not a reset (the dry-run
checks the result against every column the sequence feeds: limit-sequence-below-max).
`ALTER SEQUENCE ... START WITH` only records what a later RESTART uses: the sequence does not move.

Bad:
    ALTER SEQUENCE stock_id_seq RESTART WITH 1;

    SELECT setval('stock_id_seq', 1);

    TRUNCATE stock_staging RESTART IDENTITY;

Good:
    SELECT setval('stock_id_seq', (SELECT max(id) FROM stock));

    SELECT last_value FROM stock_id_seq;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_HELP = ("Move a sequence forward only, from the data: SELECT setval('<sequence>', (SELECT max(<key>) FROM "
         "<table>)). If this value is really meant, waive this rule with the reason.")  # fmt: skip


@rule("ban-sequence-reset", Severity.ERROR, "Resetting a sequence")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("sequence-reset"):
        if action.get("from_data"):
            continue  # setval(seq, max(...)): the repair; the dry-run checks it against the data
        how = action.get("how") or "a reset"
        sequence = str(action.table).strip("'")
        value = action.get("value")
        if action.get("table_emptied"):
            yield Violation(
                message=f"{how} resets {sequence} to {value}: {action.get('table_emptied')} is emptied, but the keys "
                "it handed out are handed out again, and collide with any copy of them kept elsewhere (archives, "
                "other tables, caches)",
                help="TRUNCATE without RESTART IDENTITY (CONTINUE IDENTITY, the default) keeps the sequences where "
                "they are; if the keys really may be reused, waive this rule with the reason.",
            )
            continue
        to = f"to {value}" if value else "to a value check cannot evaluate"
        yield Violation(
            message=f"{how} moves sequence {sequence} {to}, chosen without looking at the data: if keys at or "
            "above it are in use, later inserts get duplicate keys",
            help=_HELP,
        )
