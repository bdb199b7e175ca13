"""How an UPDATE or DELETE finds its rows: its WHERE clause's top-level AND terms, and whether it joins.

Read on demand from the statement's text (pglast for PostgreSQL, sqlglot for SQLite and MySQL), for the
rules that ask (prefer-batched-update, with table statistics only): offline checks never pay for it.
A term is (column, operator): "=" (also IN), "range" (<, <=, >, >=, BETWEEN), "null" (IS NULL),
"not-null" (IS NOT NULL), or "other" (anything else: a function of a column, OR, a column compared with
another column). Only "=" and "range" on a column that leads an index let the server find rows by index.
`col IN (SELECT ...)` counts as "=": the server can look each key up (the batching recipe's own lookup).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbguard.dialects import Dialect
from dbguard.sql.model import Statement


@dataclass(frozen=True)
class RowSearch:
    kind: str  # "update" or "delete"
    table: str  # as the statement names it
    joined: bool  # UPDATE ... FROM, DELETE ... USING, a multi-table UPDATE/DELETE
    has_where: bool
    terms: tuple[tuple[str, str], ...]  # (column, operator) of the WHERE's top-level AND terms
    condition: str  # the WHERE as written, "" without one
    bounded: bool = False  # changes at most a LIMIT's rows: its own LIMIT (MySQL), or joins only LIMITed batches

    def index_usable(self, indexed: set[str]) -> bool:
        """Whether some term is an equality or range on a column that leads one of the `indexed` columns."""
        return any(op in ("=", "range") and column in indexed for column, op in self.terms)


def row_searches(statement: Statement) -> list[RowSearch]:
    """Each UPDATE and DELETE in the statement (data-modifying CTEs included); [] when it does not parse."""
    if statement.dialect is Dialect.POSTGRES:
        return list(_postgres(statement.text))
    return list(_sqlglot(statement.text, statement.dialect))


def _postgres(text: str) -> Iterator[RowSearch]:
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    from dbguard.sql.pg_tree import name_of, walk

    try:
        tree = pglast.parse_sql(text)
    except pglast.parser.ParseError:
        return
    for node in walk(tree):
        if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.relation is not None:
            items = (node.fromClause if isinstance(node, ast.UpdateStmt) else node.usingClause) or ()
            ctes = node.withClause.ctes if node.withClause else ()
            batches = {str(c.ctename) for c in ctes or () if _pg_limited(c.ctequery)}
            bounded = bool(items) and all(
                (isinstance(i, ast.RangeVar) and not i.schemaname and i.relname in batches)
                or (isinstance(i, ast.RangeSubselect) and _pg_limited(i.subquery)) for i in items)  # fmt: skip
            where = node.whereClause
            kind = "update" if isinstance(node, ast.UpdateStmt) else "delete"
            condition = RawStream()(where) if where is not None else ""
            yield RowSearch(kind, name_of(node.relation), bool(items), where is not None,
                            tuple(_pg_terms(where)) if where is not None else (), condition, bounded)  # fmt: skip


def _pg_limited(query: object) -> bool:
    from pglast import ast

    return isinstance(query, ast.SelectStmt) and query.limitCount is not None


def _pg_terms(node: object) -> Iterator[tuple[str, str]]:
    from pglast import ast
    from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType, SubLinkType

    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        for arg in node.args or ():
            yield from _pg_terms(arg)
        return
    if isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.ANY_SUBLINK:
        column = _pg_column(node.testexpr)
        yield (column, "=") if column else ("", "other")
        return
    if isinstance(node, ast.NullTest):
        column = _pg_column(node.arg)
        if column:
            yield column, "null" if node.nulltesttype == NullTestType.IS_NULL else "not-null"
        else:
            yield "", "other"
        return
    if isinstance(node, ast.A_Expr):
        left, right = _pg_column(node.lexpr), _pg_column(node.rexpr)
        column = left if right is None else (right if left is None else "")
        operator = ".".join(str(n.sval) for n in node.name or () if isinstance(n, ast.String))
        if node.kind == A_Expr_Kind.AEXPR_IN or (node.kind == A_Expr_Kind.AEXPR_OP and operator == "="):
            yield (column, "=") if column else ("", "other")
            return
        if column and (node.kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_BETWEEN_SYM)
                       or operator in ("<", "<=", ">", ">=")):  # fmt: skip
            yield column, "range"
            return
    yield "", "other"


def _pg_column(node: object) -> str | None:
    from pglast import ast

    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return str(node.fields[-1].sval)
    return None


def _sqlglot(text: str, dialect: Dialect) -> Iterator[RowSearch]:
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(text, read=dialect.value)
    except sqlglot.errors.ParseError:
        return
    for tree in trees:
        for node in tree.find_all(exp.Update, exp.Delete) if tree else ():
            if not isinstance(node.this, exp.Table):
                continue
            joined = bool(node.args.get("from") or node.args.get("from_") or node.args.get("using")
                          or node.this.args.get("joins") or node.args.get("joins"))  # fmt: skip
            where = node.args.get("where")
            kind = "update" if isinstance(node, exp.Update) else "delete"
            terms = tuple(_glot_terms(where.this)) if where is not None else ()
            condition = where.this.sql(dialect=dialect.value) if where is not None else ""
            bounded = node.args.get("limit") is not None
            yield RowSearch(kind, node.this.name, joined, where is not None, terms, condition, bounded)


def _glot_terms(node: object) -> Iterator[tuple[str, str]]:
    from sqlglot import exp

    if isinstance(node, exp.And):
        for part in node.flatten():
            yield from _glot_terms(part)
        return
    if isinstance(node, exp.Paren):
        yield from _glot_terms(node.this)
        return
    if isinstance(node, exp.Is) and isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Null):
        yield node.this.name, "null"
        return
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is) and isinstance(node.this.this, exp.Column):
        yield node.this.this.name, "not-null"
        return
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column):
        yield node.this.name, "="
        return
    if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
        yield node.this.name, "range"
        return
    if isinstance(node, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        left, right = node.this, node.expression
        if isinstance(left, exp.Column) != isinstance(right, exp.Column):
            column = left if isinstance(left, exp.Column) else right
            yield column.name, "=" if isinstance(node, exp.EQ) else "range"
            return
    yield "", "other"
