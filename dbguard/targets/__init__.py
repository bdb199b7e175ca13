"""Database targets: one interface over PostgreSQL and SQLite, reached through SQLAlchemy URLs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dbguard.dialects import Dialect
from dbguard.errors import DbguardError
from dbguard.targets.model import Target
from dbguard.targets.url import DatabaseUrl


def open_target(url: DatabaseUrl, autocommit: bool = False, read_only: bool = False) -> Target:
    """Connect to a target; PostgreSQL connections start outside autocommit unless asked. `read_only`: a
    PostgreSQL session with `default_transaction_read_only` on (SQLite: the file opened read-only)."""
    if url.dialect is Dialect.SQLITE:
        from dbguard.targets import sqlite

        return sqlite.connect(url, read_only=read_only)
    from dbguard.targets import postgres

    return postgres.connect(url, autocommit=autocommit, read_only=read_only)


@contextmanager
def lost_connection_is(error_class: type[DbguardError], during: str) -> Iterator[None]:
    """Turn a connection lost during the block (the server terminated the session, a network failure)
    into `error_class` (its exit code), with the server's message on one line, instead of an internal
    error."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as error:
        from dbguard.targets.postgres import error_text

        raise error_class(f"the connection was lost during {during}: {error_text(error)}") from None
