"""Adding a UNIQUE or PRIMARY KEY constraint builds its index while the table is locked.

Problem: ADD CONSTRAINT ... UNIQUE or PRIMARY KEY builds a new unique index under the ACCESS EXCLUSIVE
lock of ALTER TABLE (PostgreSQL docs, ALTER TABLE): every query on the table waits until the index is
built. Building the index first with CREATE UNIQUE INDEX CONCURRENTLY and then attaching it with
USING INDEX holds that lock only for a moment. A table created earlier in the same script is empty,
so its index is built at once.

Bad:
    ALTER TABLE stock ADD CONSTRAINT stock_sku_key UNIQUE (sku);

    ALTER TABLE orders ADD PRIMARY KEY (id);

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD CONSTRAINT stock_sku_key UNIQUE USING INDEX stock_sku_idx;

    SET lock_timeout = '2s';
    CREATE TABLE returns (id bigint, sku text);
    ALTER TABLE returns ADD PRIMARY KEY (id);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-add-unique-constraint", Severity.ERROR, "UNIQUE or PRIMARY KEY added without USING INDEX",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("add-constraint"):
        kind = {"unique": "UNIQUE", "primary": "PRIMARY KEY", "exclusion": "EXCLUDE"}.get(action.get("constraint"))
        if kind is None or action.get("using_index") or context.created_earlier(action.table, statement):
            continue
        yield Violation(
            message=f"adding a {kind} constraint to {action.table} builds its index under an ACCESS "
            f"EXCLUSIVE lock: every query on {action.table} waits until the index is built",
            help=f"CREATE UNIQUE INDEX CONCURRENTLY on the columns as its own step, then ALTER TABLE "
            f"{action.table} ADD CONSTRAINT ... {kind} USING INDEX that_index.",
        )
