"""The marker dbguard puts on every sandbox it creates, so that it can prove, after connecting, that a
connection really reached its own sandbox (and never the target), and so that `cleanup` removes only what
dbguard made.

A PostgreSQL sandbox database carries the marker as its comment (`COMMENT ON DATABASE`, read back with
`shobj_description`); a local cluster's directory also holds it in a file (`marked_directory`). The
marker is one line:
`dbguard-sandbox {"created": "<UTC ISO time>", "pid": <creating pid>, "host": "<creating host>",
"token": "<random hex>"}`. The random token is what a connection checks: no other database can hold it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

MARKER_PREFIX = "dbguard-sandbox "
MARKER_FILE = "dbguard-sandbox.marker"  # in a local sandbox's directory
DIRECTORY_PREFIX = "dbguard-sandbox-"  # of a local sandbox's directory (a cluster, or a SQLite copy)
_READ = """
SELECT shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = current_database()"""


@dataclass(frozen=True)
class SandboxMarker:
    created: str  # UTC, ISO 8601
    pid: int  # the dbguard process that made the sandbox
    host: str  # the machine it ran on (a pid means nothing on another one)
    token: str  # random: proves that a connection reached this very sandbox

    @classmethod
    def new(cls) -> SandboxMarker:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(created, os.getpid(), socket.gethostname(), secrets.token_hex(8))

    def text(self) -> str:
        return MARKER_PREFIX + json.dumps(asdict(self), sort_keys=True)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    @property
    def stamp(self) -> str:
        """The creation time as it appears in sandbox names: YYYYMMDDTHHMMSS (UTC)."""
        return self.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")

    @classmethod
    def parse(cls, text: str | None) -> SandboxMarker | None:
        """The marker in `text`, or None when `text` is not a dbguard marker (anything else, or damaged)."""
        if not text or not text.startswith(MARKER_PREFIX):
            return None
        try:
            body: Any = json.loads(text[len(MARKER_PREFIX) :])
            marker = cls(str(body["created"]), int(body["pid"]), str(body["host"]), str(body["token"]))
            marker.created_at  # noqa: B018 - a bad time is a damaged marker, not a crash later
        except (ValueError, KeyError, TypeError):
            return None
        return marker


def read_marker(conn: psycopg.Connection[Any]) -> SandboxMarker | None:
    """The marker of the database `conn` is connected to, if it has one."""
    row = conn.execute(_READ).fetchone()
    return SandboxMarker.parse(row[0] if row else None)


def set_marker(conn: psycopg.Connection[Any], database: str, marker: SandboxMarker) -> None:
    """Mark `database` (on `conn`'s server) as a dbguard sandbox."""
    from psycopg import sql

    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database), sql.Literal(marker.text())))


def marked_directory(prefix: str, parent: Path) -> tuple[Path, SandboxMarker]:
    """A new private directory `<parent>/<prefix><YYYYMMDDTHHMMSS>-<pid>-<random>` whose MARKER_FILE holds
    a new marker: (the directory, the marker). Raises OSError."""
    marker = SandboxMarker.new()
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{marker.stamp}-{marker.pid}-", dir=parent))
    (path / MARKER_FILE).write_text(marker.text() + "\n", "utf-8")
    return path, marker


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A marked private directory in the temp dir for the block (dumps of production data pass through it),
    removed afterwards; if dbguard is killed meanwhile, `dbguard cleanup` finds it by its marker."""
    path, _marker = marked_directory(DIRECTORY_PREFIX, Path(tempfile.gettempdir()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

