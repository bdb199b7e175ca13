"""A write to a table the policy protects.

Problem: the policy names tables (`protected_tables`) whose contents are too valuable to change from
a maintenance script without a deliberate, reviewed decision, like the stock table whose loss
started this project. Any statement that writes one of them is a finding: DML, DDL and locks alike.

Bad:
    UPDATE stock SET qty = qty - 1 WHERE sku = 'A-1001';

    ALTER TABLE stock ADD COLUMN bin_code text;

Good:
    SELECT sku, qty FROM stock WHERE qty < 0;

    UPDATE reservations SET status = 'expired' WHERE expires_at < now();
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("protected-table-write", Severity.ERROR, "Write to a table the policy protects")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for table in statement.facts.tables_written:
        if context.policy.is_protected(table):
            yield Violation(
                message=f"{statement.kind} writes {table}, which the policy ({context.policy.name}) protects",
                help=f"Leave {table} out of this script; if the change is intended and reviewed, waive this "
                "rule on the statement with a reason that names the review.",
            )
