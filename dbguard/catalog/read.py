"""Where a snapshot comes from: a live database (read-only) or a stats file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dbguard.catalog.snapshot import Catalog, from_json
from dbguard.dialects import Dialect
from dbguard.errors import UsageError

if TYPE_CHECKING:
    from dbguard.targets.url import DatabaseUrl


def read_catalog(url: DatabaseUrl, schemas: Sequence[str] = ()) -> Catalog:
    """The snapshot of the database at `url`, read without writing anything (PostgreSQL: only the tables
    in `schemas` when given). MySQL has no reader yet: UsageError."""
    if url.dialect is Dialect.POSTGRES:
        from dbguard.catalog.read_postgres import read_postgres  # psycopg loads only for a PostgreSQL target

        return read_postgres(url, schemas)
    if url.dialect is Dialect.SQLITE:
        from dbguard.catalog.read_sqlite import read_sqlite

        if schemas:
            raise UsageError("--schema selects PostgreSQL schemas; a SQLite database has one (main): leave it out")

        return read_sqlite(url)
    raise UsageError(f"table statistics are read from PostgreSQL and SQLite, not {url.dialect.value}")


def load_stats(path: str) -> Catalog:
    """The snapshot in a stats file (`-`: stdin); UsageError (exit 2, one line) if unreadable or not one."""
    import sys

    if path == "-":
        return from_json(sys.stdin.read(), "<stdin>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read stats file {path}: {getattr(error, 'strerror', None) or error}") from None
    return from_json(text, path)
