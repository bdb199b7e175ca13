"""Which WHERE clauses may be always true: the cheap pre-filter before ban-tautological-where re-reads one
with sqlglot (dbguard.sql.truth decides).

Re-reading every WHERE with sqlglot would cost more than all the rules together, so pglast's tree is
scanned once, bottom up, for the shapes that can hold for every row: a constant part (`OR true`, `1 = 1`),
a comparison of a thing with itself (`x = x`), `x IS NULL OR x IS NOT NULL`, and `key IN (SELECT key FROM
<the table the statement changes>)`.
"""

from __future__ import annotations

from pglast import ast

from dbguard.sql.pg_tree import children, deparse

_VARYING = (ast.ColumnRef, ast.ParamRef, ast.RangeVar, ast.FuncCall)  # a subquery over a table varies too
_SAME_TEXT_MAX_NODES = 50  # sides this small are compared as text: deparse() recurses several frames a level


def may_be_always_true(where: ast.Node | None, changed: ast.RangeVar | None = None) -> bool:
    """Cheap pre-filter: only a WHERE with a constant part, a comparison of a thing with itself, `x IS NULL OR
    x IS NOT NULL`, or `key IN (SELECT key FROM <the table `changed`>)` can be always true. Re-reading every
    WHERE with sqlglot would cost more than all the rules together.

    One bottom-up pass: a WHERE of thousands of terms must not be re-walked at every node (that was
    quadratic: 245 s for a sum of 16,000 terms)."""
    if where is None:
        return False
    varies: dict[int, bool] = {}
    size: dict[int, int] = {}
    for node, below in reversed(_preorder(where)):  # parents come first: reversed, children come first
        varies[id(node)] = isinstance(node, _VARYING) or any(varies[id(child)] for child in below)
        size[id(node)] = 1 + sum(size[id(child)] for child in below)
        if isinstance(node, ast.BoolExpr) and not all(varies[id(arg)] for arg in node.args or ()):
            return True  # ... OR true, NOT false
        if isinstance(node, ast.BoolExpr) and node.boolop == 1 and _null_and_not_null(node.args or ()):
            return True  # x IS NULL OR x IS NOT NULL
        if isinstance(node, ast.SubLink) and changed is not None and _from_only(node.subselect, changed):
            return True  # id IN (SELECT id FROM the changed table): truth.py decides
        if isinstance(node, ast.A_Expr) and _constant_or_reflexive(node, varies, size):
            return True  # an inner 1 = 1, or x = x
    return not varies[id(where)]  # WHERE true, WHERE 1 = 1


def _preorder(root: ast.Node) -> list[tuple[ast.Node, list[ast.Node]]]:
    """Every node below `root` with the nodes right below it, parents first in source order (`walk`'s order):
    each node's attributes are read once, not once by walk and again by children."""
    out: list[tuple[ast.Node, list[ast.Node]]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        below = children(node)
        out.append((node, below))
        stack.extend(reversed(below))
    return out


def _null_and_not_null(args: tuple[ast.Node, ...]) -> bool:
    tested: dict[str, set[int]] = {}
    for arg in args:
        if isinstance(arg, ast.NullTest) and arg.arg is not None and len(tested) < _SAME_TEXT_MAX_NODES:
            tested.setdefault(deparse(arg.arg), set()).add(int(arg.nulltesttype or 0))
    return any(len(kinds) == 2 for kinds in tested.values())


def _from_only(query: ast.Node | None, table: ast.RangeVar) -> bool:
    """A SELECT from `table` alone (as named: truth.py compares schema and name)."""
    sources = (query.fromClause or ()) if isinstance(query, ast.SelectStmt) else ()
    return len(sources) == 1 and isinstance(sources[0], ast.RangeVar) and sources[0].relname == table.relname


def _constant_or_reflexive(node: ast.A_Expr, varies: dict[int, bool], size: dict[int, int]) -> bool:
    if node.lexpr is None or node.rexpr is None:
        return False
    return not varies[id(node)] or _same(node.lexpr, node.rexpr, size)


def _same(left: ast.Node | tuple[ast.Node, ...], right: ast.Node | tuple[ast.Node, ...], size: dict[int, int]) -> bool:
    if type(left) is not type(right) or size[id(left)] != size[id(right)]:
        return False
    if not isinstance(left, ast.Node) or not isinstance(right, ast.Node):
        return False  # a list (x IN (1, 2)) is never the left side
    if isinstance(left, ast.ColumnRef) and isinstance(right, ast.ColumnRef):
        return left.fields == right.fields
    if size[id(left)] > _SAME_TEXT_MAX_NODES:
        return True  # too large to compare here: the rule, on sqlglot's tree, decides
    return deparse(left) == deparse(right)
