"""Adding a CHECK constraint scans every row while the table is locked against all queries.

Problem: ADD CONSTRAINT ... CHECK takes an ACCESS EXCLUSIVE lock (PostgreSQL docs, ALTER TABLE) and
then reads every existing row: every query on the table waits for the whole scan. Added NOT VALID,
the constraint is enforced for new rows at once, and VALIDATE CONSTRAINT later checks old rows under
a SHARE UPDATE EXCLUSIVE lock that lets reads and writes go on. A table created earlier in the same
script is empty, so there is nothing to check.

ALTER DOMAIN ... ADD CONSTRAINT ... CHECK checks the value in every column of the domain, in every
table that has one, under a SHARE lock on each (writes wait; PostgreSQL 15's pg_locks). Added NOT
VALID, it checks new values only; VALIDATE CONSTRAINT on a domain still takes SHARE on those tables in
PostgreSQL 15, so run it when writes may wait.

Bad:
    ALTER TABLE stock ADD CONSTRAINT stock_qty_positive CHECK (qty >= 0);

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD CONSTRAINT stock_qty_positive CHECK (qty >= 0) NOT VALID;

    SET lock_timeout = '2s';
    CREATE TABLE returns (id bigint PRIMARY KEY, qty integer);
    ALTER TABLE returns ADD CONSTRAINT returns_qty_positive CHECK (qty > 0);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-not-valid-check", Severity.ERROR, "CHECK constraint added without NOT VALID",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in context.validated_constraints(statement, "check"):
        name = action.get("name") or "<constraint name>"
        what = f"CHECK constraint {name}" if action.get("name") else "a CHECK constraint"
        yield Violation(
            message=f"adding {what} on {action.table} takes an ACCESS EXCLUSIVE lock and "
            f"scans every row: every query on {action.table} waits for the scan",
            help=f"ADD the CHECK ... NOT VALID, then ALTER TABLE {action.table} VALIDATE CONSTRAINT {name} "
            "in a later step (SHARE UPDATE EXCLUSIVE: reads and writes go on).",
        )
    for action in statement.actions_of("alter-type"):
        if action.get("change") == "add-check" and not action.get("not_valid"):
            name = action.get("name") or "<constraint name>"
            yield Violation(
                message=f"adding CHECK constraint {name} to domain {action.table} checks every stored value of the "
                "domain: each table with a column of it is locked SHARE (writes wait) and scanned",
                help=f"ADD the CHECK ... NOT VALID (new values are checked at once), then ALTER DOMAIN {action.table} "
                f"VALIDATE CONSTRAINT {name} in a later step, at a time when writes to those tables may wait.",
            )
    for action, added in context.validated_in_same_step(statement, "check"):
        held = f"the ADD's ACCESS EXCLUSIVE lock on {action.table} stays held (every query on it waits)"
        yield Violation(
            message=f"VALIDATE CONSTRAINT {action.get('name')} runs in the same transaction as the ADD ... NOT VALID "
            f"(line {added.line}): {held} through the whole validation scan",
            help="Put the VALIDATE in a later step: a line `-- dbguard: step` before it commits the ADD first, "
            "and the validation then takes only SHARE UPDATE EXCLUSIVE (reads and writes go on).",
        )
