"""Database targets: one interface over PostgreSQL and SQLite, reached through SQLAlchemy URLs."""

from __future__ import annotations

from dbguard.dialects import Dialect
from dbguard.targets.model import Target
from dbguard.targets.url import DatabaseUrl


def open_target(url: DatabaseUrl, autocommit: bool = False) -> Target:
    """Connect to a target; PostgreSQL connections start outside autocommit unless asked."""
    if url.dialect is Dialect.SQLITE:
        from dbguard.targets import sqlite

        return sqlite.connect(url)
    from dbguard.targets import postgres

    return postgres.connect(url, autocommit=autocommit)
