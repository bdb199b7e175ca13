"""A DELETE or UPDATE whose WHERE clause is always true touches every row, just like no WHERE at all.

Problem: `WHERE 1=1`, `WHERE true` or `WHERE qty = qty` looks like a filter but selects every row
(`col = col` every row where the column is not null), and so do `col IS NULL OR col IS NOT NULL` and
`id IN (SELECT id FROM <the same table>)` (every row whose id is not null). It is usually a placeholder
left over from building the query, or a typo for a comparison with another column or a value.

Bad:
    DELETE FROM stock WHERE 1 = 1;

    UPDATE stock SET qty = 0 WHERE qty = qty;

    DELETE FROM reservations WHERE expires_at < now() OR true;

    UPDATE products SET active = false WHERE discontinued_at IS NULL OR discontinued_at IS NOT NULL;

    DELETE FROM sessions WHERE id IN (SELECT id FROM sessions);

Good:
    DELETE FROM stock WHERE qty < 0;

    UPDATE stock SET qty = 0 WHERE qty = reserved_qty;
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

if TYPE_CHECKING:
    from sqlglot import exp

_SHOWN_CHARS = 120


@rule("ban-tautological-where", Severity.ERROR, "DELETE or UPDATE whose WHERE is always true")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("delete", "update"):
        where = action.get("where")  # a sqlglot expression, set only where the WHERE may be always true
        if where is None:
            continue
        from dbguard.sql.truth import always_true  # sqlglot loads here, not for every check

        if always_true(where, action.table):
            verb = "DELETE FROM" if action.kind == "delete" else "UPDATE"
            yield Violation(
                message=f"{verb} {action.table} has a WHERE clause that is always true "
                f"({_shown(where, statement)}): it touches every row",
                help="Compare a column with the value or the other column you meant (for example "
                "`WHERE qty < 0`), so the WHERE selects exactly the rows to change.",
            )


def _shown(where: exp.Expr, statement: Statement) -> str:
    """The WHERE as SQL, cut short: a generated one can run to megabytes."""
    try:
        sql = where.sql(dialect=statement.dialect.sqlglot_name)
    except RecursionError:  # sqlglot writes some nestings recursively
        return "too deeply nested to show"
    return sql if len(sql) <= _SHOWN_CHARS else sql[: _SHOWN_CHARS - 3] + "..."
