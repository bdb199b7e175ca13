"""Changing a column's type rewrites the table while it is locked.

Problem: ALTER COLUMN ... TYPE takes an ACCESS EXCLUSIVE lock and, unless the old type is binary
coercible to the new one, rewrites the table and rebuilds its indexes (PostgreSQL docs, ALTER TABLE):
every query on the table waits for the whole rewrite. Some changes need no rewrite: `varchar(n)` to
`text` or to `varchar(m)` with m >= n, `numeric(p,s)` to `numeric` or `numeric(q,s)` with q >= p,
`cidr` to `inet`, a time precision raised (dbguard.sql.pg_types, checked against the server). Offline,
check cannot see the current type: a change to a type some other type reaches without a rewrite is
then a warning ("may rewrite"); with the current type known (a check that reads the schema), it
decides. A USING clause computes every value anew: a rewrite. A table the script created is empty: no
finding. MySQL's MODIFY or CHANGE with a new type
copies the table, blocking writes until the copy is done.

Bad:
    ALTER TABLE stock ALTER COLUMN qty TYPE bigint;

    ALTER TABLE orders ALTER total SET DATA TYPE numeric(12,2) USING total::numeric;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ADD COLUMN qty_big bigint;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Action, Statement
from dbguard.sql.pg_types import ColumnType, may_skip_rewrite, rewrites

_HELP = ("Add a new column of the new type, backfill it in batches (keeping it in step with a trigger), switch "
         "the application over, then drop {column} in a later release.")  # fmt: skip


@rule("ban-column-type-change", Severity.ERROR, "changing a column's type rewrites the table")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("alter-column-type"):
        if context.created_earlier(action.table, statement):
            continue  # a table the script created is empty: nothing to rewrite
        where = f"{action.table}.{action.column}"
        help_text = _HELP.format(column=action.column)
        if statement.dialect is Dialect.MYSQL:
            if _mysql_online(statement):
                continue  # MySQL refuses the change rather than copy the table (VARCHAR widening passes)
            copies = any(a.get("algorithm") == "copy" for a in statement.actions_of("alter-table"))
            if mysql_list_type(action) and not copies:
                yield Violation(
                    message=f"changing {where} to a new {action.get('type')} list copies {action.table} row by row "
                    "unless it only appends values at the end (then MySQL changes the metadata alone): check cannot "
                    "see the current list offline",
                    help="Add `, ALGORITHM=INSTANT`: MySQL then makes the change only if it is instant (values "
                    f"appended), and refuses it otherwise. {help_text}",
                    at_most=Severity.WARNING,
                )
                continue
            yield Violation(message=f"changing the type of {where} to {action.get('type')} copies {action.table} "
                            "row by row: writes to it wait until the copy is done", help=help_text)  # fmt: skip
            continue
        yield from _postgres(action, where, help_text, context)


def _postgres(action: Action, where: str, help_text: str, context: RuleContext) -> Iterator[Violation]:
    new = ColumnType.parse(str(action.get("new_type") or action.get("type")))
    rewrite = (f"takes an ACCESS EXCLUSIVE lock on {action.table} and rewrites it with its indexes: every query on "
               "the table waits for the whole rewrite")  # fmt: skip
    if new is None or action.get("using"):
        how = " with USING (every value computed anew)" if action.get("using") else ""
        yield Violation(message=f"changing the type of {where}{how} {rewrite}", help=help_text)
        return
    current = context.column_type(action.table, action.column)
    old = ColumnType.parse(current) if current else None
    if old is not None:
        if rewrites(old, new):
            yield Violation(message=f"changing the type of {where} from {old} to {new} {rewrite}", help=help_text)
        return  # binary coercible, or a limit that only widens: no rewrite, no scan
    if may_skip_rewrite(new):
        yield Violation(
            message=f"changing the type of {where} to {new} may rewrite {action.table} under an ACCESS EXCLUSIVE "
            "lock, unless its current type is binary-coercible to it (varchar(n) -> text, a wider varchar or "
            "numeric, cidr -> inet): check cannot see the current type offline",
            help=f"If the current type is binary-coercible to {new} (see ALTER TABLE in the PostgreSQL docs), "
            f"nothing is rewritten: waive this rule with that reason. Otherwise: {help_text}",
            at_most=Severity.WARNING,
        )
        return
    yield Violation(message=f"changing the type of {where} to {new} {rewrite}", help=help_text)


def mysql_list_type(action: Action) -> bool:
    """A MySQL type change to an ENUM or SET: instant when it only appends values ("Online DDL Operations",
    column operations), a table copy otherwise; which one, only the current list tells."""
    return str(action.get("type") or "").lower().split("(")[0].strip() in ("enum", "set")


def _mysql_online(statement: Statement) -> bool:
    """ALGORITHM=INPLACE with LOCK=NONE, or ALGORITHM=INSTANT: MySQL runs the change without copying the table
    or blocking writes, or refuses it at once ("Online DDL Operations": a type change needs ALGORITHM=COPY)."""
    return any(
        a.get("algorithm") == "instant" or (a.get("algorithm") == "inplace" and a.get("lock") == "none")
        for a in statement.actions_of("alter-table")
    )
