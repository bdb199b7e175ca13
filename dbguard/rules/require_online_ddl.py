"""A MySQL ALTER TABLE must ask for an online algorithm, so it fails rather than lock the table.

Problem: without ALGORITHM and LOCK clauses MySQL picks the best method it can, and silently falls
back to copying the table (ALGORITHM=COPY), which blocks writes for the whole copy, when the change
cannot be made in place. With ALGORITHM=INPLACE, LOCK=NONE (or ALGORITHM=INSTANT) MySQL refuses such
a change at once instead ("Online DDL" in the MySQL manual). Changes that InnoDB always makes
instantly or in place with concurrent DML need no clause: adding a column with no default or a literal
one, adding, dropping or renaming a secondary (not FULLTEXT or SPATIAL) index, setting a column's
default ("Online DDL Operations"; InnoDB, the default engine, is assumed).

MySQL refuses ALGORITHM=INSTANT with any LOCK clause but LOCK=DEFAULT ("Only LOCK=DEFAULT is
supported for operations that are performed instantly"; MariaDB accepts it). A column added with an
expression default, `DEFAULT (expr)`, cannot be added instantly: MySQL rebuilds the table. CREATE
INDEX with ALGORITHM=COPY or LOCK=SHARED|EXCLUSIVE blocks writers for the whole build.

Bad:
    ALTER TABLE orders MODIFY total DECIMAL(12,2);

    ALTER TABLE orders ADD COLUMN note TEXT, ALGORITHM=INPLACE, LOCK=SHARED;

    ALTER TABLE orders ADD COLUMN note TEXT, ALGORITHM=INSTANT, LOCK=NONE;

    ALTER TABLE orders ADD COLUMN tags JSON DEFAULT (JSON_ARRAY()), ALGORITHM=INPLACE, LOCK=NONE;

    CREATE INDEX orders_sku_idx ON orders (sku) ALGORITHM=COPY;

Good:
    ALTER TABLE orders ADD INDEX orders_sku_idx (sku), ALGORITHM=INPLACE, LOCK=NONE;

    ALTER TABLE orders ADD INDEX orders_sku_idx (sku);

    ALTER TABLE orders ADD COLUMN note TEXT, ALGORITHM=INSTANT;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.rules.ban_column_type_change import mysql_list_type
from dbguard.sql.model import Statement


@rule("require-online-ddl", Severity.ERROR, "MySQL ALTER TABLE without ALGORITHM and LOCK=NONE",
      dialects=frozenset({Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("add-column"):
        if action.get("default_expression"):
            yield Violation(
                message=f"adding {action.table}.{action.column} with DEFAULT {action.get('default_sql')}, an "
                "expression default, cannot be done instantly: MySQL rebuilds the whole table",
                help="Add the column with no default or a literal one (ALGORITHM=INSTANT), then fill it in "
                "batches, or make the change with an online schema-change tool.",
            )
    for action in statement.actions_of("create-index") if statement.kind == "CREATE INDEX" else ():
        algorithm, lock = action.get("algorithm"), action.get("lock")
        if algorithm == "copy" or lock in ("shared", "exclusive"):
            given = f"ALGORITHM={algorithm.upper()}" if algorithm == "copy" else f"LOCK={lock.upper()}"
            yield Violation(
                message=f"CREATE INDEX on {action.table} with {given} blocks writes to the table for the whole "
                "index build",
                help="Leave the options out or write ALGORITHM=INPLACE LOCK=NONE: InnoDB builds a secondary "
                "index while writes go on.",
            )
    for action in statement.actions_of("alter-table"):
        algorithm, lock = action.get("algorithm"), action.get("lock")
        on = " on" if statement.kind != "ALTER TABLE" else ""  # DROP INDEX ... ALGORITHM=: MySQL maps it to ALTER
        subject = f"{statement.kind}{on} {action.table}"
        if algorithm == "instant" and lock not in (None, "default"):
            yield Violation(
                message=f"{subject} asks for ALGORITHM=INSTANT with LOCK={lock.upper()}: MySQL "
                "rejects that (only LOCK=DEFAULT goes with INSTANT), so the script fails there",
                help="Drop the LOCK clause: `, ALGORITHM=INSTANT` alone already takes no lock beyond a brief "
                "metadata lock.",
            )
            continue
        # INSTANT only touches metadata; MySQL accepts no LOCK clause but DEFAULT with it.
        if algorithm == "instant" or (algorithm == "inplace" and lock == "none"):
            continue
        if algorithm in (None, "default") and lock in (None, "default", "none") and _online_by_default(statement):
            continue
        if lock in ("shared", "exclusive"):
            blocked = "reads and writes" if lock == "exclusive" else "writes"
            problem = f"asks for LOCK={lock.upper()}: MySQL blocks {blocked} for the whole change"
        elif algorithm != "inplace":
            given = f"ALGORITHM={algorithm.upper()}" if algorithm else "no ALGORITHM clause"
            problem = (f"has {given}: MySQL may silently copy the table, blocking writes until the copy "
                       "is done")  # fmt: skip
        else:
            blocked = "reads and writes" if lock == "exclusive" else "writes"
            problem = (f"runs in place with LOCK={(lock or 'default').upper()}: MySQL may block {blocked} "
                       "for the whole change")  # fmt: skip
        changes = [a for a in statement.actions if a.kind != "alter-table"]
        maybe_instant = algorithm is None and lock is None and changes and all(
            a.kind == "alter-column-type" and mysql_list_type(a) for a in changes)  # fmt: skip
        instant_note = " (an ENUM or SET list that only gains values at its end is changed instantly)"
        yield Violation(
            message=f"{subject} {problem}" + (instant_note if maybe_instant else ""),
            help="Append `, ALGORITHM=INPLACE, LOCK=NONE` (or `, ALGORITHM=INSTANT`) so MySQL refuses the "
            "change instead of copying the table under a lock.",
            at_most=Severity.WARNING if maybe_instant else None,
        )


def _online_by_default(statement: Statement) -> bool:
    """Whether every change in this ALTER TABLE is one InnoDB makes instantly or in place with concurrent
    DML when no clause is given, so no silent fallback to a table copy can happen."""
    changes = [a for a in statement.actions if a.kind != "alter-table"]
    for action in changes:
        match action.kind:
            case "rename-index" | "set-default":
                continue
            case "add-column" if not (action.get("default_expression") or action.get("default_volatile")):
                continue
            case "create-index" if action.get("index_kind") is None:
                continue
            case "add-constraint" if action.get("constraint") == "unique":
                continue  # a secondary unique index
            case "drop" if action.get("object") == "index":
                continue
        return False
    return bool(changes)  # an ALTER TABLE whose changes dbguard did not see is not vouched for
