"""The scoped copy: the full schema of a PostgreSQL database, with the data of only some of its tables.

Order matters. The schema's pre-data section (tables, types, functions) goes first, then the rows and
every sequence's value, then the post-data section (indexes, constraints, triggers): indexes are built
once over the loaded rows, foreign keys are validated once, and no trigger fires while rows load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.catalog import Relations, connect, database_facts, relations
from dbguard.sandbox.marker import scratch_directory
from dbguard.sandbox.pgtools import binary_major, check_dump_compatible, find_binary, run_tool
from dbguard.targets.url import DatabaseUrl

RESTORE_OPTIONS = ("--no-owner", "--no-privileges", "--exit-on-error")


@dataclass(frozen=True)
class CopyStats:
    tables_copied: list[str]  # canonical "schema.table" names whose rows were copied
    bytes_dumped: int
    seconds: float


def copy_scoped(
    target_url: DatabaseUrl,
    sandbox_url: DatabaseUrl,
    tables_with_data: set[str] | None,
    pg_bin: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> CopyStats:
    """Copy the schema of `target_url` into the empty database `sandbox_url`, with the rows of
    `tables_with_data` (None: every table; an empty set: none) and the values of all sequences.

    Names in `tables_with_data` that are no table of the target (a table the script itself creates)
    have no rows to copy and are left out of `tables_copied`.
    """
    started = time.monotonic()
    progress = on_progress or (lambda _message: None)
    with closing(connect(target_url, read_only=True)) as conn:
        facts = database_facts(conn)
        catalog = relations(conn)
    pg_dump = find_binary("pg_dump", facts.server_major, pg_bin)
    check_dump_compatible(pg_dump, facts.server_major)
    pg_restore = find_binary("pg_restore", facts.server_major, pg_bin)
    if binary_major(pg_restore) < binary_major(pg_dump):
        raise ConnectionFailure(f"{pg_restore} is older than {pg_dump} and cannot read its archives: pass --pg-bin DIR")
    source_env, sandbox_env = target_url.libpq_env(read_only=True), sandbox_url.libpq_env()
    source_db, sandbox_db = _dbname_option(target_url.database), _dbname_option(sandbox_url.database)

    with scratch_directory() as workdir:
        schema_file = Path(workdir) / "schema.dump"
        progress(f"dumping the schema of {target_url.database}")
        dump: list[str | Path] = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", source_db]
        run_tool([*dump, "--schema-only", f"--file={schema_file}"], source_env, "dumping the schema")
        progress("restoring the schema into the sandbox")
        restore: list[str | Path] = [pg_restore, *RESTORE_OPTIONS, sandbox_db]
        run_tool([*restore, "--section=pre-data", schema_file], sandbox_env, "restoring the schema")
        dumped = schema_file.stat().st_size

        copied: list[str] = []
        patterns = _data_patterns(catalog, tables_with_data, copied)
        if patterns is not None:
            data_file = Path(workdir) / "data.dump"
            progress(f"copying the rows of {len(copied)} table(s) and {len(catalog.sequences)} sequence value(s)")
            run_tool([*dump, "--data-only", *patterns, f"--file={data_file}"], source_env, "dumping the data")
            run_tool([*restore, "--data-only", data_file], sandbox_env, "restoring the data")
            dumped += data_file.stat().st_size

        progress("building indexes and constraints in the sandbox")
        run_tool([*restore, "--section=post-data", schema_file], sandbox_env, "restoring indexes and constraints")
    return CopyStats(tables_copied=copied, bytes_dumped=dumped, seconds=time.monotonic() - started)


def quote_pattern(schema: str, name: str) -> str:
    """A pg_dump -t pattern matching exactly one relation: quoted parts take `*`, `?`, `.` and case
    literally, and a double quote inside a quoted part is written twice."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


def _data_patterns(catalog: Relations, tables_with_data: set[str] | None, copied: list[str]) -> list[str] | None:
    """The -t options of the data dump ([] for every table, None for no data dump); fills `copied`."""
    if tables_with_data is None:
        copied.extend(sorted(catalog.tables))
        return []
    if not tables_with_data:
        return None
    wanted = catalog.with_partitions(name for name in tables_with_data if name in catalog.tables)
    copied.extend(sorted(wanted))
    relations_to_dump = [catalog.tables[name] for name in copied] + catalog.sequences
    if not relations_to_dump:
        return None
    return [f"--table={quote_pattern(schema, name)}" for schema, name in relations_to_dump]


def _dbname_option(database: str) -> str:
    """`--dbname` with a database name only (credentials stay in the environment). A name containing
    `=` or starting like a URI would be read as a connection string, so such a name is given as one."""
    if "=" in database or database.startswith(("postgresql:", "postgres:")):
        escaped = database.replace("\\", "\\\\").replace("'", "\\'")
        return f"--dbname=dbname='{escaped}'"
    return f"--dbname={database}"
