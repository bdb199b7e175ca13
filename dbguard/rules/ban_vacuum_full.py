"""VACUUM FULL (and its SQLite and MySQL cousins) rewrites the whole table.

Problem: PostgreSQL's VACUUM FULL copies the table into a new file while holding an ACCESS EXCLUSIVE
lock (docs, VACUUM): no query can read or write the table until it finishes, and it needs disk space
for a second copy. SQLite's VACUUM rewrites the whole database file under an exclusive lock. MySQL's
OPTIMIZE TABLE (like ALTER TABLE ... FORCE or ENGINE=) rebuilds the table: a full copy, with writes
blocked for the whole rebuild on MyISAM or when the table is copied.

Bad:
    VACUUM FULL stock;

    VACUUM (FULL, ANALYZE) orders;

Good:
    VACUUM stock;

    VACUUM (ANALYZE) orders;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_EFFECT = {
    Dialect.POSTGRES: "under an ACCESS EXCLUSIVE lock: reads and writes wait until it finishes",
    Dialect.SQLITE: "under an exclusive lock: every other connection waits until it finishes",
    Dialect.MYSQL: "by copying every row: writes wait while it holds its exclusive lock",
}
_HELP = {
    Dialect.POSTGRES: "Use plain VACUUM (SHARE UPDATE EXCLUSIVE: reads and writes go on); to give space "
    "back to the operating system, use pg_repack or pg_squeeze, which hold the exclusive lock only briefly.",
    Dialect.SQLITE: "Run VACUUM in a maintenance window when nothing else uses the database, or switch to "
    "auto_vacuum=INCREMENTAL and reclaim space with PRAGMA incremental_vacuum.",
    Dialect.MYSQL: "Rebuild with an online schema-change tool (gh-ost or pt-online-schema-change) at a quiet "
    "time; if a plain rebuild is acceptable for this table's size, waive this rule with a reason.",
}


@rule("ban-vacuum-full", Severity.ERROR, "VACUUM FULL or another full rewrite of a table")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("vacuum"):
        if not (action.get("full") or statement.dialect is Dialect.SQLITE):
            continue
        everything = "the whole database" if statement.dialect is Dialect.SQLITE else "every table"
        target = action.table or everything
        command = action.get("how") or ("VACUUM FULL" if statement.dialect is Dialect.POSTGRES else statement.kind)
        yield Violation(
            message=f"{command} rewrites {target} {_EFFECT[statement.dialect]}, and it needs disk "
            "space for a second copy",
            help=_HELP[statement.dialect],
        )
