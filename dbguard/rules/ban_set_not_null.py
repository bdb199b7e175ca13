"""SET NOT NULL scans the whole table while holding an ACCESS EXCLUSIVE lock.

Problem: ALTER COLUMN ... SET NOT NULL takes an ACCESS EXCLUSIVE lock and reads every row to prove
there is no NULL (PostgreSQL docs, ALTER TABLE): every query on the table waits for the whole scan.
Since PostgreSQL 12 the scan is skipped when a valid CHECK constraint already proves the column is
not null. So: add `CHECK (col IS NOT NULL) NOT VALID`, validate it in a later step (SHARE UPDATE
EXCLUSIVE: reads and writes go on), then SET NOT NULL, which no longer scans, and drop the CHECK, which
the NOT NULL now replaces. Offline, `check` knows only the CHECKs the script itself validates: a
validated CHECK already on the table cannot be seen, and this rule then fires (waive it, with that
reason, after looking); with `check --db` or `--stats` it sees the table's constraints. ALTER DOMAIN
... SET NOT NULL (or ADD CONSTRAINT ... NOT NULL) scans every table with a column of the domain under a
SHARE lock (writes wait): a CHECK (VALUE IS NOT NULL) NOT VALID, validated later, is the way there.

Bad:
    ALTER TABLE stock ALTER COLUMN sku SET NOT NULL;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD CONSTRAINT stock_sku_not_null CHECK (sku IS NOT NULL) NOT VALID;
    -- dbguard: step
    ALTER TABLE stock VALIDATE CONSTRAINT stock_sku_not_null;
    ALTER TABLE stock ALTER COLUMN sku SET NOT NULL;
    ALTER TABLE stock DROP CONSTRAINT stock_sku_not_null;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.constraints import key, not_null_column_of
from dbguard.sql.model import Statement


@rule("ban-set-not-null", Severity.ERROR, "SET NOT NULL scans the table under ACCESS EXCLUSIVE",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("alter-type"):
        if action.get("change") == "set-not-null":
            yield Violation(
                message=f"NOT NULL on domain {action.table} checks every stored value of the domain: each table "
                "with a column of it is locked SHARE (writes wait) and scanned",
                help=f"Add CHECK (VALUE IS NOT NULL) NOT VALID to domain {action.table} instead, and validate it in "
                "a later step, at a time when writes to those tables may wait.",
            )
    for action in statement.actions_of("set-not-null"):
        table, column = str(action.table), str(action.column)
        if context.created_earlier(table, statement):
            continue  # a table the script created: empty, nothing to scan
        if context.constraints.validated_not_null_check(table, column, context.position(statement)):
            continue  # PostgreSQL 12+ uses the validated CHECK and skips the scan
        if _validated_on_the_table(table, column, statement, context):
            continue
        offline = (f" (unless a validated CHECK ({column} IS NOT NULL) is already on the table, which check cannot "
                   "see offline)") if context.catalog is None else ""  # fmt: skip
        yield Violation(
            message=f"SET NOT NULL on {table}.{column} takes an ACCESS EXCLUSIVE lock and scans every row: "
            f"every query on {table} waits for the scan{offline}",
            help=f"Add CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later step (a line "
            "`-- dbguard: step` before it; SHARE UPDATE EXCLUSIVE: reads and writes go on); SET NOT NULL after the "
            "VALIDATE then uses the constraint and skips the scan (PostgreSQL 12+), and the CHECK can be dropped. "
            "If such a CHECK is already validated on the table, waive this rule with that reason.",
        )


def _validated_on_the_table(table: str, column: str, statement: Statement, context: RuleContext) -> bool:
    """A CHECK (column IS NOT NULL) already on the table (`check --db` / `--stats`), validated there or by the
    script before this statement."""
    info = context.table(table, statement)
    for constraint in info.constraints if info else ():
        if constraint.type != "check" or not_null_column_of(constraint.definition) != column:
            continue
        validated_at = context.constraints.validated_at.get((key(table), constraint.name.lower()))
        if constraint.validated or (validated_at is not None and validated_at < context.position(statement)):
            return True
    return False
