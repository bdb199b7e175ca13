"""A MySQL ALTER TABLE must ask for an online algorithm, so it fails rather than lock the table.

Problem: without ALGORITHM and LOCK clauses MySQL picks the best method it can, and silently falls
back to copying the table (ALGORITHM=COPY), which blocks writes for the whole copy, when the change
cannot be made in place. With ALGORITHM=INPLACE, LOCK=NONE (or ALGORITHM=INSTANT) MySQL refuses such
a change at once instead ("Online DDL" in the MySQL manual).

Bad:
    ALTER TABLE orders ADD INDEX orders_sku_idx (sku);

    ALTER TABLE orders ADD COLUMN note TEXT, ALGORITHM=INPLACE, LOCK=SHARED;

Good:
    ALTER TABLE orders ADD INDEX orders_sku_idx (sku), ALGORITHM=INPLACE, LOCK=NONE;

    ALTER TABLE orders ADD COLUMN note TEXT, ALGORITHM=INSTANT;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-online-ddl", Severity.ERROR, "MySQL ALTER TABLE without ALGORITHM and LOCK=NONE",
      dialects=frozenset({Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("alter-table"):
        algorithm, lock = action.get("algorithm"), action.get("lock")
        # INSTANT only touches metadata; MySQL accepts no LOCK clause but DEFAULT with it.
        if algorithm == "instant" or (algorithm == "inplace" and lock == "none"):
            continue
        if algorithm != "inplace":
            given = f"ALGORITHM={algorithm.upper()}" if algorithm else "no ALGORITHM clause"
            problem = (f"has {given}: MySQL may silently copy the table, blocking writes until the copy "
                       "is done")  # fmt: skip
        else:
            blocked = "reads and writes" if lock == "exclusive" else "writes"
            problem = (f"runs in place with LOCK={(lock or 'default').upper()}: MySQL may block {blocked} "
                       "for the whole change")  # fmt: skip
        yield Violation(
            message=f"ALTER TABLE {action.table} {problem}",
            help="Append `, ALGORITHM=INPLACE, LOCK=NONE` (or `, ALGORITHM=INSTANT`) so MySQL refuses the "
            "change instead of copying the table under a lock.",
        )
