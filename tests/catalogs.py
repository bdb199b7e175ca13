"""Small table-statistics snapshots written inline, for rule fixtures and examples that need sizes.

A table is {name, rows, indexed (leading columns of indexes), columns ({name: type}), bytes, primary};
another relation is {name, kind} ("view", "sequence", ...).
"""

from __future__ import annotations

from typing import Any

from dbguard.catalog.snapshot import Catalog, ColumnInfo, ConstraintInfo, IndexInfo, TableInfo
from dbguard.dialects import Dialect


def catalog_of(tables: list[dict[str, Any]], dialect: Dialect = Dialect.POSTGRES) -> Catalog:
    default_schema = "main" if dialect is Dialect.SQLITE else "public"
    out, relations = {}, {}
    for raw in tables:
        schema, _, name = str(raw["name"]).rpartition(".")
        if raw.get("kind", "table") != "table":
            relations[f"{schema or default_schema}.{name}"] = str(raw["kind"])
            continue
        indexes = tuple(IndexInfo(f"{name}_{c}_idx", f"CREATE INDEX ON {name} ({c})", True, c == raw.get("primary"),
                                  (c,), False) for c in raw.get("indexed", []))  # fmt: skip
        constraints = (ConstraintInfo(f"{name}_pkey", "primary", f"PRIMARY KEY ({raw['primary']})", True),) if (
            raw.get("primary")) else ()  # fmt: skip
        columns = tuple(ColumnInfo(c, t, False) for c, t in raw.get("columns", {}).items())
        table = TableInfo(schema or default_schema, name, raw.get("rows"), raw.get("bytes", 8192 * 10),
                          columns=columns, constraints=constraints, indexes=indexes)  # fmt: skip
        out[table.qualified] = table
    return Catalog(dialect, "fixture", "15.0", "2026-01-01T00:00:00+00:00", out, relations)
