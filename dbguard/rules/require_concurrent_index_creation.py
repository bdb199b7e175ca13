"""CREATE INDEX without CONCURRENTLY blocks every write to the table while the index is built.

Problem: a plain CREATE INDEX takes a SHARE lock on the table (PostgreSQL docs, "Explicit Locking"
and CREATE INDEX). Reads go on, but every INSERT, UPDATE and DELETE waits until the whole table has
been scanned and sorted, which on a large table means minutes. A table created earlier in the same
script is still empty and invisible to everyone else, so indexing it is fine.

A partitioned table cannot be indexed CONCURRENTLY (PostgreSQL refuses it). Its recipe, from the
CREATE INDEX page: `CREATE INDEX ... ON ONLY parent` (touches no partition: the index stays invalid,
nothing is built), then `CREATE INDEX CONCURRENTLY` on each partition, then `ALTER INDEX parent_index
ATTACH PARTITION partition_index` for each; the parent's index becomes valid once all are attached.
`ON ONLY` tells check the table is partitioned; offline it cannot tell otherwise (with `check --db` or
`--stats` it knows, and advises the recipe alone).

Bad:
    CREATE INDEX stock_sku_idx ON stock (sku);

    CREATE UNIQUE INDEX orders_ref_key ON orders (reference);

    CREATE INDEX CONCURRENTLY orders_created_idx ON ONLY orders (created_at);

Good:
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

    CREATE TABLE stock_audit (id bigint PRIMARY KEY, sku text);
    CREATE INDEX stock_audit_sku_idx ON stock_audit (sku);

    SET lock_timeout = '2s';
    CREATE INDEX orders_created_idx ON ONLY orders (created_at);
    CREATE INDEX CONCURRENTLY orders_2024_created_idx ON orders_2024 (created_at);
    ALTER INDEX orders_created_idx ATTACH PARTITION orders_2024_created_idx;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


def partitioned_recipe(table: str) -> str:
    return (f"CREATE INDEX <name> ON ONLY {table} (...) (builds nothing), then CREATE INDEX CONCURRENTLY on each "
            "partition, then ALTER INDEX <name> ATTACH PARTITION <partition index> for each")  # fmt: skip


@rule("require-concurrent-index-creation", Severity.ERROR, "CREATE INDEX without CONCURRENTLY",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("create-index"):
        table = str(action.table)
        info = context.table(table, statement)  # with check --db / --stats: whether it is partitioned
        partitioned = bool(action.get("only")) or bool(info and info.partitioned)
        if partitioned and action.get("concurrently"):
            only = " ON ONLY" if action.get("only") else ""
            yield Violation(
                message=f"CREATE INDEX CONCURRENTLY{only} {table}: {table} is partitioned, and PostgreSQL "
                "refuses to index a partitioned table concurrently",
                help=f"Drop CONCURRENTLY here: {partitioned_recipe(table)}.",
            )
            continue
        if action.get("only") or action.get("concurrently") or context.created_earlier(table, statement):
            continue  # ON ONLY builds nothing: the partitions' indexes are built (CONCURRENTLY) one by one
        if partitioned:
            yield Violation(
                message=f"CREATE INDEX on the partitioned table {table} builds the index on every partition under "
                "a SHARE lock: writes to them wait until all are built",
                help=f"CONCURRENTLY is refused on a partitioned table: {partitioned_recipe(table)}.",
            )
            continue
        yield Violation(
            message=f"CREATE INDEX on {table} takes a SHARE lock: writes to {table} wait until the index is built",
            help="Use CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on), run as "
            "its own step outside the transaction; if it fails, drop the INVALID index it leaves and retry. "
            f"If {table} is partitioned, CONCURRENTLY is refused there: {partitioned_recipe(table)}.",
        )
