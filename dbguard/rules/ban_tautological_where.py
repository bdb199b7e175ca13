"""A DELETE or UPDATE whose WHERE clause is always true touches every row, just like no WHERE at all.

Problem: `WHERE 1=1`, `WHERE true` or `WHERE qty = qty` looks like a filter but selects every row
(`col = col` every row where the column is not null). It is usually a placeholder left over from
building the query, or a typo for a comparison with another column or a value.

Bad:
    DELETE FROM stock WHERE 1 = 1;

    UPDATE stock SET qty = 0 WHERE qty = qty;

    DELETE FROM reservations WHERE expires_at < now() OR true;

Good:
    DELETE FROM stock WHERE qty < 0;

    UPDATE stock SET qty = 0 WHERE qty = reserved_qty;
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from sqlglot import exp
from sqlglot.optimizer.simplify import simplify

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

# Comparisons of an expression with itself that hold for every non-null value (<=> even for null).
_REFLEXIVE = (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)


@rule("ban-tautological-where", Severity.ERROR, "DELETE or UPDATE whose WHERE is always true")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("delete", "update"):
        where = action.get("where")
        if isinstance(where, exp.Expr) and _always_true(where):
            verb = "DELETE FROM" if action.kind == "delete" else "UPDATE"
            yield Violation(
                message=f"{verb} {action.table} has a WHERE clause that is always true "
                f"({where.sql(dialect=statement.dialect.sqlglot_name)}): it touches every row",
                help="Compare a column with the value or the other column you meant (for example "
                "`WHERE qty < 0`), so the WHERE selects exactly the rows to change.",
            )


def _always_true(where: exp.Expr) -> bool:
    with suppress(Exception):  # an expression sqlglot cannot simplify is still judged as written
        where = simplify(where.copy())
    return _tautology(where)


def _tautology(node: exp.Expr) -> bool:
    if isinstance(node, exp.Paren):
        return _tautology(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):  # SQLite and MySQL: WHERE 1, WHERE '1' (PostgreSQL rejects both)
        return _nonzero(node.this)
    if isinstance(node, exp.Exists):  # EXISTS (SELECT 1): a subquery with no FROM always has its row
        query = node.this
        return isinstance(query, exp.Select) and not query.args.get("from_") and not query.args.get("where")
    if isinstance(node, exp.Or):
        return _tautology(node.left) or _tautology(node.right)
    if isinstance(node, exp.And):
        return _tautology(node.left) and _tautology(node.right)
    if isinstance(node, _REFLEXIVE) and node.left == node.right:
        # only column arithmetic counts: random() = random() is not a tautology, NULL = NULL never true
        has_column = node.left.find(exp.Column) is not None
        return has_column and not any(isinstance(n, exp.Func) for n in node.left.walk())
    return False


def _nonzero(number: str) -> bool:
    try:
        return float(number) != 0
    except ValueError:
        return False
