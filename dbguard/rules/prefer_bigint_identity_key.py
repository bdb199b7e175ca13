"""A 32-bit primary key runs out of values; use bigint from the start.

Problem: an integer (int4, serial) key stops at 2,147,483,647, and smallint sooner. When the sequence
reaches the end every insert fails, and widening the column then means a table rewrite under an
ACCESS EXCLUSIVE lock (see ban-column-type-change). bigint costs four bytes more per row. SQLite is
not affected: its INTEGER PRIMARY KEY is already a 64-bit rowid.

Bad:
    CREATE TABLE stock_moves (id serial PRIMARY KEY, sku text);

    CREATE TABLE stock_moves (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sku text);

Good:
    CREATE TABLE stock_moves (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sku text);

    CREATE TABLE stock_moves (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), sku text);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_SMALL_KEY_TYPES = frozenset(
    {"int", "int4", "integer", "serial", "serial4", "int2", "smallint", "smallserial", "serial2",
     "mediumint", "tinyint"}
)  # fmt: skip


@rule("prefer-bigint-identity-key", Severity.WARNING, "primary key narrower than bigint",
      dialects=frozenset({Dialect.POSTGRES, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("create-table"):
        columns = action.get("columns", ())
        key_columns = [c for c in columns if c[2]]
        for name, type_name, is_primary_key, is_identity in columns:
            base = type_name.lower().split("(")[0].split()[0] if type_name.strip() else ""
            # A generated key counts up and runs out; a column in a composite key (line_no) does not.
            generated = is_identity or base.endswith("serial") or len(key_columns) == 1
            if is_primary_key and generated and base in _SMALL_KEY_TYPES:
                limit = "4,294,967,295" if "unsigned" in type_name.lower() else "2,147,483,647"
                yield Violation(
                    message=f"primary key {action.table}.{name} is {type_name}: a 32-bit key runs out at "
                    f"{limit} (smaller types sooner), and then every insert fails",
                    help=f"Declare {name} as bigint (bigint GENERATED ALWAYS AS IDENTITY, or BIGINT "
                    "AUTO_INCREMENT on MySQL).",
                )
