"""CREATE INDEX without CONCURRENTLY blocks every write to the table while the index is built.

Problem: a plain CREATE INDEX takes a SHARE lock on the table (PostgreSQL docs, "Explicit Locking"
and CREATE INDEX). Reads go on, but every INSERT, UPDATE and DELETE waits until the whole table has
been scanned and sorted, which on a large table means minutes. A table created earlier in the same
script is still empty and invisible to everyone else, so indexing it is fine.

Bad:
    CREATE INDEX stock_sku_idx ON stock (sku);

    CREATE UNIQUE INDEX orders_ref_key ON orders (reference);

Good:
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

    CREATE TABLE stock_audit (id bigint PRIMARY KEY, sku text);
    CREATE INDEX stock_audit_sku_idx ON stock_audit (sku);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-concurrent-index-creation", Severity.ERROR, "CREATE INDEX without CONCURRENTLY",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("create-index"):
        if action.get("concurrently") or context.created_earlier(action.table, statement):
            continue
        yield Violation(
            message=f"CREATE INDEX on {action.table} takes a SHARE lock: writes to {action.table} wait "
            "until the index is built",
            help="Use CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on), run as "
            "its own step outside the transaction; if it fails, drop the INVALID index it leaves and retry.",
        )
