"""A call to a function that ends other sessions, destroys data outside any table, or runs SQL elsewhere.

Problem: some built-in functions do their damage without touching a table dbguard can see:
pg_terminate_backend ends other people's sessions, lo_unlink deletes large objects,
pg_drop_replication_slot breaks a replica, dblink_exec runs SQL on another server. None of it can be
rolled back with the script's transaction. MySQL's `KILL [CONNECTION | QUERY] id` ends another
session's connection or statement the same way. pg_read_file, pg_ls_dir, pg_stat_file and the other
generic file access functions read the database server's own files (its configuration, pg_hba.conf,
its logs) as the server's operating-system user: nothing a maintenance script needs, and what they read
leaves the database.

Bad:
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'warehouse';

    SELECT lo_unlink(label_image) FROM products WHERE discontinued;

    SELECT pg_read_file('/etc/postgresql/15/main/pg_hba.conf');

Good:
    SELECT pid, state, query FROM pg_stat_activity WHERE datname = 'warehouse';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.classify_pg import SERVER_FILE_FUNCTIONS
from dbguard.sql.model import Statement


@rule("ban-dangerous-function", Severity.ERROR, "A function with effects outside the transaction",
      dialects=frozenset({Dialect.POSTGRES, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("dangerous-function"):
        name = action.get("name")
        call = action.get("statement") or f"{name}()"  # MySQL's KILL is a statement, not a function
        if name in SERVER_FILE_FUNCTIONS:
            yield Violation(
                message=f"{call} reads the database server's own files as its operating-system user: outside the "
                "database, nothing a maintenance script needs",
                help="Read server files on the server itself, as an administrator, outside the maintenance script.",
            )
            continue
        yield Violation(
            message=f"{call} acts outside the script's transaction (other sessions, large objects, replication "
            "or another server): a rollback does not undo it",
            help=f"Do what {call} does by hand, deliberately, outside the maintenance script; or waive this "
            "rule with a reason after review.",
        )
