"""BEGIN, COMMIT, ROLLBACK and friends in a script: dbguard owns the transaction.

Problem: dbguard runs the whole script in one transaction, takes its backup in that same snapshot
and checks integrity before it commits. A COMMIT inside the script would make its changes permanent
before those checks; a BEGIN, ROLLBACK or SAVEPOINT would break the guarantee that the script either
applies in full or not at all.

A plain BEGIN as the script's first statement with a COMMIT as its last, around one step (how sqitch
deploy scripts and `sqlite3 .dump` are written), asks for the one transaction dbguard gives anyway:
no finding; dbguard does not execute them (dbguard.run.wrapper). A COMMIT in the middle, a
wrapper around several steps, or a BEGIN with options is still an error.

Bad:
    BEGIN;

    COMMIT;

    SAVEPOINT before_fix;

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
from dbguard.run.wrapper import transaction_wrapper
from dbguard.sql.model import Statement


@rule("ban-transaction-control", Severity.ERROR, "Transaction control inside a script")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    wrapper = context.per_script("transaction-wrapper", transaction_wrapper)
    for action in statement.actions_of("transaction-control"):
        command = " ".join(str(action.get("command") or statement.kind).split())
        if statement.index in wrapper:
            continue  # asks for the transaction dbguard runs the script in anyway; not executed
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
