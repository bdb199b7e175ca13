"""A statement that changes the server, not the database the script runs in.

Problem: a maintenance script runs in one database, in one transaction. ALTER DATABASE (a rename, a
default setting), CREATE DATABASE, tablespaces, comments on databases and CHECKPOINT act on the whole
server or on other databases: they reach other applications, some cannot be rolled back with the
script, and none can be rehearsed in a sandbox (dry-run refuses them).

Bad:
    ALTER DATABASE warehouse RENAME TO warehouse_old;

    ALTER DATABASE warehouse SET search_path = archive, public;

Good:
    SET LOCAL search_path = archive, public;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement
from dbguard.sql.reach import beyond_the_database

# Kinds other rules do not already flag for reaching beyond the database (DROP DATABASE, ALTER SYSTEM,
# roles and grants, dangerous functions, COPY to files have rules of their own); only these are re-read.
_KINDS = frozenset({"ALTER DATABASE", "ALTER RENAME", "COMMENT", "CREATE DATABASE", "CREATE TABLESPACE",
                    "DROP TABLESPACE", "CHECKPOINT"})  # fmt: skip


@rule("ban-server-wide-change", Severity.ERROR, "A change to the server, not to this database",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if statement.kind not in _KINDS:
        return
    why = beyond_the_database(statement)
    if why is not None:
        yield Violation(
            message=f"{statement.kind} {why}: it acts on the server or on other databases, outside the script's "
            "database and transaction, and no dry-run can rehearse it",
            help="Make server-wide changes through the reviewed configuration process, not a maintenance script; "
            "for a setting this script needs, use SET LOCAL.",
        )
