"""DROP INDEX without CONCURRENTLY blocks every query on the index's table.

Problem: a plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the table the index belongs to
(PostgreSQL docs, DROP INDEX). While it waits for running queries to finish, every new query on the
table, reads included, queues behind it.

Bad:
    DROP INDEX stock_sku_idx;

    DROP INDEX IF EXISTS orders_ref_key CASCADE;

Good:
    DROP INDEX CONCURRENTLY stock_sku_idx;

    DROP INDEX CONCURRENTLY IF EXISTS orders_ref_key;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-concurrent-index-deletion", Severity.ERROR, "DROP INDEX without CONCURRENTLY",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("drop"):
        if action.get("object") == "index" and not action.get("concurrently"):
            yield Violation(
                message=f"DROP INDEX {action.table} takes an ACCESS EXCLUSIVE lock on its table: every "
                "query on the table waits until the drop completes",
                help=f"Use DROP INDEX CONCURRENTLY {action.table} (one index per statement, no CASCADE), "
                "run as its own step outside the transaction.",
            )
