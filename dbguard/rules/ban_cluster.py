"""CLUSTER rewrites the table in index order under an ACCESS EXCLUSIVE lock.

Problem: CLUSTER copies the whole table and rebuilds its indexes while holding an ACCESS EXCLUSIVE
lock (PostgreSQL docs, CLUSTER): no query can read or write the table until it finishes. CLUSTER
with no table does this to every table that was clustered before.

Bad:
    CLUSTER stock USING stock_sku_idx;

    CLUSTER stock;

Good:
    VACUUM (ANALYZE) stock;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-cluster", Severity.ERROR, "CLUSTER locks and rewrites the table", dialects=POSTGRES_ONLY)
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("cluster"):
        target = action.table or "every previously clustered table"
        yield Violation(
            message=f"CLUSTER rewrites {target} under an ACCESS EXCLUSIVE lock: every query on it waits "
            "until the rewrite finishes",
            help="Reorder the table online with pg_repack (--order-by), which holds the exclusive lock "
            "only briefly; for bloat alone, plain VACUUM is enough.",
        )
