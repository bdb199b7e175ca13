"""pglast tree helpers shared by the PostgreSQL classifiers, and the collector they fill."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.stream import RawStream

from dbguard.sql.model import Action, LockMode

if TYPE_CHECKING:
    from sqlglot import exp


def name_of(range_var: ast.RangeVar) -> str:
    parts = [range_var.schemaname, range_var.relname]
    return ".".join(p for p in parts if p)


def dotted(parts: Iterable[ast.Node]) -> str:
    """A qualified name from its String parts: (public, stock) -> "public.stock"."""
    return ".".join(str(p.sval) for p in parts if isinstance(p, ast.String))


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node below `node`, in source order. This is the hot loop: only the attributes that can hold a
    node are read (see _node_attributes), never a node's strings, numbers, flags or locations."""
    stack = [node]
    push, pop, known = stack.append, stack.pop, _NODE_ATTRIBUTES
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            yield item
            attributes = known.get(type(item))
            for attr in attributes if attributes is not None else _node_attributes(type(item)):
                value = getattr(item, attr)
                if value is not None:
                    push(value)
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


def children(node: ast.Node) -> list[ast.Node]:
    """The nodes right below `node`, in source order, lists flattened: the same ones `walk` visits next."""
    out: list[ast.Node] = []
    stack = [value for attr in _node_attributes(type(node)) if (value := getattr(node, attr)) is not None]
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            out.append(item)
        elif isinstance(item, tuple | list):
            for value in reversed(item):
                if isinstance(value, ast.Node | tuple | list):
                    push(value)
    return out


_NODE_ATTRIBUTES: dict[type, tuple[str, ...]] = {}


def _node_attributes(node_type: type) -> tuple[str, ...]:
    """The attributes of a pglast node class that may hold nodes or lists, last first (walk pops them in
    source order). pglast describes each attribute by its C type: a pointer other than char* (Node*, List*,
    RangeVar*...), the ValUnion of A_Const, or a struct embedded by value (CreateForeignTableStmt.base)."""
    attributes = _NODE_ATTRIBUTES.get(node_type)
    if attributes is None:
        slots = getattr(node_type, "__slots__", {})
        attributes = tuple(
            name for name, info in reversed(slots.items())
            if (info.c_type.endswith("*") and info.c_type != "char*") or info.c_type == "ValUnion"
            or isinstance(getattr(ast, info.c_type, None), type)
        )  # fmt: skip
        _NODE_ATTRIBUTES[node_type] = attributes
    return attributes


def deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


def to_sqlglot(node: ast.Node | None) -> exp.Expr | None:
    """Re-read a pglast expression with sqlglot, for rules that reason about expressions."""
    if node is None:
        return None
    import sqlglot  # only for a WHERE that may be always true: a check of anything else never loads it

    try:
        return sqlglot.parse_one(deparse(node), read="postgres")
    except Exception:  # any failure means the rules cannot simplify it: they treat it as opaque
        return None


class Collector:
    """What a classifier gathers about one statement, turned into Facts at the end."""

    def __init__(self) -> None:
        self.read: list[str] = []
        self.written: list[str] = []
        self.actions: list[Action] = []
        self.locks: dict[str, LockMode] = {}  # relation -> the strongest lock the statement takes on it
        self.nested: list[tuple[str, str, str]] = []

    def write(self, table: str, lock: LockMode) -> None:
        if table not in self.written:
            self.written.append(table)
        self.lock_on(table, lock)

    def lock_on(self, relation: str, lock: LockMode) -> None:
        """Record `lock` on `relation`; a relation locked twice keeps the stronger mode (as the server does)."""
        if relation not in self.locks or lock > self.locks[relation]:
            self.locks[relation] = lock

    def add(self, kind: str, table: str | None = None, column: str | None = None, **details: Any) -> None:
        self.actions.append(Action(kind, table, column, details))
