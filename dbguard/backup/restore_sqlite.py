"""The SQLite half of `dbguard restore` (see restore.py): the backup file is attached read-only and the
chosen tables' rows are replaced with foreign keys off, then every key is checked before COMMIT."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from dbguard.backup.restore_checks import compare_tables, refuse_failed_checks
from dbguard.backup.store import Manifest, staged
from dbguard.errors import BackupFailure, UsageError
from dbguard.targets.model import TableStats
from dbguard.targets.sqlite import SqliteTarget
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]
_BACKUP_SCHEMA = "dbguard_backup"


def restore_sqlite_tables(dump: Path, manifest: Manifest, target_url: DatabaseUrl, tables: list[str],
                           say: Progress, notes: list[str]) -> dict[str, TableStats]:  # fmt: skip
    from dbguard.targets import sqlite

    with closing(sqlite.connect(target_url)) as target:
        conn = target.conn
        missing = [table for table in tables if not _sqlite_columns(conn, "main", table)]
        if missing:
            raise UsageError(f"{target_url} has no table {', '.join(missing)}: restore the whole backup --into "
                             "a new file instead")  # fmt: skip
        conn.execute("PRAGMA foreign_keys = OFF")  # no cascades while a table is empty; checked before COMMIT
        # immutable: the file's sha256 was just checked, and SQLite then writes no -wal or -shm beside it
        conn.execute(f"ATTACH DATABASE ? AS {_BACKUP_SCHEMA}", [f"{dump.resolve().as_uri()}?mode=ro&immutable=1"])
        try:
            for table in tables:
                if _sqlite_columns(conn, _BACKUP_SCHEMA, table) != _sqlite_columns(conn, "main", table):
                    raise BackupFailure(f"the columns of {table} changed since backup {manifest.id}: a table "
                                        "restore needs the same columns")  # fmt: skip
            triggers = _sqlite_triggers(conn, tables)
            if triggers:  # they would fire on every deleted and inserted row, and SQLite cannot turn them off
                raise BackupFailure(f"triggers would fire while the rows are replaced ({', '.join(triggers)}) and "
                                    "could change other tables: drop them, restore, and create them again; "
                                    "nothing was changed")  # fmt: skip
            stats = _replace_sqlite_rows(target, tables, manifest, say)
        finally:
            conn.execute(f"DETACH DATABASE {_BACKUP_SCHEMA}")
    notes.append("foreign keys were off while the rows were replaced; every foreign key was checked before COMMIT")
    return stats


def _replace_sqlite_rows(
    target: SqliteTarget, tables: list[str], manifest: Manifest, say: Progress
) -> dict[str, TableStats]:
    from dbguard.targets.sqlite import quote_identifier as quoted

    conn = target.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
    except Exception as error:
        raise BackupFailure(f"cannot lock {target.url.sqlite_path} for writing: {error}; nothing was changed") from None
    try:
        for table in tables:
            say(f"replacing the rows of {table}")
            names = ", ".join(quoted(name) for name, _, hidden in _sqlite_columns(conn, "main", table) if hidden == 0)
            conn.execute(f"DELETE FROM main.{quoted(table)}")
            conn.execute(f"INSERT INTO main.{quoted(table)} ({names}) "
                         f"SELECT {names} FROM {_BACKUP_SCHEMA}.{quoted(table)}")  # fmt: skip
        stats = target.table_stats(tables)
        compare_tables(manifest, stats)
        refuse_failed_checks(target.integrity_checks(tables))
    except BackupFailure:
        conn.execute("ROLLBACK")
        raise
    except Exception as error:
        conn.execute("ROLLBACK")
        raise BackupFailure(f"the restore failed: {error}; rolled back, the target is unchanged") from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return stats


def _sqlite_columns(conn: Any, schema: str, table: str) -> list[tuple[str, str, int]]:
    """(name, declared type, hidden: 0 plain, 2 or 3 generated) of each column; empty: no such table."""
    from dbguard.targets.sqlite import quote_identifier

    rows = conn.execute(f"PRAGMA {schema}.table_xinfo({quote_identifier(table)})").fetchall()
    return [(str(row[1]), str(row[2]), int(row[6])) for row in rows]


def _sqlite_triggers(conn: Any, tables: list[str]) -> list[str]:
    marks = ", ".join("?" * len(tables))
    rows = conn.execute(f"SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})",
                        tables).fetchall()  # fmt: skip
    return [str(name) for (name,) in rows]


def restore_sqlite_into(dump: Path, manifest: Manifest, into_url: DatabaseUrl, say: Progress) -> dict[str, TableStats]:
    from dbguard.targets import sqlite

    path = into_url.sqlite_path
    if path.exists():
        raise UsageError(f"{path} already exists: restore --into writes a new file and never replaces one")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a directory")
    say(f"copying {manifest.id} to {path}")
    try:
        with staged(path) as partial:
            shutil.copyfile(dump, partial)
    except OSError as error:
        raise BackupFailure(f"cannot write {path}: {error.strerror}") from None
    with closing(sqlite.connect(into_url)) as into:
        say("comparing the restored tables with the backup")
        stats = into.table_stats(list(manifest.tables))
        refuse_failed_checks(into.integrity_checks(into.all_tables()))
    compare_tables(manifest, stats)
    return stats
