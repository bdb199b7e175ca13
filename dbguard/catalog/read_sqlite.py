"""Read a SQLite database's catalog snapshot, opened read-only (mode=ro: no write can go through).

Rows are exact (`count(*)`: SQLite keeps no estimate), bytes are the `dbstat` pages of the table and its
indexes (None where SQLite is built without dbstat). Columns from `PRAGMA table_xinfo`, indexes from
`PRAGMA index_list` and `index_info`, constraints as the SQLite target reads them.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from dbguard.catalog.snapshot import Catalog, ColumnInfo, ConstraintInfo, IndexInfo, TableInfo
from dbguard.dialects import Dialect
from dbguard.targets.sqlite import SqliteTarget, connect, quote_identifier
from dbguard.targets.url import DatabaseUrl


def read_sqlite(url: DatabaseUrl) -> Catalog:
    """Every table of the database's main schema. Raises ConnectionFailure (exit 4) when the file is
    missing or not a database."""
    target = connect(url, read_only=True)
    try:
        schema = target.schema()
        tables = {}
        for name in target.all_tables():
            constraints = tuple(ConstraintInfo(c.name, c.kind, c.definition, c.valid)
                                for c in schema.constraints.values() if c.table == name)  # fmt: skip
            (rows,) = target.conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()
            indexes = _indexes(target, name)
            table = TableInfo("main", name, int(rows), _bytes(target, [name, *(i.name for i in indexes)]),
                              columns=_columns(target, name), constraints=constraints,
                              indexes=indexes)  # fmt: skip
            tables[table.qualified] = table
        others = {f"main.{name}": kind for name, kind in target.conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('view', 'index')")}  # fmt: skip
        return Catalog(Dialect.SQLITE, str(url.sqlite_path), target.server_version,
                       datetime.now(UTC).isoformat(timespec="seconds"), tables, others)  # fmt: skip
    finally:
        target.close()


def _columns(target: SqliteTarget, table: str) -> tuple[ColumnInfo, ...]:
    rows = target.conn.execute(f"PRAGMA table_xinfo({quote_identifier(table)})").fetchall()
    return tuple(ColumnInfo(name, type_ or "", bool(notnull)) for _, name, type_, notnull, _, _, hidden in rows
                 if hidden != 1)  # fmt: skip


def _indexes(target: SqliteTarget, table: str) -> tuple[IndexInfo, ...]:
    out = []
    for _, name, unique, _origin, partial in target.conn.execute(f"PRAGMA index_list({quote_identifier(table)})"):
        columns = tuple(column for _, _, column in target.conn.execute(f"PRAGMA index_info({quote_identifier(name)})"))
        row = target.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        out.append(IndexInfo(name, (row[0] or "") if row else "", True, bool(unique), columns, bool(partial)))
    return tuple(sorted(out, key=lambda i: i.name))


def _bytes(target: SqliteTarget, names: list[str]) -> int | None:
    marks = ", ".join("?" * len(names))
    try:
        (size,) = target.conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", names).fetchone()
    except sqlite3.OperationalError:
        return None
    return int(size or 0)
