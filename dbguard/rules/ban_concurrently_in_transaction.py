"""CONCURRENTLY inside a transaction block fails at run time.

Problem: CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY and REINDEX ... CONCURRENTLY cannot run
inside a transaction block, nor inside a DO block or a function (which always run in one).
PostgreSQL raises an error there, in the middle of the script, after earlier statements have run.

Bad:
    BEGIN;
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);
    COMMIT;

    DO $$ BEGIN DROP INDEX CONCURRENTLY stock_sku_idx; END $$;

Good:
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

    DROP INDEX CONCURRENTLY stock_sku_idx;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-concurrently-in-transaction", Severity.ERROR, "CONCURRENTLY inside a transaction block")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    actions = statement.actions_of("create-index", "drop", "reindex")
    targets = ", ".join(str(a.table) for a in actions if a.get("concurrently"))
    if not targets:
        return
    if statement.parent is not None:
        where = f"inside a DO block or function body ({statement.origin})"
    elif context.session(statement).in_transaction_block:
        where = "after BEGIN, inside an explicit transaction block"
    else:
        return
    yield Violation(
        message=f"{statement.kind} CONCURRENTLY on {targets} runs {where}: PostgreSQL refuses it there at run time",
        help="Run it as a top-level statement outside any transaction block (and outside DO blocks and "
        "functions), or drop CONCURRENTLY if the lock it then takes is acceptable.",
    )
