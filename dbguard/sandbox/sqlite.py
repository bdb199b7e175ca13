"""The "sqlite" sandbox: a copy of the whole SQLite file made with the backup API.

SQLite has no scoped copy (one file holds every table), so the whole database is copied. The backup
API copies a consistent snapshot page by page, even while other connections write.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.base import Progress, Sandbox, removed_afterwards
from dbguard.sandbox.copy import CopyStats
from dbguard.sandbox.marker import DIRECTORY_PREFIX, marked_directory
from dbguard.targets.sqlite import connect
from dbguard.targets.url import DatabaseUrl

_SIDE_FILES = ("-journal", "-wal", "-shm")


@contextmanager
def sqlite_sandbox(
    target_url: DatabaseUrl,
    sandbox_url: DatabaseUrl | None = None,
    on_progress: Progress | None = None,
) -> Iterator[Sandbox]:
    """Copy the target into a temporary file, or into `sandbox_url`'s file, which must not exist yet (a
    sandbox is deleted afterwards, so it must never be a file someone already has)."""
    progress = on_progress or (lambda _message: None)
    remove: Callable[[], None]
    if sandbox_url is not None:
        destination = sandbox_url.sqlite_path
        if sandbox_url.same_database(target_url):
            raise UsageError(f"--sandbox-url {sandbox_url} is the target database itself")
        if destination.exists():
            raise UsageError(f"--sandbox-url {sandbox_url}: {destination} exists; name a file that does not")

        def remove() -> None:
            for path in [destination, *(Path(f"{destination}{suffix}") for suffix in _SIDE_FILES)]:
                path.unlink(missing_ok=True)
    else:
        workdir, _ = marked_directory(DIRECTORY_PREFIX, Path(tempfile.gettempdir()))  # found by `cleanup`
        destination = workdir / (target_url.sqlite_path.name or "sandbox.db")

        def remove() -> None:
            shutil.rmtree(workdir)

    with removed_afterwards(remove, f"the sandbox copy {destination}"):
        started = time.monotonic()
        progress(f"copying {target_url.sqlite_path} with the SQLite backup API")
        tables = _backup(target_url, destination)
        stats = CopyStats(tables, destination.stat().st_size, time.monotonic() - started)
        url = DatabaseUrl(URL.create("sqlite", database=str(destination.resolve())))
        description = f"copy of {target_url.sqlite_path} in {destination} (whole database: SQLite has no scoped copy)"
        yield Sandbox(url, description, "sqlite", stats)


def _backup(target_url: DatabaseUrl, destination: Path) -> list[str]:
    """Copy every page of the target into `destination`; returns the names of the tables copied."""
    source = connect(target_url, read_only=True)  # the dry-run never writes the target: mode=ro
    try:
        copy = sqlite3.connect(destination)
        try:
            source.conn.backup(copy)
        except sqlite3.Error as error:
            raise ConnectionFailure(f"cannot copy {target_url.sqlite_path} to {destination}: {error}") from None
        finally:
            copy.close()
        return source.all_tables()
    finally:
        source.close()
