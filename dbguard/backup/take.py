"""`dbguard backup`: a standalone backup through the same snapshot path `run` uses, without the locks,
then verified by a real restore unless asked not to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dbguard.backup import postgres as pg_backup
from dbguard.backup import sqlite as sqlite_backup
from dbguard.backup.store import BackupStore, Manifest
from dbguard.backup.verify import verify_backup
from dbguard.errors import UsageError
from dbguard.sandbox.base import provider_for
from dbguard.targets import open_target
from dbguard.targets.postgres import PostgresTarget
from dbguard.targets.sqlite import SqliteTarget
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]


def take_backup(
    url: DatabaseUrl,
    store: BackupStore,
    tables: Sequence[str] | None = None,
    *,
    verify: bool = True,
    provider: str = "server",
    sandbox_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
    compress: int = pg_backup.DEFAULT_COMPRESSION,
) -> Manifest:
    store.ensure_writable()
    target = open_target(url)
    try:
        if isinstance(target, SqliteTarget):
            if tables:
                raise UsageError("a SQLite backup copies the whole database file: drop --tables")
            manifest = sqlite_backup.snapshot_backup(target, store, progress=progress)
        else:
            assert isinstance(target, PostgresTarget)
            with pg_backup.session_lost_is_backup_failure(target):
                chosen = _resolve(target, tables)
                pg_backup.begin_snapshot_transaction(target)
            try:
                manifest = pg_backup.snapshot_backup(
                    target, store, chosen, pg_bin=pg_bin, progress=progress, compress=compress
                )
            finally:
                if not target.conn.broken:  # a lost session has nothing to roll back
                    target.conn.rollback()  # the snapshot transaction only read
    finally:
        target.close()
    if not verify:
        return manifest
    server = sandbox_url or url
    return verify_backup(store, manifest, provider=provider_for(url.dialect, provider),
                         server_url=server, pg_bin=pg_bin, progress=progress)  # fmt: skip


def _resolve(target: PostgresTarget, tables: Sequence[str] | None) -> list[str] | None:
    if not tables:
        return None
    resolved = target.resolve(tables)
    missing = [t for t in tables if t not in resolved]
    if missing:
        raise UsageError(f"no such table in {target.url.database}: {', '.join(missing)}")
    target.conn.commit()  # resolving took a snapshot; the backup's transaction must start fresh
    return sorted(set(resolved.values()))
