"""COPY to or from a server-side file or program reaches outside the database.

Problem: `COPY ... FROM '/path'`, `COPY ... TO '/path'` and `COPY ... PROGRAM '...'` (PostgreSQL),
`LOAD DATA INFILE` and `SELECT ... INTO OUTFILE | DUMPFILE` (MySQL) read or write files on the
database server, or run a shell command there, as the server's operating-system user. Their effect
on the server cannot be rolled back, and the result depends on the server's files. (MySQL's
`LOAD DATA LOCAL INFILE` reads the file on the client instead, like COPY FROM STDIN.)

Bad:
    COPY stock FROM '/var/lib/postgresql/stock.csv' WITH (FORMAT csv);

    COPY stock TO PROGRAM 'gzip > /tmp/stock.csv.gz';

Good:
    COPY stock FROM STDIN WITH (FORMAT csv);

    COPY stock TO STDOUT WITH (FORMAT csv);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-copy-program-or-file", Severity.ERROR, "COPY with a server-side file or program",
      dialects=frozenset({Dialect.POSTGRES, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("copy"):
        if action.get("program") or action.get("file"):
            source = "a program run" if action.get("program") else "a file"
            direction = "from" if action.get("is_from") else "to"
            table = action.table or "a query"
            head = f"COPY {table} {direction} {source} on the database server"
            if action.get("statement"):  # MySQL's LOAD DATA INFILE, SELECT ... INTO OUTFILE | DUMPFILE
                verb = "reads" if action.get("is_from") else "writes"
                into = f" (table {action.table})" if action.table else ""
                head = f"{action.get('statement')} '{action.get('path')}'{into} {verb} a file on the database server"
            yield Violation(
                message=f"{head}: it reaches outside the database and cannot be rolled back",
                help="Stream the data through the client instead: COPY ... FROM STDIN / TO STDOUT (psql's "
                "\\copy does this), or MySQL's LOAD DATA LOCAL INFILE, so files stay on the machine running the "
                "script.",
            )
