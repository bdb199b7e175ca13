"""Where the demo's databases live, and their removal afterwards (on error, Ctrl-C and SIGTERM too).

- SQLite (the default): files in the demo's working directory.
- PostgreSQL (`--db` names a server): a database of the demo's own, named like dbguard's other scratch
  objects, `dbguard_demo_<YYYYMMDDTHHMMSS>_<pid>` (UTC), and dropped afterwards. The user's databases are
  never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import psycopg
from psycopg import sql

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.base import removed_afterwards
from dbguard.sandbox.catalog import connect
from dbguard.sandbox.server import drop_database
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl, mask

DEMO_PREFIX = "dbguard_demo_"


def demo_name() -> str:
    """dbguard_demo_<YYYYMMDDTHHMMSS>_<pid>: when and by which process, like the sandboxes' names."""
    return f"{DEMO_PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}_{os.getpid()}"


@contextmanager
def working_directory(option: Path | None) -> Iterator[Path]:
    """`option` (made if missing; it must hold nothing yet, and is kept), else a temporary directory
    removed afterwards. UsageError for a path that is a file or a directory with something in it."""
    if option is None:
        directory = Path(tempfile.mkdtemp(prefix="dbguard-demo-"))
        with removed_afterwards(partial(shutil.rmtree, directory, True), f"the demo's directory {directory}"):
            yield directory
        return
    if option.exists() and (not option.is_dir() or any(option.iterdir())):
        raise UsageError(f"--workdir {option} must be a new or empty directory (the demo writes its database, "
                         "backups and journal there)")  # fmt: skip
    option.mkdir(parents=True, exist_ok=True)
    yield option


@contextmanager
def postgres_database(server: DatabaseUrl, name: str) -> Iterator[DatabaseUrl]:
    """A new empty database `name` on `server`'s server; its URL is yielded and it is dropped afterwards.
    ConnectionFailure (exit 4) when the server cannot be reached or refuses CREATE DATABASE."""
    url = server.with_database(name)
    where = f"{server.host}:{server.port}"
    with removed_afterwards(partial(drop_database, server, name), f'the demo database "{name}" on {where}'):
        with signals_deferred(), closing(connect(server)) as admin:  # CREATE must not commit after the DROP ran
            try:
                admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            except psycopg.Error as error:  # no CREATEDB, a full disk...: one line, exit 4, never exit 70
                raise ConnectionFailure(f'cannot create the demo database "{name}" on {where}: '
                                        f"{mask(str(error)).strip()}") from None  # fmt: skip
        yield url


@contextmanager
def demo_databases(server: DatabaseUrl | None, workdir: Path) -> Iterator[tuple[DatabaseUrl, DatabaseUrl]]:
    """The warehouse's database and an empty one to restore the backup into (a file path not yet made, for
    SQLite): in `workdir` for SQLite, on `server` (a postgresql:// URL) otherwise, dropped afterwards."""
    if server is None:
        yield (DatabaseUrl.parse(f"sqlite:///{workdir / 'warehouse.db'}"),
               DatabaseUrl.parse(f"sqlite:///{workdir / 'restored.db'}"))  # fmt: skip
        return
    if server.dialect is not Dialect.POSTGRES:
        raise UsageError(f"--db takes a PostgreSQL server (postgresql://user@host:5432/postgres), not {server}: "
                         "without --db the demo runs on SQLite")  # fmt: skip
    name = demo_name()
    with postgres_database(server, name) as warehouse, postgres_database(server, f"{name}_restore") as scratch:
        yield warehouse, scratch
