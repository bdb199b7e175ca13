"""What a target tells about a database: sizes, schema, content hashes and integrity check results.

A `Target` wraps ONE open connection and runs every query on it, inside whatever transaction the
caller has open. That is what lets `run` take its backup, its hashes and its integrity gate in the
script's own transaction, on one snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbguard.dialects import Dialect
from dbguard.targets.url import DatabaseUrl


@dataclass(frozen=True)
class TableSize:
    table: str  # canonical name: "schema.table" on PostgreSQL, "table" on SQLite
    estimated_rows: int  # from statistics (pg_class.reltuples); exact on SQLite
    bytes: int | None = None  # on-disk size, where the database can tell


@dataclass(frozen=True)
class TableStats:
    """Row count and an order-independent content hash, computed in the database."""

    table: str
    rows: int
    hash: str  # "<sum of 64-bit row hashes>:<xor of differently seeded row hashes>"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class Constraint:
    name: str
    table: str
    kind: str  # "primary", "foreign", "unique", "check", "exclusion", "not-null"
    definition: str
    valid: bool


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    definition: str
    valid: bool


@dataclass(frozen=True)
class Schema:
    tables: dict[str, tuple[Column, ...]] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)  # key: "table.name"
    indexes: dict[str, Index] = field(default_factory=dict)  # key: "schema.name" / "name"
    # Everything else, as the database itself writes it out: kind ("function", "trigger", "rule", "view",
    # "materialized view", "domain", "enum", "sequence", "policy", "row security") -> name -> definition.
    objects: dict[str, dict[str, str]] = field(default_factory=dict)

    def diff(self, after: Schema) -> list[SchemaChange]:
        changes: list[SchemaChange] = []
        for table in sorted(set(self.tables) | set(after.tables)):
            if table not in after.tables:
                changes.append(SchemaChange("table dropped", table))
                continue
            if table not in self.tables:
                changes.append(SchemaChange("table added", table, after=_columns_text(after.tables[table])))
                continue
            old = {c.name: c for c in self.tables[table]}
            new = {c.name: c for c in after.tables[table]}
            for name in sorted(set(old) | set(new)):
                where = f"{table}.{name}"
                if name not in new:
                    changes.append(SchemaChange("column dropped", where, before=old[name].type))
                elif name not in old:
                    changes.append(SchemaChange("column added", where, after=_column_text(new[name])))
                elif old[name] != new[name]:
                    changes.append(
                        SchemaChange("column changed", where, _column_text(old[name]), _column_text(new[name]))
                    )
        changes += _keyed_diff("constraint", self.constraints, after.constraints)
        changes += _keyed_diff("index", self.indexes, after.indexes)
        for kind in dict.fromkeys([*self.objects, *after.objects]):
            changes += _definitions_diff(kind, self.objects.get(kind, {}), after.objects.get(kind, {}))
        return changes


@dataclass(frozen=True)
class SchemaChange:
    change: str  # "table added", "column changed", "index dropped", "constraint validity changed", ...
    name: str
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class SequenceColumn:
    """A column that takes its values from a sequence (its default calls nextval(), or it is an identity)."""

    sequence: str  # "schema.name"
    table: str
    column: str
    largest: Any  # max() of the column now; None when the table is empty


UNCHECKED = "could not be checked"  # how a CheckResult's detail begins when the check itself failed (a fail)


@dataclass(frozen=True)
class CheckResult:
    """One integrity check or invariant. A failure names up to 10 offending rows."""

    name: str
    passed: bool
    detail: str = ""
    sample: tuple[tuple[Any, ...], ...] = ()
    skipped: bool = False  # could not run here (e.g. amcheck not installable): said, never passed silently
    columns: tuple[str, ...] = ()  # the names of the sample's columns


def row_text(columns: Sequence[str], row: Sequence[Any]) -> str:
    """A row as `customer_id=999999, note=NULL`; values alone, `41 | NULL`, when its columns have no names."""
    values = ["NULL" if value is None else str(value) for value in row]
    if len(columns) != len(values):
        return " | ".join(values)
    return ", ".join(f"{name}={value}" for name, value in zip(columns, values, strict=True))


class Target(Protocol):
    """An open connection to one database, with the questions dbguard asks of it."""

    url: DatabaseUrl
    dialect: Dialect
    server_version: str  # e.g. "15.19"; SQLite's library version on SQLite
    conn: Any  # the open psycopg or sqlite3 connection every method runs on

    @property
    def server_major(self) -> int: ...

    @property
    def read_only(self) -> bool:
        """No write can go through this connection (PostgreSQL: asked of the session itself)."""
        ...

    def close(self) -> None: ...

    def resolve(self, names: Sequence[str]) -> dict[str, str]:
        """Map names as a script spells them to canonical table names; names with no table are left out."""
        ...

    def all_tables(self) -> list[str]: ...

    def table_sizes(self, tables: Sequence[str]) -> dict[str, TableSize]: ...

    def schema(self) -> Schema: ...

    def table_stats(self, tables: Sequence[str]) -> dict[str, TableStats]: ...

    def tables_using_types(self, types: Sequence[str]) -> set[str]:
        """The tables with a column of one of these types or domains, or of a type built on them (a domain
        over one, an array of one, a composite holding one). Names as a script spells them; SQLite has no
        such types: an empty set."""
        ...

    def sequence_columns(self, sequences: Sequence[str]) -> list[SequenceColumn]:
        """The columns that draw their values from these sequences ("schema.name"), with their max() now.
        SQLite has no sequences of this kind: an empty list."""
        ...

    def foreign_key_closure(self, tables: Sequence[str]) -> set[str]:
        """The tables, the tables whose rows reference them, transitively (a DELETE may cascade to or be
        blocked by those), and every table all of those need for their rows' foreign keys, transitively."""
        ...

    def leaf_tables(self, tables: Sequence[str]) -> list[str]:
        """The tables that hold rows: a partitioned table is replaced by its partitions (PostgreSQL)."""
        ...

    def integrity_checks(self, tables: Sequence[str]) -> list[CheckResult]: ...

    def query(self, sql: str, limit: int = 10) -> list[tuple[Any, ...]]:
        """Run a read-only query in the current transaction and return at most `limit` rows."""
        ...

    def query_with_columns(self, sql: str, limit: int = 10) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """`query`, and the names of the result's columns (none for a statement that returns no rows)."""
        ...


