"""REINDEX without CONCURRENTLY blocks writes to the table and reads that use the index.

Problem: REINDEX locks out writes to the index's table and takes an ACCESS EXCLUSIVE lock on each
index it rebuilds, so every query planned to use that index waits too (PostgreSQL docs, REINDEX).
REINDEX TABLE, SCHEMA or DATABASE holds these locks while it rebuilds index after index.

Bad:
    REINDEX INDEX stock_sku_idx;

    REINDEX TABLE stock;

Good:
    REINDEX INDEX CONCURRENTLY stock_sku_idx;

    REINDEX (CONCURRENTLY) TABLE stock;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-concurrent-reindex", Severity.ERROR, "REINDEX without CONCURRENTLY", dialects=POSTGRES_ONLY)
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("reindex"):
        if action.get("concurrently"):
            continue
        target = str(action.get("target") or "").removeprefix("REINDEX_OBJECT_")
        what = f"REINDEX {target} {action.table or ''}".strip()
        yield Violation(
            message=f"{what} blocks writes to the table and takes an ACCESS EXCLUSIVE lock on each index "
            "it rebuilds: queries that use those indexes wait until it finishes",
            help="Use REINDEX ... CONCURRENTLY (PostgreSQL 12+; SHARE UPDATE EXCLUSIVE), run as its own "
            "step outside the transaction; system catalogs cannot be reindexed concurrently.",
        )
