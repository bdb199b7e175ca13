"""COPY to or from a server-side file or program reaches outside the database.

Problem: `COPY ... FROM '/path'`, `COPY ... TO '/path'` and `COPY ... PROGRAM '...'` read or write
files on the database server, or run a shell command there, as the server's operating-system user.
Their effect on the server cannot be rolled back, and the result depends on the server's files.

Bad:
    COPY stock FROM '/var/lib/postgresql/stock.csv' WITH (FORMAT csv);

    COPY stock TO PROGRAM 'gzip > /tmp/stock.csv.gz';

Good:
    COPY stock FROM STDIN WITH (FORMAT csv);

    COPY stock TO STDOUT WITH (FORMAT csv);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-copy-program-or-file", Severity.ERROR, "COPY with a server-side file or program",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("copy"):
        if action.get("program") or action.get("file"):
            source = "a program run" if action.get("program") else "a file"
            direction = "from" if action.get("is_from") else "to"
            table = action.table or "a query"
            yield Violation(
                message=f"COPY {table} {direction} {source} on the database server: it reaches outside the "
                "database and cannot be rolled back",
                help="Stream the data through the client instead: COPY ... FROM STDIN / TO STDOUT (psql's "
                "\\copy does this), so files stay on the machine running the script.",
            )
