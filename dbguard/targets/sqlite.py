"""The SQLite target: one sqlite3 connection whose transactions dbguard controls itself.

The connection is opened with `isolation_level=None`, so the sqlite3 module never opens or commits a
transaction behind dbguard's back: the caller's own `BEGIN IMMEDIATE` is the one everything runs in.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure
from dbguard.targets.model import CheckResult, Column, Constraint, Index, Schema, SequenceColumn, TableSize, TableStats
from dbguard.targets.url import DatabaseUrl

SAMPLE_LIMIT = 10
ROW_HASH_FUNCTION = "dbguard_row_hash"
# Two keys give two independent 64-bit hashes of each row: a change that cancels out in the sum would
# also have to cancel out in the xor.
_SUM_KEY = b"dbguard row hash: sum"
_XOR_KEY = b"dbguard row hash: xor"
_EMPTY_HASH = "0:" + "0" * 16
# Tokens of a CREATE TABLE statement that matter when looking for CHECK clauses: strings, quoted names
# and comments (skipped as a whole, so a "check" inside them is not one), the CHECK keyword, parentheses.
_DDL_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|$)"""
                        r"""|\bCHECK\b|[()]""", re.IGNORECASE | re.DOTALL)  # fmt: skip


def connect(url: DatabaseUrl, read_only: bool = False) -> SqliteTarget:
    """Open an existing SQLite database (`read_only`: mode=ro, no write can go through). A missing file is
    an error, never a new empty database."""
    path = url.sqlite_path
    if not path.exists():
        raise ConnectionFailure(f"SQLite database {path} does not exist")
    # mode=rw: sqlite3 would otherwise create a missing file (a race with the check above, or a typo).
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as error:
        raise ConnectionFailure(f"cannot open SQLite database {path}: {error}") from None
    try:
        # sqlite3 opens lazily: the first read of the file is where a file that is not a database shows.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as error:
        conn.close()
        raise ConnectionFailure(f"{path} is not a usable SQLite database: {error}") from None
    # typeshed types aggregates as taking and returning int; SQLite passes any value and takes text back.
    conn.create_aggregate(ROW_HASH_FUNCTION, 1, _RowHash)  # type: ignore[arg-type]
    return SqliteTarget(url, conn, read_only)


class _RowHash:
    """Folds rows into "<sum of 64-bit row hashes mod 2**64>:<xor of differently keyed row hashes>".

    Both folds are commutative, so the order rows come in does not matter, and only two integers are
    kept, so memory stays flat however large the table is.
    """

    def __init__(self) -> None:
        self.total = 0
        self.xor = 0

    def step(self, row: bytes | None) -> None:
        data = row or b""
        self.total = (self.total + _hash64(data, _SUM_KEY)) % 2**64
        self.xor ^= _hash64(data, _XOR_KEY)

    def finalize(self) -> str:
        return f"{self.total}:{self.xor:016x}"


def _hash64(data: bytes, key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=key).digest(), "big")


