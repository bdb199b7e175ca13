"""Whether a WHERE clause (a sqlglot expression) holds for every row: the logic of ban-tautological-where.

A module of its own so that sqlglot loads only when a WHERE may be always true, not for every `check`.
"""

from __future__ import annotations

from contextlib import suppress

from sqlglot import exp
from sqlglot.optimizer.simplify import simplify

# Comparisons of an expression with itself that hold for every non-null value (<=> even for null).
_REFLEXIVE = (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)
_CONNECTIVES = (exp.And, exp.Or, exp.Not, exp.Paren)
# sqlglot's simplify() recurses and takes quadratic time (15 s for 3,000 ANDs): it only sees parts this small.
SIMPLIFY_MAX_NODES = 200
# What makes a part of a WHERE differ from row to row (or call to call: random() = random() is no tautology).
_VARYING = (exp.Column, exp.Query, exp.Func, exp.Placeholder, exp.Parameter)


def always_true(where: exp.Expr, changed: str | None = None) -> bool:
    """True when `where` selects every row (`x = x`: every row where x is not null). `changed`: the table the
    DELETE or UPDATE changes ("schema.name" or "name"), for a WHERE read without its statement."""
    statement = where.find_ancestor(exp.Delete, exp.Update)
    table = statement.this if statement is not None and isinstance(statement.this, exp.Table) else None
    if table is None and changed:
        table = exp.to_table(changed)
    sizes: dict[int, int] = {}
    for node in reversed(list(where.walk())):  # breadth first: reversed, every node comes after its children
        sizes[id(node)] = sizes.get(id(node), 0) + 1
        if node is not where and node.parent is not None:
            sizes[id(node.parent)] = sizes.get(id(node.parent), 0) + sizes[id(node)]
    return _truth(where, sizes, table) is True


def _truth(root: exp.Expr, sizes: dict[int, int] | None, table: exp.Table | None = None) -> bool | None:
    """True when `root` holds for every row (`x = x`: every row where x is not null), False for none, None when
    it depends on the row.

    With `sizes`, each part of at most SIMPLIFY_MAX_NODES under the AND/OR/NOT connectives is simplified on its
    own first; without, `root` is taken as written. Iterative and linear: a WHERE may chain thousands of ORs."""
    order, stack, expanded = [], [root], set()
    while stack:
        node = stack.pop()
        order.append(node)
        if isinstance(node, _CONNECTIVES) and (sizes is None or sizes[id(node)] > SIMPLIFY_MAX_NODES):
            expanded.add(id(node))
            stack.extend(node.iter_expressions())
    truth: dict[int, bool | None] = {}
    for node in reversed(order):  # operands before their connective
        if id(node) in expanded:
            operands = [truth[id(operand)] for operand in node.iter_expressions()]
            truth[id(node)] = _connect(node, operands)
            if truth[id(node)] is None and isinstance(node, exp.Or) and not isinstance(node.parent, exp.Or):
                truth[id(node)] = _null_or_not_null(node) or None  # the top of an OR chain: linear
        elif sizes is not None and sizes[id(node)] <= SIMPLIFY_MAX_NODES:
            truth[id(node)] = _truth(_simplified(node), None, table)
        else:
            truth[id(node)] = _judged(node, unsimplified=sizes is not None, table=table)
    return truth[id(root)]


def _connect(node: exp.Expr, operands: list[bool | None]) -> bool | None:
    if isinstance(node, exp.Paren):
        return operands[0]
    if isinstance(node, exp.Not):
        return None if operands[0] is None else not operands[0]
    if isinstance(node, exp.And):
        return False if False in operands else (True if all(operands) else None)
    return True if True in operands else (False if all(o is False for o in operands) else None)  # exp.Or


def _null_or_not_null(chain: exp.Or) -> bool:
    """`x IS NULL OR ... OR x IS NOT NULL`: one of the two holds for every row (IS NULL is never null)."""
    tested: dict[exp.Expr, set[bool]] = {}
    for term in chain.flatten():
        term = term.unnest()
        negated = isinstance(term, exp.Not)
        test = term.this.unnest() if negated else term
        if isinstance(test, exp.Is) and isinstance(test.expression, exp.Null):
            tested.setdefault(test.this, set()).add(negated != bool(test.args.get("negate")))
    return any(len(kinds) == 2 for kinds in tested.values())


def _simplified(node: exp.Expr) -> exp.Expr:
    with suppress(Exception):  # an expression sqlglot cannot simplify is still judged as written
        return simplify(node.copy())
    return node


def _judged(node: exp.Expr, unsimplified: bool, table: exp.Table | None = None) -> bool | None:
    """A part that is no AND, OR or NOT, as written; `unsimplified` when it was too large for simplify();
    `table`: the one the DELETE or UPDATE changes, when known."""
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):  # SQLite and MySQL: WHERE 1, WHERE '1' (PostgreSQL rejects both)
        return _nonzero(node.this)
    if isinstance(node, exp.Exists):  # EXISTS (SELECT 1): a subquery with no FROM always has its row
        query = node.this
        constant = isinstance(query, exp.Select) and not query.args.get("from_") and not query.args.get("where")
        return True if constant else None
    if isinstance(node, _REFLEXIVE) and node.left == node.right:
        # only column arithmetic counts: random() = random() is not a tautology, NULL = NULL never true
        has_column = node.left.find(exp.Column) is not None
        if has_column and not any(isinstance(n, exp.Func) for n in node.left.walk()):
            return True
    if isinstance(node, exp.In) and table is not None and _every_key_of(node, table):
        return True
    if unsimplified and node.find(*_VARYING) is None:
        return True  # the same for every row, and too large to work out: fail closed, as if always true
    return None


def _every_key_of(node: exp.In, table: exp.Table) -> bool:
    """`id IN (SELECT id FROM t)` in a DELETE or UPDATE of t: every row whose id is not null."""
    query = node.args.get("query")
    select = query.this if isinstance(query, exp.Subquery) else query
    if not isinstance(select, exp.Select) or not isinstance(node.this, exp.Column) or len(select.expressions) != 1:
        return False
    source = select.args.get("from_")
    others = ("where", "joins", "limit", "group", "having", "qualify", "offset", "distinct", "with_")
    if source is None or not isinstance(source.this, exp.Table) or any(select.args.get(k) for k in others):
        return False
    picked = select.expressions[0]
    same_table = source.this.name == table.name and source.this.db == table.db
    return same_table and isinstance(picked, exp.Column) and picked.name == node.this.name


def _nonzero(number: str) -> bool:
    try:
        return float(number) != 0
    except ValueError:
        return False
