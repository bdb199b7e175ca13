"""SQLite backups: a copy made with the backup API, proven to be the database as it was, with no writer
slipping in between.

PRAGMA data_version changes when another connection commits. It is read, the copy is made, then
BEGIN IMMEDIATE takes the write lock and data_version is read again: if it moved, a write landed during
the copy, and the copy is made again. Once it holds, the counts and hashes are taken under the lock,
so they describe exactly the copied state. `run` keeps that lock and runs the script in the same
transaction; a standalone backup releases it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from dbguard import __version__
from dbguard.backup.store import (
    BackupStore,
    Manifest,
    TableImage,
    kept_only_with_manifest,
    new_backup_id,
    sha256_of,
    staged,
    utc_now,
)
from dbguard.errors import BackupFailure
from dbguard.targets.model import TableStats
from dbguard.targets.sqlite import SqliteTarget
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]
DUMP_SUFFIX = ".sqlite"
ATTEMPTS = 5


def snapshot_backup(
    target: SqliteTarget,
    store: BackupStore,
    *,
    keep_lock: bool = False,
    label: str | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Copy the whole database; with keep_lock the BEGIN IMMEDIATE transaction stays open for the caller."""
    say = progress or (lambda _message: None)
    store.ensure_writable()
    conn = target.conn
    if conn.in_transaction:
        raise BackupFailure("a SQLite snapshot backup takes its own BEGIN IMMEDIATE: call it outside a transaction")
    backup_id = new_backup_id(label or Path(target.url.database).stem)
    final = store.dump_path(backup_id, DUMP_SUFFIX)
    with kept_only_with_manifest(final):
        with staged(final) as partial:
            stats = _copy_unchanged(target, partial, keep_lock, say)
            size = partial.stat().st_size
            digest = sha256_of(partial)
        manifest = Manifest(
            id=backup_id,
            created_at=utc_now(),
            dialect="sqlite",
            # the file's absolute path: a relative one would name another file from another directory, and
            # drill and verify would take that database's backups for this one's
            target=str(DatabaseUrl.parse(f"sqlite:///{target.url.sqlite_path.resolve()}")),
            server_version=target.server_version,
            tools={"dbguard": __version__, "sqlite": sqlite3.sqlite_version},
            tables={t: TableImage(s.rows, s.hash) for t, s in sorted(stats.items())},
            dump_file=final.name,
            dump_sha256=digest,
            dump_bytes=size,
            snapshot=None,
            scope="full",
        )
        store.save(manifest)
    return manifest


def _copy_unchanged(target: SqliteTarget, partial: Path, keep_lock: bool, say: Progress) -> dict[str, TableStats]:
    """Copy into `partial` until no writer committed during the copy; then count and hash under the write lock."""
    conn = target.conn
    for attempt in range(1, ATTEMPTS + 1):
        before = _data_version(conn)
        say(f"copying {target.url.sqlite_path} with the backup API (attempt {attempt})")
        _copy(conn, partial)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # another connection held the write lock past the timeout
            raise BackupFailure(
                f"cannot lock {target.url.sqlite_path} against writers ({error}): another connection "
                "is writing to it; no backup was written, try again when it is done"
            ) from None
        if _data_version(conn) == before:
            break
        conn.execute("ROLLBACK")  # a writer committed during the copy: copy again
    else:
        raise BackupFailure(f"the database kept changing during {ATTEMPTS} copies; try again when it is quieter")
    try:
        stats = target.table_stats(target.all_tables())
        if not keep_lock:
            conn.execute("ROLLBACK")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return stats


def _data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])


def _copy(conn: sqlite3.Connection, destination: Path) -> None:
    destination.unlink(missing_ok=True)
    copy = sqlite3.connect(destination)
    try:
        conn.backup(copy)
    except sqlite3.Error as error:
        raise BackupFailure(f"cannot copy the database: {error}") from None
    finally:
        copy.close()
