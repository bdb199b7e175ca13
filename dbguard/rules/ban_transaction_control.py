"""BEGIN, COMMIT, ROLLBACK and friends in a script: dbguard owns the transaction.

Problem: dbguard runs the whole script in one transaction, takes its backup in that same snapshot
and checks integrity before it commits. A COMMIT inside the script would make its changes permanent
before those checks; a BEGIN, ROLLBACK or SAVEPOINT would break the guarantee that the script either
applies in full or not at all.

A plain BEGIN as the script's first statement with a COMMIT as its last, around one step (how sqitch
deploy scripts and `sqlite3 .dump` are written), asks for the one transaction dbguard gives anyway:
no finding; dbguard does not execute them (dbguard.run.wrapper). A SAVEPOINT that a later RELEASE of
the same step releases nests inside dbguard's transaction and commits nothing: no finding either. A
COMMIT in the middle, a wrapper around several steps, a BEGIN with options, ROLLBACK TO SAVEPOINT or a
savepoint never released is still an error.

Bad:
    BEGIN;

    COMMIT;

    SAVEPOINT before_fix;

    SAVEPOINT before_fix;
    UPDATE stock SET qty = 0 WHERE qty < 0;
    ROLLBACK TO SAVEPOINT before_fix;

    BEGIN;
    UPDATE stock SET qty = 0 WHERE qty < 0;
    COMMIT;
    UPDATE stock SET reserved = 0 WHERE reserved < 0;

Good:
    UPDATE stock SET qty = 0 WHERE qty < 0;

    BEGIN;
    UPDATE stock SET qty = 0 WHERE qty < 0;
    COMMIT;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.run.wrapper import released_savepoints, transaction_wrapper
from dbguard.sql.model import Statement


@rule("ban-transaction-control", Severity.ERROR, "Transaction control inside a script")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    wrapper = context.per_script("transaction-wrapper", transaction_wrapper)
    released = context.per_script("released-savepoints", released_savepoints)
    for action in statement.actions_of("transaction-control"):
        command = " ".join(str(action.get("command") or statement.kind).split())
        if statement.index in wrapper or statement.index in released:
            continue  # the transaction dbguard runs the script in anyway, or a savepoint nested in it
        yield Violation(
            message=f"{command} controls the transaction, which dbguard owns: the script runs in one "
            "transaction that dbguard commits only after its integrity checks",
            help="Remove BEGIN/COMMIT/ROLLBACK/SAVEPOINT from the script; dbguard commits it as a whole "
            "or rolls it back. Split work that must commit separately into separate scripts.",
        )
    for action in statement.actions_of("set"):
        if str(action.get("name") or "").rsplit(".", 1)[-1].lstrip("@").lower() == "autocommit":  # MySQL
            yield Violation(
                message="SET autocommit changes when work is committed: with it on, every statement commits by "
                "itself and dbguard can no longer roll the script back",
                help="Remove SET autocommit from the script; dbguard runs the script in one transaction.",
            )
