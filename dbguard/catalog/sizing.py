"""Size-aware severity: the same lock is harmless on a 100-row table and an outage on a 50M-row one.

With a snapshot (`check --db` / `--stats`), every finding on a statement whose table the snapshot knows
names that table's size ("(stock: ~2.3M rows, 412 MB)"), and the findings of the rules below, which are
about how long a lock is held or a table is scanned or rewritten, take their severity from the size:
an error above the policy's `large_table_rows`, at most a warning below `small_table_rows`, the rule's
own in between (a rule whose severity the policy's [rules] sets keeps it). Rules about data loss (DROP,
DELETE or UPDATE without WHERE, TRUNCATE, ...) are never lowered by size: losing every row of a small
table is still a loss. A table of unknown size (never analyzed) keeps the rule's own severity, as offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbguard.registry import RuleContext, Severity

if TYPE_CHECKING:
    from dbguard.catalog.snapshot import TableInfo
    from dbguard.policy.policy import Thresholds
    from dbguard.sql.model import Statement

# Rules whose hazard grows with the table: a lock held while the table is scanned, rewritten or copied.
SIZE_AWARE_RULES = frozenset({
    "ban-add-unique-constraint",  # builds a unique index under SHARE/ACCESS EXCLUSIVE: a full scan
    "ban-cluster",  # rewrites the table under ACCESS EXCLUSIVE
    "ban-column-type-change",  # rewrites the table and its indexes under ACCESS EXCLUSIVE
    "ban-set-not-null",  # scans every row under ACCESS EXCLUSIVE
    "ban-vacuum-full",  # rewrites the table under ACCESS EXCLUSIVE
    "ban-volatile-default",  # rewrites the table to fill the new column
    "require-concurrent-index-creation",  # SHARE lock (writes wait) for the whole build
    "require-concurrent-reindex",  # REINDEX TABLE: writes wait for every index's rebuild
    "require-not-valid-check",  # validation scans every row under the ALTER's lock
    "require-not-valid-foreign-key",  # validation scans every row under SHARE ROW EXCLUSIVE on both tables
    "require-online-ddl",  # MySQL: a table copy that blocks writes
})  # fmt: skip


def concerned_table(statement: Statement, context: RuleContext) -> TableInfo | None:
    """The largest table the snapshot knows among those the statement names (acts on, writes or locks)."""
    names = [a.table for a in statement.actions if a.table]
    names += [*statement.facts.tables_written, *(name for name, _ in statement.facts.locks)]
    known = [t for name in dict.fromkeys(names) if (t := context.table(name, statement)) is not None]
    return max(known, key=lambda t: -1 if t.estimated_rows is None else t.estimated_rows, default=None)


def by_size(severity: Severity, table: TableInfo, thresholds: Thresholds) -> Severity:
    """A size-aware rule's severity on `table`: error above large_table_rows, at most a warning below
    small_table_rows, `severity` in between or when the size is unknown."""
    rows = table.estimated_rows
    if rows is None:
        return severity
    if rows > thresholds.large_table_rows:
        return Severity.ERROR
    if rows < thresholds.small_table_rows and severity.rank > Severity.WARNING.rank:
        return Severity.WARNING
    return severity


def size_note(table: TableInfo) -> str:
    return f" ({table.spelled}: {table.size_text})"
