"""What the sandbox needs to know about a PostgreSQL database before copying it, read from its catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from dbguard.targets import postgres
from dbguard.targets.url import DatabaseUrl

# Partitions are listed with their partitioned parents: `pg_dump -t parent` dumps no partition's rows.
_RELATIONS = """
WITH RECURSIVE rel AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'S')
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'  -- pg_catalog, pg_temp_N...
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
)
SELECT schema, name, relkind,
       (SELECT array_agg(p.schema || '.' || p.name) FROM pg_inherits i JOIN rel p ON p.oid = i.inhparent
        WHERE i.inhrelid = rel.oid) AS parents
FROM rel ORDER BY schema, name
"""


@dataclass(frozen=True)
class DatabaseFacts:
    server_major: int
    encoding: str
    lc_collate: str
    lc_ctype: str


@dataclass(frozen=True)
class Relations:
    tables: dict[str, tuple[str, str]]  # canonical "schema.table" -> (schema, table)
    sequences: list[tuple[str, str]]
    parents: dict[str, list[str]]  # canonical partition name -> canonical parents

    def with_partitions(self, names: Iterable[str]) -> set[str]:
        """`names` plus every partition below them, at any depth."""
        wanted = set(names)
        grew = True
        while grew:
            grew = False
            for child, parents in self.parents.items():
                if child not in wanted and any(parent in wanted for parent in parents):
                    wanted.add(child)
                    grew = True
        return wanted


def connect(url: DatabaseUrl, read_only: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit psycopg connection (`read_only`: for reading a target); failures are the target
    layer's one-line ConnectionFailure."""
    return postgres.connect(url, autocommit=True, application_name="dbguard sandbox", read_only=read_only).conn


def database_facts(conn: psycopg.Connection[tuple[Any, ...]]) -> DatabaseFacts:
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int / 10000, pg_encoding_to_char(encoding), "
        "datcollate, datctype FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return DatabaseFacts(int(row[0]), str(row[1]), str(row[2]), str(row[3]))


def relations(conn: psycopg.Connection[tuple[Any, ...]]) -> Relations:
    tables: dict[str, tuple[str, str]] = {}
    sequences: list[tuple[str, str]] = []
    parents: dict[str, list[str]] = {}
    for schema, name, relkind, parent_names in conn.execute(_RELATIONS).fetchall():
        if relkind == "S":
            sequences.append((schema, name))
            continue
        canonical = f"{schema}.{name}"
        tables[canonical] = (schema, name)
        if parent_names:
            parents[canonical] = list(parent_names)
    return Relations(tables, sequences, parents)
