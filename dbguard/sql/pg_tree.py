"""pglast tree helpers shared by the PostgreSQL classifiers, and the collector they fill."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.stream import RawStream

from dbguard.sql.model import Action, LockMode

if TYPE_CHECKING:
    from sqlglot import exp


def name_of(range_var: ast.RangeVar) -> str:
    parts = [range_var.schemaname, range_var.relname]
    return ".".join(p for p in parts if p)


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node below `node`, in source order (scalar attributes are never pushed: this is the hot loop)."""
    stack = [node]
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            yield item
            for attr in reversed(list(item)):
                value = getattr(item, attr)
                if isinstance(value, ast.Node | tuple):
                    push(value)
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


def children(node: ast.Node) -> list[ast.Node]:
    """The nodes right below `node`, in source order, lists flattened: the same ones `walk` visits next."""
    out: list[ast.Node] = []
    stack = [value for attr in reversed(list(node)) if isinstance(value := getattr(node, attr), ast.Node | tuple)]
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            out.append(item)
        else:
            for value in reversed(item):
                if isinstance(value, ast.Node | tuple | list):
                    push(value)
    return out


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
