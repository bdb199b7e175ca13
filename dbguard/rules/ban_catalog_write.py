"""Writing to the database's own catalog tables bypasses everything that keeps the schema consistent.

Problem: SQLite's schema table (`sqlite_master`, `sqlite_schema`) is the database's definition; a
wrong row there makes the file unreadable ("The Schema Table" in the SQLite docs warns that editing it
"can easily result in a corrupt database file"). MySQL's `mysql` schema holds the grant tables and
server metadata: editing them behind GRANT and ALTER USER skips every check those statements make.

On MySQL, `UPDATE mysql.user SET host = '%' WHERE user = 'app'` is such a write; `RENAME USER` is the
statement that does it with the server's checks.

Bad:
    UPDATE sqlite_master SET sql = 'CREATE TABLE t(a, b)' WHERE name = 't';

    DELETE FROM sqlite_schema WHERE name = 'orders_old_idx';

Good:
    ALTER TABLE t ADD COLUMN b TEXT;

    SELECT name, sql FROM sqlite_schema WHERE type = 'table';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-catalog-write", Severity.ERROR, "Writing to the database's own catalog tables",
      dialects=frozenset({Dialect.SQLITE, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("catalog-write"):
        yield Violation(
            message=f"{statement.kind} writes to {action.table}, the database's own catalog: a wrong row there "
            "corrupts the schema or the server's accounts, and no constraint checks it",
            help="Change the schema with DDL (ALTER TABLE, CREATE/DROP) and accounts with GRANT, ALTER USER or "
            "RENAME USER.",
        )
