"""MySQL commits implicitly around DDL: a script that mixes DDL with DML cannot be rolled back as one.

Problem: in MySQL, CREATE, ALTER, DROP, RENAME, TRUNCATE, LOCK TABLES and the like commit the open
transaction before they run and commit again after (MySQL docs, "Statements That Cause an Implicit
Commit"). In a script that also changes rows, the rows written before the DDL are committed at that
point, and a failure later leaves the script half applied: there is no single transaction to roll
back. (PostgreSQL runs DDL inside the transaction: mixing is fine there, and this rule is MySQL's only.)

Bad:
    UPDATE orders SET status = 'closed' WHERE id = 7;
    ALTER TABLE orders ADD COLUMN closed_at DATETIME;

Good:
    ALTER TABLE orders ADD COLUMN closed_at DATETIME;

    UPDATE orders SET status = 'closed' WHERE id = 7;
    INSERT INTO order_notes (order_id, note) VALUES (7, 'closed by hand');
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Script, Statement

_DML = ("insert", "update", "delete", "merge")


def _dml_statements(script: Script) -> list[Statement]:
    """The top-level statements that change rows, in order. A change inside a trigger's, procedure's or
    event's body does not run when the script runs (MySQL has no anonymous block), so it does not count."""
    return [s for s in script.statements if s.parent is None and s.actions_of(*_DML)]


@rule("ban-mixed-ddl-and-dml", Severity.ERROR, "DDL mixed with DML in one MySQL script",
      dialects=frozenset({Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if statement.facts.transactional or statement.parent is not None:
        return
    dml = context.per_script("dml-statements", _dml_statements)
    if not dml:
        return
    before = [s.span.line for s in dml if s.index < statement.index]
    effect = (f"the rows written before it (line {before[-1]}) are committed at this point" if before else
              "the rows written after it run in a transaction of their own")  # fmt: skip
    yield Violation(
        message=f"{statement.kind} commits implicitly in MySQL, in a script that also changes rows: {effect}, "
        "and a failure leaves the script half applied",
        help="Put the DDL in a script of its own, run and checked before the script that changes rows (or after "
        "it); each is then all or nothing.",
    )
