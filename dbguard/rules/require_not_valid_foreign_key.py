"""Adding a foreign key checks every row while writes to both tables are blocked.

Problem: ADD FOREIGN KEY takes a SHARE ROW EXCLUSIVE lock on the table and on the referenced table
(PostgreSQL docs, ALTER TABLE) and then checks every existing row: inserts, updates and deletes on
both tables wait for the whole check. Added NOT VALID, the constraint is enforced for new rows at
once, and VALIDATE CONSTRAINT later checks old rows under a SHARE UPDATE EXCLUSIVE lock that lets
reads and writes go on. A table created earlier in the same script is empty, so there is nothing to
check. `ADD COLUMN ... REFERENCES` adds a foreign key too, and locks the referenced table the same way;
it checks the rows only when the new column has a DEFAULT (without one, every value is NULL and the
server skips the check).

Bad:
    ALTER TABLE orders ADD CONSTRAINT orders_sku_fk FOREIGN KEY (sku) REFERENCES stock (sku);

    ALTER TABLE orders ADD COLUMN warehouse_id bigint DEFAULT 1 REFERENCES warehouses (id);

Good:
    SET lock_timeout = '2s';
    ALTER TABLE orders ADD CONSTRAINT orders_sku_fk FOREIGN KEY (sku) REFERENCES stock (sku) NOT VALID;

    SET lock_timeout = '2s';
    CREATE TABLE returns (id bigint PRIMARY KEY, sku text);
    ALTER TABLE returns ADD CONSTRAINT returns_sku_fk FOREIGN KEY (sku) REFERENCES stock (sku);

    SET lock_timeout = '2s';
    ALTER TABLE orders ADD COLUMN warehouse_id bigint REFERENCES warehouses (id);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-not-valid-foreign-key", Severity.ERROR, "foreign key added without NOT VALID",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in context.validated_constraints(statement, "foreign"):
        name = action.get("name") or "<constraint name>"
        what = f"foreign key {name}" if action.get("name") else "a foreign key"
        if action.get("inline"):
            yield Violation(
                message=f"ADD COLUMN ... REFERENCES with a DEFAULT adds {what} on {action.table}: it takes SHARE ROW "
                f"EXCLUSIVE locks on {action.table} and the referenced table and checks every row (the default "
                "in each): writes to both wait",
                help="NOT VALID is not allowed inline: ADD the column without REFERENCES, then ADD CONSTRAINT "
                "... FOREIGN KEY (column) REFERENCES ... NOT VALID, then VALIDATE CONSTRAINT it in a later step "
                "(SHARE UPDATE EXCLUSIVE: reads and writes go on).",
            )
            continue
        yield Violation(
            message=f"adding {what} on {action.table} takes SHARE ROW EXCLUSIVE locks on "
            f"{action.table} and the referenced table and checks every row: writes to both wait",
            help=f"ADD the foreign key ... NOT VALID, then ALTER TABLE {action.table} VALIDATE CONSTRAINT "
            f"{name} in a later step (SHARE UPDATE EXCLUSIVE: reads and writes go on).",
        )
    for action, added in context.validated_in_same_step(statement, "foreign"):
        held = (f"the ADD's SHARE ROW EXCLUSIVE locks on {action.table} and the referenced table stay held "
                "(writes to both wait)")  # fmt: skip
        yield Violation(
            message=f"VALIDATE CONSTRAINT {action.get('name')} runs in the same transaction as the ADD ... NOT VALID "
            f"(line {added.line}): {held} through the whole validation scan",
            help="Put the VALIDATE in a later step: a line `-- dbguard: step` before it commits the ADD first, "
            "and the validation then takes only SHARE UPDATE EXCLUSIVE (reads and writes go on).",
        )
