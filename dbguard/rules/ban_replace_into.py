"""REPLACE deletes the row it conflicts with, and everything that cascades from that delete.

Problem: `REPLACE INTO` (MySQL, SQLite) and `INSERT OR REPLACE` (SQLite) do not update a conflicting
row: they delete it and insert a new one. An ON DELETE CASCADE foreign key then deletes its children
too, and ON DELETE triggers fire, silently, for what looks like an insert.

Bad:
    REPLACE INTO stock (warehouse_id, product_id, qty) VALUES (1, 7, 40);

    INSERT OR REPLACE INTO stock (warehouse_id, product_id, qty) VALUES (1, 7, 40);

Good:
    INSERT INTO stock (warehouse_id, product_id, qty) VALUES (1, 7, 40)
      ON CONFLICT (warehouse_id, product_id) DO UPDATE SET qty = excluded.qty;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-replace-into", Severity.ERROR, "REPLACE deletes conflicting rows and what cascades from them",
      dialects=frozenset({Dialect.SQLITE, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("insert"):
        if action.get("replace"):
            yield Violation(
                message=f"REPLACE into {action.table} deletes each conflicting row before inserting: ON DELETE "
                "CASCADE children and delete triggers go with it",
                help="Update in place: INSERT ... ON CONFLICT (...) DO UPDATE (SQLite) or INSERT ... ON DUPLICATE "
                "KEY UPDATE (MySQL).",
            )
