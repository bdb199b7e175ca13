"""The "server" sandbox: a scratch database on the target's own server, or on the one `--sandbox-url` names."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial

import psycopg
from psycopg import sql

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.base import Progress, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts, connect, database_facts
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl, mask

SANDBOX_PREFIX = "dbguard_sandbox_"


@contextmanager
def server_database(
    admin_url: DatabaseUrl, facts: DatabaseFacts, on_progress: Progress | None = None
) -> Iterator[tuple[DatabaseUrl, str]]:
    """An empty scratch database on `admin_url`'s server, dropped afterwards: (its URL, a description)."""
    name = SANDBOX_PREFIX + secrets.token_hex(6)
    url = admin_url.with_database(name)
    where = f"{url.host}:{url.port}"
    with removed_afterwards(partial(drop_database, admin_url, name), f'the sandbox database "{name}" on {where}'):
        if on_progress is not None:
            on_progress(f'creating the sandbox database "{name}" on {where}')
        # Held signals: interrupted mid-way, CREATE DATABASE could still commit after the DROP has run.
        with signals_deferred():
            note = _create_database(admin_url, name, facts)
        yield url, f'scratch database "{name}" on {where}{note}'


def drop_database(admin_url: DatabaseUrl, name: str) -> None:
    with closing(connect(admin_url)) as admin:
        major = database_facts(admin).server_major
        if major >= 13:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            return
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _create_database(admin_url: DatabaseUrl, name: str, facts: DatabaseFacts) -> str:
    """CREATE DATABASE from template0 (template1 may hold objects the restore would collide with) with
    the target's encoding and collation; returns a note for the description when those could not be
    had on this server."""
    with closing(connect(admin_url)) as admin:
        admin_major = database_facts(admin).server_major
        if admin_major < facts.server_major:
            raise ConnectionFailure(
                f"the sandbox server runs PostgreSQL {admin_major}, older than the target's {facts.server_major}: "
                "pass --sandbox-url of a server at least as new, or use --sandbox local"
            )
        locale = [sql.Literal(value) for value in (facts.encoding, facts.lc_collate, facts.lc_ctype)]
        faithful = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Identifier(name), *locale
        )
        try:
            admin.execute(faithful)
            return ""
        except psycopg.errors.InsufficientPrivilege:
            raise ConnectionFailure(_no_createdb_message(admin_url)) from None
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.FeatureNotSupported) as error:
            reason = mask(str(error)).strip()  # the target's locale does not exist on the sandbox server
        except psycopg.Error as error:
            raise ConnectionFailure(_create_failed(name, error)) from None
        try:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        except psycopg.Error as error:
            raise ConnectionFailure(_create_failed(name, error)) from None
        return f" (server's default locale: {reason})"


def _no_createdb_message(admin_url: DatabaseUrl) -> str:
    role = admin_url.url.username or "the current role"
    host = admin_url.url.host or "127.0.0.1"
    return (
        f'the role "{role}" may not create databases on {host}: pass --sandbox-url '
        "postgresql://user@host/postgres of a server where it can, or use --sandbox local"
    )


def _create_failed(name: str, error: psycopg.Error) -> str:
    return f'cannot create the sandbox database "{name}": {mask(str(error)).strip()}'
