"""A statement that changes the server, not the database the script runs in.

Problem: a maintenance script runs in one database, in one transaction. ALTER DATABASE (a rename, a
default setting), CREATE DATABASE, tablespaces, comments on databases and CHECKPOINT act on the whole
server or on other databases: they reach other applications, some cannot be rolled back with the
script, and none can be rehearsed in a sandbox (dry-run refuses them).

MySQL's `SET GLOBAL` and `SET PERSIST` (as in `SET GLOBAL innodb_flush_log_at_trx_commit = 0`) change
a server variable for every session (PERSIST also across restarts), outside any transaction; `SET
SESSION` is the script's own.

Bad:
    ALTER DATABASE warehouse RENAME TO warehouse_old;

    ALTER DATABASE warehouse SET search_path = archive, public;

Good:
    SET LOCAL search_path = archive, public;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement
from dbguard.sql.reach import beyond_the_database

# Kinds other rules do not already flag for reaching beyond the database (DROP DATABASE, ALTER SYSTEM,
# roles and grants, dangerous functions, COPY to files have rules of their own); only these are re-read.
_KINDS = frozenset({"ALTER DATABASE", "ALTER RENAME", "COMMENT", "CREATE DATABASE", "CREATE TABLESPACE",
                    "DROP TABLESPACE", "CHECKPOINT"})  # fmt: skip


@rule("ban-server-wide-change", Severity.ERROR, "A change to the server, not to this database",
      dialects=frozenset({Dialect.POSTGRES, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if statement.dialect is Dialect.MYSQL:
        yield from _mysql_global_settings(statement)
        return
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


_SERVER_SCOPES = {"global": "for every session", "persist": "for every session and across restarts",
                  "persist_only": "from the next restart on"}  # fmt: skip


def _mysql_global_settings(statement: Statement) -> Iterator[Violation]:
    for action in statement.actions_of("set"):
        scope = str(action.get("scope") or "")
        if scope in _SERVER_SCOPES:
            yield Violation(
                message=f"SET {scope.upper()} {action.get('name')} = {action.get('value')} changes the server "
                f"{_SERVER_SCOPES[scope]}, outside the script's transaction; no rollback undoes it",
                help="Change server variables through the reviewed configuration process; for this script's own "
                "needs, SET SESSION.",
            )
