"""SET NOT NULL scans the whole table while holding an ACCESS EXCLUSIVE lock.

Problem: ALTER COLUMN ... SET NOT NULL takes an ACCESS EXCLUSIVE lock and reads every row to prove
there is no NULL (PostgreSQL docs, ALTER TABLE): every query on the table waits for the whole scan.
Since PostgreSQL 12 the scan is skipped when a valid CHECK constraint already proves the column is
not null.

Bad:
    ALTER TABLE stock ALTER COLUMN sku SET NOT NULL;

Good:
    ALTER TABLE stock ADD CONSTRAINT stock_sku_not_null CHECK (sku IS NOT NULL) NOT VALID;

    ALTER TABLE stock VALIDATE CONSTRAINT stock_sku_not_null;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-set-not-null", Severity.ERROR, "SET NOT NULL scans the table under ACCESS EXCLUSIVE",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("set-not-null"):
        yield Violation(
            message=f"SET NOT NULL on {action.table}.{action.column} takes an ACCESS EXCLUSIVE lock and "
            f"scans every row: every query on {action.table} waits for the scan",
            help=f"Add CHECK ({action.column} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later step "
            "(SHARE UPDATE EXCLUSIVE: reads and writes go on); SET NOT NULL then uses the constraint and "
            "skips the scan (PostgreSQL 12+), after which the CHECK can be dropped.",
        )
