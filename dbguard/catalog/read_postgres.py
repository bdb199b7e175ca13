"""Read a PostgreSQL database's catalog snapshot, on a read-only connection (no row is read, none written).

Sources: `pg_class.reltuples` (rows as of the last ANALYZE or VACUUM; -1 before the first one, when the
size is unknown unless the table has no pages at all), `pg_total_relation_size` (heap, indexes, TOAST),
`pg_partition_tree` (a partitioned table's rows and bytes are its leaf partitions' sums), `format_type`,
`pg_get_constraintdef`, `pg_get_indexdef`, `pg_index` (key columns, validity, uniqueness, predicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.sql import SQL, Composable

from dbguard.catalog.snapshot import Catalog, ColumnInfo, ConstraintInfo, IndexInfo, TableInfo
from dbguard.dialects import Dialect
from dbguard.targets.postgres import connect
from dbguard.targets.postgres_objects import USER_SCHEMA
from dbguard.targets.url import DatabaseUrl

_TABLES = SQL("""
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p', c.reltuples, pg_total_relation_size(c.oid),
  pg_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {user_schema} AND (cardinality(%s::text[]) = 0 OR n.nspname = ANY(%s::text[]))
ORDER BY n.nspname, c.relname""")
_LEAVES = """
SELECT p.oid, ln.nspname || '.' || l.relname, l.reltuples, pg_total_relation_size(l.oid), pg_relation_size(l.oid)
FROM pg_class p CROSS JOIN LATERAL pg_partition_tree(p.oid) t
JOIN pg_class l ON l.oid = t.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace
WHERE p.oid = ANY(%s::oid[]) AND t.isleaf ORDER BY 2"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum"""
_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype::text, pg_get_constraintdef(con.oid), con.convalidated
FROM pg_constraint con WHERE con.conrelid = ANY(%s::oid[]) ORDER BY con.conrelid, con.conname"""
_INDEXES = """
SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisunique, i.indpred IS NOT NULL,
  ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE k.position <= i.indnkeyatts ORDER BY k.position)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY(%s::oid[]) ORDER BY i.indrelid, ic.relname"""
_OTHER_RELATIONS = SQL("""
SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm', 'S', 'i', 'I', 'f') AND {user_schema} ORDER BY 1""")
_KINDS = {"v": "view", "m": "materialized view", "S": "sequence", "i": "index", "I": "index", "f": "foreign table"}
_CONSTRAINT_KINDS = {"p": "primary", "f": "foreign", "u": "unique", "c": "check", "x": "exclusion", "t": "trigger"}


def read_postgres(url: DatabaseUrl, schemas: Sequence[str] = ()) -> Catalog:
    """Every user table (or those in `schemas`), on a connection with default_transaction_read_only on.
    Raises ConnectionFailure (exit 4) when the database cannot be reached."""
    with connect(url, read_only=True, application_name="dbguard stats") as target:
        conn = target.conn
        rows = _all(conn, _TABLES.format(user_schema=USER_SCHEMA), [list(schemas), list(schemas)])
        oids = [row[0] for row in rows]
        leaves: dict[int, list[tuple[Any, ...]]] = {}
        for parent, *leaf in _all(conn, _LEAVES, [[r[0] for r in rows if r[3]]]):
            leaves.setdefault(parent, []).append(tuple(leaf))
        columns = _grouped(_all(conn, _COLUMNS, [oids]), lambda r: ColumnInfo(r[1], r[2], bool(r[3])))
        constraints = _grouped(_all(conn, _CONSTRAINTS, [oids]), lambda r: ConstraintInfo(
            r[1], _CONSTRAINT_KINDS.get(r[2], r[2]), r[3], bool(r[4])))  # fmt: skip
        indexes = _grouped(_all(conn, _INDEXES, [oids]), lambda r: IndexInfo(
            r[1], r[2], bool(r[3]), bool(r[4]), tuple(r[6]), bool(r[5])))  # fmt: skip
        others = {name: _KINDS[kind] for name, kind in _all(conn, _OTHER_RELATIONS.format(user_schema=USER_SCHEMA))}
        tables = {}
        for oid, schema, name, partitioned, reltuples, total, heap in rows:
            if partitioned:
                parts = leaves.get(oid, [])
                counts = [_rows(r[1], r[3]) for r in parts]
                estimated = None if None in counts else sum(c or 0 for c in counts)
                size = int(total) + sum(int(r[2]) for r in parts)
            else:
                parts, estimated, size = [], _rows(reltuples, heap), int(total)
            table = TableInfo(schema, name, estimated, size, bool(partitioned), tuple(r[0] for r in parts),
                              tuple(columns.get(oid, ())), tuple(constraints.get(oid, ())),
                              tuple(indexes.get(oid, ())))  # fmt: skip
            tables[table.qualified] = table
        conn.rollback()
        return Catalog(Dialect.POSTGRES, url.without_password(), target.server_version,
                       datetime.now(UTC).isoformat(timespec="seconds"), tables, others)  # fmt: skip


def _rows(reltuples: float, heap_bytes: int) -> int | None:
    """reltuples, or 0 for a never-analyzed table without a page, or None (unknown) for one with pages."""
    if reltuples >= 0:
        return int(reltuples)
    return 0 if heap_bytes == 0 else None


def _all(conn: Any, query: str | Composable, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, params).fetchall())


def _grouped(rows: list[tuple[Any, ...]], make: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(make(row))
    return out
