"""Adding a column whose default is computed per row rewrites the whole table.

Problem: since PostgreSQL 11 a column added with a constant or stable default (`DEFAULT 0`,
`DEFAULT now()`) only changes the catalog. A volatile default (random(), gen_random_uuid(),
clock_timestamp(), nextval() behind serial and identity columns) needs a value per row, so the table
and its indexes are rewritten under the ACCESS EXCLUSIVE lock of ALTER TABLE (docs, ALTER TABLE):
every query on the table waits for the whole rewrite.

Bad:
    ALTER TABLE stock ADD COLUMN token uuid DEFAULT gen_random_uuid();

    ALTER TABLE orders ADD COLUMN seen_at timestamptz NOT NULL DEFAULT clock_timestamp();

    ALTER TABLE stock ADD COLUMN row_id bigint GENERATED ALWAYS AS IDENTITY;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE orders ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();

    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN reserved integer NOT NULL DEFAULT 0;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-volatile-default", Severity.ERROR, "new column with a volatile default rewrites the table",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("add-column"):
        if not action.get("default_volatile"):
            continue
        default = action.get("default_sql")
        how = f"with DEFAULT {default}" if default else f"({action.get('type')}, a value generated per row)"
        yield Violation(
            message=f"adding {action.table}.{action.column} {how} rewrites {action.table} under an ACCESS "
            "EXCLUSIVE lock: every query on the table waits for the whole rewrite",
            help="Add the column with no default (or a constant one), then ALTER COLUMN ... SET DEFAULT for "
            "new rows, and fill existing rows with batched UPDATEs.",
        )
