"""A catalog snapshot: each user table's estimated size and shape, read once from a database or a stats file.

`dbguard stats --db URL > stats.json` writes it, `dbguard check --stats stats.json` (or `check --db URL`)
reads it, so a CI job can judge a script against production's sizes without database credentials.

What a snapshot holds (and never more): per table its schema and name, estimated rows (PostgreSQL:
`pg_class.reltuples`, the sum over leaf partitions for a partitioned table; SQLite: `count(*)`), bytes on
disk with indexes and TOAST (`pg_total_relation_size`; SQLite: the `dbstat` pages of the table and its
indexes), whether it is partitioned and its leaf partitions, its columns (name, type as `format_type`
writes it, NOT NULL), its constraints and indexes as the catalog defines them; and the names of the other
relations (views, sequences, indexes, ...). No row value, no password: `source` is the URL without one.

The JSON file carries `dbguard_stats` (the format version, `STATS_VERSION`); `from_json` refuses any
other version, or a file that is not one, with a one-line `UsageError` (exit 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from dbguard.dialects import Dialect
from dbguard.errors import UsageError

STATS_VERSION = 1
_NAME_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # as the server names it: format_type() ("character varying(20)"), SQLite's declared type
    not_null: bool


@dataclass(frozen=True)
class ConstraintInfo:
    name: str
    type: str  # "primary", "foreign", "unique", "check", "exclusion", "trigger"
    definition: str  # pg_get_constraintdef(); SQLite: the clause as declared
    validated: bool  # False: added NOT VALID and not validated since


@dataclass(frozen=True)
class IndexInfo:
    name: str
    definition: str  # pg_get_indexdef(); SQLite: the CREATE INDEX statement, or "" for an automatic one
    valid: bool
    unique: bool
    columns: tuple[str | None, ...]  # key columns in order; None for an expression
    partial: bool  # has a WHERE: only rows matching it are in the index


@dataclass(frozen=True)
class TableInfo:
    schema: str  # "public"; SQLite: "main"
    name: str
    estimated_rows: int | None  # None: never analyzed and not empty, so unknown
    total_bytes: int | None  # None: the database cannot tell (SQLite without dbstat)
    partitioned: bool = False
    partitions: tuple[str, ...] = ()  # leaf partitions, "schema.name"
    columns: tuple[ColumnInfo, ...] = ()
    constraints: tuple[ConstraintInfo, ...] = ()
    indexes: tuple[IndexInfo, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def spelled(self) -> str:
        """The name as a script or a finding writes it: without the default schema (public; SQLite: main)."""
        return self.name if self.schema in ("public", "main") else self.qualified

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def indexed_leading_columns(self) -> set[str]:
        """Columns that lead a valid, non-partial index or the primary key (SQLite: also the rowid, which an
        INTEGER PRIMARY KEY names without an index): a WHERE on one can use it."""
        leading = {i.columns[0] for i in self.indexes if i.valid and not i.partial and i.columns and i.columns[0]}
        for constraint in self.constraints:
            if constraint.type == "primary" and "(" in constraint.definition:
                leading.add(constraint.definition.split("(", 1)[1].split(",")[0].strip(' )"`'))
        return leading | ({"rowid", "oid", "_rowid_"} if self.schema == "main" else set())

    @property
    def size_text(self) -> str:
        """`~2.3M rows, 412 MB`: what a finding says about the table it concerns."""
        rows = "unknown rows (never analyzed)" if self.estimated_rows is None else rows_text(self.estimated_rows)
        return rows if self.total_bytes is None else f"{rows}, {bytes_text(self.total_bytes)}"


@dataclass(frozen=True)
class Catalog:
    """The snapshot: the database's tables by "schema.name", and the other relations' names by kind."""

    dialect: Dialect
    source: str  # the database it describes: its URL without password, or the SQLite file's path
    server_version: str
    taken_at: str  # ISO 8601, UTC
    tables: Mapping[str, TableInfo] = field(default_factory=dict)
    relations: Mapping[str, str] = field(default_factory=dict)  # "schema.name" -> "view", "sequence", "index", ...

    def find(self, name: str, search_path: Iterable[str] = ()) -> TableInfo | None:
        """The table a script's name denotes (`stock`, `sales.stock`, `"Stock"` as the parser gives it):
        qualified names exactly, unqualified ones through `search_path` (default: public; SQLite: main)."""
        key = self._resolve(name, search_path, self.tables)
        return self.tables.get(key) if key else None

    def exists(self, name: str, search_path: Iterable[str] = ()) -> bool:
        """Whether `name` denotes any relation: a table, a view, a sequence, an index, ..."""
        return self._resolve(name, search_path, self._every_relation) is not None

    def kind(self, name: str, search_path: Iterable[str] = ()) -> str | None:
        """What `name` denotes: "table", another relation's kind ("view", "sequence", ...), or None."""
        key = self._resolve(name, search_path, self._every_relation)
        if key is None:
            return None
        return "table" if key in self.tables else self.relations[key]

    @cached_property
    def _every_relation(self) -> dict[str, object]:
        return {**self.relations, **self.tables}

    def schemas_searched(self, search_path: Iterable[str] = ()) -> list[str]:
        """Where an unqualified name is looked up: `search_path`, else public (SQLite: main)."""
        return list(search_path) or (["main"] if self.dialect is Dialect.SQLITE else ["public"])

    def _resolve(self, name: str, search_path: Iterable[str], known: Mapping[str, object]) -> str | None:
        if '"' in name:  # regclass text, as in nextval('"Sales"."Seq"'): the server's own reading of it
            name = ".".join(quoted.replace('""', '"') if not bare else bare.lower()
                            for quoted, bare in _NAME_PART.findall(name))  # fmt: skip
        if "." in name:
            schema, _, bare = name.rpartition(".")
            if self.dialect is Dialect.SQLITE and schema in ("main", "temp"):
                schema = "main"
            return name if name in known else (f"{schema}.{bare}" if f"{schema}.{bare}" in known else None)
        for schema in self.schemas_searched(search_path):
            if f"{schema}.{name}" in known:
                return f"{schema}.{name}"
        return None

    @cached_property
    def column_types(self) -> dict[tuple[str, str], str]:
        """(table as a script names it without `public.`, column) -> type: RuleContext.column_types. Built
        once per snapshot, not once per checked script."""
        return {(table.spelled.lower(), column.name): column.type
                for table in self.tables.values() for column in table.columns}  # fmt: skip

    def to_json(self) -> str:
        document = {
            "dbguard_stats": STATS_VERSION,
            "dialect": self.dialect.value,
            "source": self.source,
            "server_version": self.server_version,
            "taken_at": self.taken_at,
            "tables": [asdict(t) for t in sorted(self.tables.values(), key=lambda t: t.qualified)],
            "relations": [{"name": n, "kind": k} for n, k in sorted(self.relations.items())],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def from_json(text: str, source: str) -> Catalog:
    """A snapshot from a stats file's text; `UsageError` (one line, exit 2) when it is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{source} is not a dbguard stats file: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(document, dict) or "dbguard_stats" not in document:
        raise UsageError(f"{source} is not a dbguard stats file (write one with: dbguard stats --db URL)")
    if document["dbguard_stats"] != STATS_VERSION:
        raise UsageError(f"{source} is stats format {document['dbguard_stats']!r}; this dbguard reads format "
                         f"{STATS_VERSION}: write it anew with this version's `dbguard stats`")  # fmt: skip
    try:
        tables = [_table(raw) for raw in _list(document, "tables")]
        relations = {_text(r, "name"): _text(r, "kind") for r in _list(document, "relations")}
        return Catalog(
            dialect=Dialect.parse(_text(document, "dialect")),
            source=_text(document, "source"),  # the database the statistics describe, not the file's path
            server_version=_text(document, "server_version"),
            taken_at=_text(document, "taken_at"),
            tables={t.qualified: t for t in tables},
            relations=relations,
        )
    except (KeyError, TypeError, ValueError, UsageError) as error:
        raise UsageError(f"{source} is not a valid dbguard stats file: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _list(raw: Any, key: str) -> list[Any]:
    value = raw[key]
    if not isinstance(value, list):
        raise TypeError(f"{key} must be a list")
    return value


def _text(raw: Any, key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string, not {value!r}")
    return value


def _flag(raw: Any, key: str) -> bool:
    value = raw[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, not {value!r}")
    return value


def _count(raw: Any, key: str) -> int | None:
    value = raw[key]
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise TypeError(f"{key} must be a whole number >= 0 or null, not {value!r}")
    return value


def _table(raw: Any) -> TableInfo:
    if not isinstance(raw, dict):
        raise TypeError("each table must be an object")
    return TableInfo(
        schema=_text(raw, "schema"),
        name=_text(raw, "name"),
        estimated_rows=_count(raw, "estimated_rows"),
        total_bytes=_count(raw, "total_bytes"),
        partitioned=_flag(raw, "partitioned"),
        partitions=tuple(str(p) for p in _list(raw, "partitions")),
        columns=tuple(_column(c) for c in _list(raw, "columns")),
        constraints=tuple(_constraint(c) for c in _list(raw, "constraints")),
        indexes=tuple(_index(i) for i in _list(raw, "indexes")),
    )


def _column(raw: Any) -> ColumnInfo:
    return ColumnInfo(_text(raw, "name"), _text(raw, "type"), _flag(raw, "not_null"))


def _constraint(raw: Any) -> ConstraintInfo:
    return ConstraintInfo(_text(raw, "name"), _text(raw, "type"), _text(raw, "definition"), _flag(raw, "validated"))


def _index(raw: Any) -> IndexInfo:
    columns = tuple(None if c is None else str(c) for c in _list(raw, "columns"))
    return IndexInfo(_text(raw, "name"), _text(raw, "definition"), _flag(raw, "valid"), _flag(raw, "unique"),
                     columns, _flag(raw, "partial"))  # fmt: skip


def rows_text(rows: int) -> str:
    """12 rows, ~150k rows, ~2.3M rows, ~1.2B rows."""
    for limit, unit in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if rows >= limit:
            value = rows / limit
            return f"~{value:.1f}{unit} rows".replace(".0", "") if value < 100 else f"~{value:.0f}{unit} rows"
    return f"{rows} row" + ("" if rows == 1 else "s")


def bytes_text(size: int) -> str:
    """As pg_size_pretty() writes it: 8192 bytes, 412 MB (1024-based)."""
    value = float(size)
    if value < 10 * 1024:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 10 * 1024 or unit == "TB":
            break
    return f"{round(value)} {unit}"