class SqliteTarget:
    """The `Target` protocol on one SQLite connection (`conn`), inside whatever transaction is open."""

    dialect = Dialect.SQLITE

    def __init__(self, url: DatabaseUrl, conn: sqlite3.Connection, read_only: bool = False) -> None:
        self.url = url
        self.conn = conn
        self.server_version = sqlite3.sqlite_version
        self.read_only = read_only  # opened with mode=ro: SQLite itself refuses every write

    @property
    def server_major(self) -> int:
        return int(self.server_version.split(".")[0])

    def close(self) -> None:
        self.conn.close()

    def resolve(self, names: Sequence[str]) -> dict[str, str]:
        by_lower = {name.lower(): name for name in self.all_tables()}
        resolved = {}
        for spelled in names:
            bare = _unquote(spelled)
            schema, dot, rest = bare.partition(".")
            canonical = by_lower.get(bare.lower())
            if canonical is None and dot and _unquote(schema).lower() == "main":
                canonical = by_lower.get(_unquote(rest).lower())
            if canonical is not None:
                resolved[spelled] = canonical
        return resolved

    def all_tables(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")  # fmt: skip
        return [name for (name,) in rows]

    def table_sizes(self, tables: Sequence[str]) -> dict[str, TableSize]:
        sizes = {}
        for table in self._canonical(tables):
            (rows,) = self.conn.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()
            sizes[table] = TableSize(table, rows, self._bytes(table))
        return sizes

    def _bytes(self, table: str) -> int | None:
        """Pages of the table and of its indexes, from dbstat (absent when SQLite is built without it)."""
        names = [table, *(name for name, _ in self._indexes_of(table))]
        marks = ", ".join("?" * len(names))
        try:
            (size,) = self.conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})",
                                        names).fetchone()  # fmt: skip
        except sqlite3.OperationalError:
            return None
        return int(size or 0)

    def schema(self) -> Schema:
        tables: dict[str, tuple[Column, ...]] = {}
        constraints: dict[str, Constraint] = {}
        for table in self.all_tables():
            tables[table] = tuple(Column(name, type_, not notnull, default)
                                  for name, type_, notnull, default in self._columns(table))  # fmt: skip
            for constraint in self._constraints(table):
                constraints[f"{table}.{constraint.name}"] = constraint
        indexes = {}
        for name, table, sql in self.conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        ):
            columns = ", ".join(self._index_columns(name))
            definition = sql or f"automatic index {name} ON {table} ({columns})"
            indexes[name] = Index(name, table, definition, valid=True)
        objects: dict[str, dict[str, str]] = {}
        for kind, name, sql in self.conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY type, name"
        ):
            objects.setdefault(kind, {})[name] = sql
        return Schema(tables, constraints, indexes, objects)

    def tables_using_types(self, types: Sequence[str]) -> set[str]:
        """SQLite has no domains and no user-defined types."""
        return set()

    def sequence_columns(self, sequences: Sequence[str]) -> list[SequenceColumn]:
        """SQLite's AUTOINCREMENT never hands out a rowid at or below the table's largest: nothing collides."""
        return []

    def _columns(self, table: str) -> list[tuple[str, str, int, str | None]]:
        """(name, type, notnull, default) of the table's columns; hidden columns of virtual tables left out."""
        rows = self.conn.execute(f"PRAGMA table_xinfo({quote_identifier(table)})").fetchall()
        return [(name, type_, notnull, default) for _, name, type_, notnull, default, _, hidden in rows
                if hidden != 1]  # fmt: skip

    def _constraints(self, table: str) -> Iterator[Constraint]:
        primary = self._primary_key(table)
        if primary:
            yield Constraint(f"{table}_pkey", table, "primary", f"PRIMARY KEY ({', '.join(primary)})", True)
        named: set[str] = set()
        for key in self._foreign_keys(table):
            # Named after the columns, as PostgreSQL does: SQLite's key ids change when a key is added.
            name = base = f"{table}_{'_'.join(key.columns)}_fkey"
            while name in named:
                name = f"{base}{len(named)}"
            named.add(name)
            yield Constraint(name, table, "foreign", key.definition, True)
        for name, origin in self._indexes_of(table):
            if origin == "u":
                columns = self._index_columns(name)
                yield Constraint(f"{table}_{'_'.join(columns)}_key", table, "unique",
                                 f"UNIQUE ({', '.join(columns)})", True)  # fmt: skip
        checks = check_clauses(self._create_sql(table))
        if checks:
            yield Constraint(f"{table}_check", table, "check", ", ".join(f"CHECK ({c})" for c in checks), True)

    def _primary_key(self, table: str) -> list[str]:
        rows = self.conn.execute(f"PRAGMA table_xinfo({quote_identifier(table)})").fetchall()
        return [row[1] for row in sorted(rows, key=lambda row: row[5]) if row[5]]

    def _create_sql(self, table: str) -> str:
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (table,)).fetchone()  # fmt: skip
        return (row[0] or "") if row else ""

    def _indexes_of(self, table: str) -> list[tuple[str, str]]:
        """(name, origin) of the table's indexes: origin "c" CREATE INDEX, "u" UNIQUE, "pk" PRIMARY KEY."""
        rows = self.conn.execute(f"PRAGMA index_list({quote_identifier(table)})").fetchall()
        return [(row[1], row[3]) for row in rows]

    def _index_columns(self, index: str) -> list[str]:
        rows = self.conn.execute(f"PRAGMA index_info({quote_identifier(index)})").fetchall()
        return [name if name is not None else "<expression>" for _, _, name in rows]

    def _foreign_keys(self, table: str) -> list[_ForeignKey]:
        keys: dict[int, _ForeignKey] = {}
        rows = self.conn.execute(f"PRAGMA foreign_key_list({quote_identifier(table)})").fetchall()
        for key_id, _, parent, column, parent_column, on_update, on_delete, _ in sorted(rows):
            key = keys.setdefault(key_id, _ForeignKey(key_id, parent, on_update, on_delete))
            key.columns.append(column)
            key.parent_columns.append(parent_column)
        for key in keys.values():
            if any(column is None for column in key.parent_columns):
                # REFERENCES parent with no column list means the parent's primary key.
                key.parent_columns = list(self._primary_key(key.parent))
        return list(keys.values())

    def table_stats(self, tables: Sequence[str]) -> dict[str, TableStats]:
        stats = {}
        for table in self._canonical(tables):
            rendering = _row_rendering([name for name, *_ in self._columns(table)])
            rows, digest = self.conn.execute(
                f"SELECT count(*), {ROW_HASH_FUNCTION}(CAST({rendering} AS BLOB)) FROM {quote_identifier(table)}"
            ).fetchone()
            stats[table] = TableStats(table, rows, digest or _EMPTY_HASH)
        return stats

    def foreign_key_closure(self, tables: Sequence[str]) -> set[str]:
        """The tables, every table whose rows reference them (transitively: deletes cascade on), and every
        table those rows need for their own foreign keys (transitively: parents of parents)."""
        parents: dict[str, set[str]] = {}
        children: dict[str, set[str]] = {}
        canonical = {name.lower(): name for name in self.all_tables()}
        for table in canonical.values():
            for key in self._foreign_keys(table):
                parent = canonical.get(key.parent.lower(), key.parent)
                parents.setdefault(table, set()).add(parent)
                children.setdefault(parent, set()).add(table)
        below = _reachable(set(self._canonical(tables)), children)
        return _reachable(below, parents)

    def leaf_tables(self, tables: Sequence[str]) -> list[str]:
        """SQLite has no partitioned tables: the tables that exist, canonically named."""
        return list(self._canonical(tables))

    def integrity_checks(self, tables: Sequence[str], **_: object) -> list[CheckResult]:
        return [self._integrity_check(), self._foreign_key_check(tables)]

    def _integrity_check(self) -> CheckResult:
        name = "integrity_check"
        try:
            messages = [message for (message,) in self.conn.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as error:
            return CheckResult(name, False, f"integrity_check could not read the database: {error}")
        if messages == ["ok"]:
            return CheckResult(name, True, "ok")
        sample = tuple((message,) for message in messages[:SAMPLE_LIMIT])
        return CheckResult(name, False, f"{len(messages)} problem(s) found", sample, columns=("problem",))

    def _foreign_key_check(self, tables: Sequence[str]) -> CheckResult:
        """PRAGMA foreign_key_check over all tables, or over the given ones and the tables referencing them
        (a row deleted from a parent leaves its orphans in the child)."""
        name = "foreign keys hold"
        if tables:
            given = {table.lower() for table in self._canonical(tables)}
            scope = [table for table in self.all_tables() if table.lower() in given
                     or any(key.parent.lower() in given for key in self._foreign_keys(table))]  # fmt: skip
            statements = [f"PRAGMA foreign_key_check({quote_identifier(t)})" for t in scope]
        else:
            statements = ["PRAGMA foreign_key_check"]
        count, sample = 0, list[tuple[Any, ...]]()
        try:
            for statement in statements:
                for table, rowid, parent, _ in self.conn.execute(statement):
                    count += 1
                    if len(sample) < SAMPLE_LIMIT:
                        sample.append((table, rowid, parent))
        except sqlite3.Error as error:
            return CheckResult(name, False, f"foreign_key_check failed: {error}")
        if count:
            detail = f"{count} row(s) reference a missing parent row"
            return CheckResult(name, False, detail, tuple(sample), columns=("table", "rowid", "parent"))
        return CheckResult(name, True, "no row references a missing parent row")

    def query(self, sql: str, limit: int = 10) -> list[tuple[Any, ...]]:
        """Run one statement with query_only on: an invariant or check can read, never write."""
        return self.query_with_columns(sql, limit)[1]

    def query_with_columns(self, sql: str, limit: int = 10) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        (was_query_only,) = self.conn.execute("PRAGMA query_only").fetchone()
        self.conn.execute("PRAGMA query_only = ON")
        try:
            cursor = self.conn.execute(sql)
            try:
                columns = tuple(column[0] for column in cursor.description or ())
                return columns, cursor.fetchmany(limit) if limit > 0 else []
            finally:
                cursor.close()
        finally:
            self.conn.execute(f"PRAGMA query_only = {1 if was_query_only else 0}")

    def _canonical(self, tables: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(self.resolve(tables).values()))


class _ForeignKey:
    def __init__(self, key_id: int, parent: str, on_update: str, on_delete: str) -> None:
        self.id = key_id
        self.parent = parent
        self.on_update = on_update
        self.on_delete = on_delete
        self.columns: list[str] = []
        self.parent_columns: list[str | None] = []

    @property
    def definition(self) -> str:
        parent_columns = ", ".join(str(c) for c in self.parent_columns)
        text = f"FOREIGN KEY ({', '.join(self.columns)}) REFERENCES {self.parent} ({parent_columns})"
        if self.on_update != "NO ACTION":
            text += f" ON UPDATE {self.on_update}"
        if self.on_delete != "NO ACTION":
            text += f" ON DELETE {self.on_delete}"
        return text


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unquote(name: str) -> str:
    name = name.strip()
    for opening, closing in ('""', "``", "[]"):
        if len(name) >= 2 and name[0] == opening and name[-1] == closing:
            return name[1:-1].replace(closing * 2, closing) if opening == closing else name[1:-1]
    return name


def _row_rendering(columns: Sequence[str]) -> str:
    """`quote(c1) || '|' || quote(c2) ...`, nested as a balanced tree so that wide tables stay far from
    SQLite's expression depth limit. quote() keeps types apart: 1, '1' and X'31' render differently."""
    if len(columns) == 1:
        return f"quote({quote_identifier(columns[0])})"
    middle = len(columns) // 2
    return f"({_row_rendering(columns[:middle])} || '|' || {_row_rendering(columns[middle:])})"


def _reachable(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for neighbour in edges.get(todo.pop(), ()):
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return seen


def check_clauses(create_sql: str) -> list[str]:
    """The expressions of the CHECK clauses in a CREATE TABLE statement, as written."""
    clauses: list[str] = []
    after_check = False
    depth, start = 0, 0
    for token in _DDL_TOKEN.finditer(create_sql):
        text = token.group()
        if text.startswith(("--", "/*")):
            continue
        if depth == 0:
            if after_check and text == "(":
                depth, start = 1, token.end()
            after_check = text.upper() == "CHECK"
        elif text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                clauses.append(create_sql[start : token.start()].strip())
    return clauses
