"""Read a SQLite database's catalog snapshot, opened read-only (mode=ro: no write can go through).

Rows are exact (`count(*)`: SQLite keeps no estimate), bytes are the `dbstat` pages of the table and its
indexes (None where SQLite is built without dbstat): both `SqliteTarget.table_sizes`. Columns and
constraints as the SQLite target's `schema()` reads them, indexes from `PRAGMA index_list` and `index_info`.
"""

from __future__ import annotations

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
        sizes = target.table_sizes(target.all_tables())
        tables = {}
        for name, size in sizes.items():
            columns = tuple(ColumnInfo(c.name, c.type or "", not c.nullable) for c in schema.tables[name])
            constraints = tuple(ConstraintInfo(c.name, c.kind, c.definition, c.valid)
                                for c in schema.constraints.values() if c.table == name)  # fmt: skip
            table = TableInfo("main", name, size.estimated_rows, size.bytes, columns=columns,
                              constraints=constraints, indexes=_indexes(target, name))  # fmt: skip
            tables[table.qualified] = table
        others = {f"main.{name}": kind for name, kind in target.conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('view', 'index')")}  # fmt: skip
        return Catalog(Dialect.SQLITE, str(url.sqlite_path), target.server_version,
                       datetime.now(UTC).isoformat(timespec="seconds"), tables, others)  # fmt: skip
    finally:
        target.close()


def _indexes(target: SqliteTarget, table: str) -> tuple[IndexInfo, ...]:
    out = []
    for _, name, unique, _origin, partial in target.conn.execute(f"PRAGMA index_list({quote_identifier(table)})"):
        columns = tuple(column for _, _, column in target.conn.execute(f"PRAGMA index_info({quote_identifier(name)})"))
        row = target.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
        out.append(IndexInfo(name, (row[0] or "") if row else "", True, bool(unique), columns, bool(partial)))
    return tuple(sorted(out, key=lambda i: i.name))

