"""The marker dbguard puts on every sandbox it creates, so that it can prove, after connecting, that a
connection really reached its own sandbox (and never the target), and so that `cleanup` removes only what
dbguard made.

A PostgreSQL sandbox database carries the marker as its comment (`COMMENT ON DATABASE`, read back with
`shobj_description`); a local cluster's directory also holds it in a file. The marker is one line:
`dbguard-sandbox {"created": "<UTC ISO time>", "pid": <creating pid>, "host": "<creating host>",
"token": "<random hex>"}`. The random token is what a connection checks: no other database can hold it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

MARKER_PREFIX = "dbguard-sandbox "
MARKER_FILE = "dbguard-sandbox.marker"  # in a local cluster's working directory
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
