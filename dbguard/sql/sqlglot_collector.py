"""What the sqlglot classifiers collect about one statement: tables read and written, actions, bodies.

Shared by `classify_sqlglot` (statements sqlglot parses), `classify_sqlglot_alter` (ALTER TABLE) and
`classify_sqlglot_commands` (statements it keeps as raw text).
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from dbguard.dialects import Dialect
from dbguard.sql.model import Action, Facts

_MYSQL_IMPLICIT_COMMIT = frozenset({
    "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE",  # DDL and account changes
    "LOCK", "UNLOCK", "OPTIMIZE", "ANALYZE",  # table maintenance and locks
})  # fmt: skip
_SQLITE_OUTSIDE_TRANSACTION = frozenset({"VACUUM", "ATTACH", "DETACH"})
ONLINE_OPTION = re.compile(r"\b(ALGORITHM|LOCK)\s*=?\s*(\w+)", re.IGNORECASE)
FLAGS = re.IGNORECASE | re.DOTALL


class Collector:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.read: list[str] = []
        self.written: list[str] = []
        self.actions: list[Action] = []
        self.nested: list[tuple[str, str, str]] = []
        self.names: set[int] = set()  # ids of Table nodes that name an object rather than read it
        self.temporary = False

    def write(self, table: str) -> None:
        if table not in self.written:
            self.written.append(table)

    def add(self, kind: str, table: str | None = None, column: str | None = None, **details: Any) -> None:
        self.actions.append(Action(kind, table, column, details))

    def type_name(self, dtype: exp.Expression | None) -> str:
        """The type as the dialect spells it, lower case, without parameters: varchar(10) -> varchar."""
        if not isinstance(dtype, exp.DataType):
            return ""
        return re.sub(r"\(.*\)", "", dtype.sql(dialect=self.dialect.value)).strip().lower()

    def skip(self, node: exp.Expression | None) -> None:
        if node is not None:
            self.names.update(id(t) for t in node.find_all(exp.Table))

    def collect_reads(self, tree: exp.Expr) -> None:
        found = list(tree.find_all(exp.CTE, exp.Table))  # one walk of the tree for both
        ctes = {node.alias_or_name for node in found if isinstance(node, exp.CTE)}
        for table in (node for node in found if isinstance(node, exp.Table)):
            if id(table) in self.names or not isinstance(table.this, exp.Identifier):
                continue
            name = name_of(table)
            if name not in self.written and name not in self.read and name not in ctes:
                self.read.append(name)

    def facts(self, kind: str) -> Facts:
        first = kind.split()[0]
        if self.dialect is Dialect.MYSQL:
            transactional = first not in _MYSQL_IMPLICIT_COMMIT or self.temporary
        else:
            transactional = first not in _SQLITE_OUTSIDE_TRANSACTION
        return Facts(kind, tables_read=tuple(self.read), tables_written=tuple(self.written),
                     transactional=transactional, actions=tuple(self.actions),
                     nested_sql=tuple(self.nested))  # fmt: skip


def online_options(text: str) -> dict[str, str]:
    """MySQL's ALGORITHM= and LOCK= clauses in `text`, names and values lower case: {"algorithm": "inplace"}."""
    return {k.lower(): v.lower() for k, v in ONLINE_OPTION.findall(text)}


def name_of(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


def text_of(node: exp.Expression | None, dialect: Dialect) -> str:
    """A value as plain text: names and literals unquoted, anything else as SQL."""
    if isinstance(node, exp.Literal):
        return str(node.this)
    if isinstance(node, exp.Column | exp.Var | exp.Identifier):
        return node.name
    return node.sql(dialect=dialect.value) if node is not None else ""