def _column_text(column: Column) -> str:
    text = f"{column.type}{'' if column.nullable else ' NOT NULL'}"
    return f"{text} DEFAULT {column.default}" if column.default else text


def _columns_text(columns: tuple[Column, ...]) -> str:
    return ", ".join(f"{c.name} {_column_text(c)}" for c in columns)


def _definitions_diff(kind: str, before: dict[str, str], after: dict[str, str]) -> list[SchemaChange]:
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if new is None:
            changes.append(SchemaChange(f"{kind} dropped", name, before=old))
        elif old is None:
            changes.append(SchemaChange(f"{kind} added", name, after=new))
        elif old != new:
            changes.append(SchemaChange(f"{kind} changed", name, old, new))
    return changes


def _keyed_diff(label: str, before: dict[str, Any], after: dict[str, Any]) -> list[SchemaChange]:
    """Changes between two dicts of Constraint or Index (both have `definition` and `valid`)."""
    changes = []
    for key in sorted(set(before) | set(after)):
        old: Any = before.get(key)
        new: Any = after.get(key)
        if new is None:
            changes.append(SchemaChange(f"{label} dropped", key, before=old.definition))
        elif old is None:
            suffix = "" if new.valid else " (NOT VALID)"
            changes.append(SchemaChange(f"{label} added", key, after=new.definition + suffix))
        elif old.definition != new.definition:
            changes.append(SchemaChange(f"{label} changed", key, old.definition, new.definition))
        elif old.valid != new.valid:
            changes.append(
                SchemaChange(
                    f"{label} validity changed",
                    key,
                    "valid" if old.valid else "not valid",
                    "valid" if new.valid else "not valid",
                )
            )
    return changes
