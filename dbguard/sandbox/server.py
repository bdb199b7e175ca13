"""The "server" sandbox: a scratch database on the target's own server, or on the one `--sandbox-url` names.

Its name says when and by which process it was made (`dbguard_sandbox_<YYYYMMDDTHHMMSS>_<pid>_<random>`,
UTC), and its comment holds the sandbox marker, which is what proves it dbguard's to `dbguard cleanup`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial

import psycopg
from psycopg import sql

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.base import EmptyDatabase, Progress, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts, connect, database_facts
from dbguard.sandbox.marker import SandboxMarker, set_marker
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl, mask

SANDBOX_PREFIX = "dbguard_sandbox_"


@contextmanager
def server_database(
    admin_url: DatabaseUrl, facts: DatabaseFacts, on_progress: Progress | None = None
) -> Iterator[EmptyDatabase]:
    """An empty scratch database on `admin_url`'s server, marked, and dropped afterwards."""
    marker = SandboxMarker.new()
    name = sandbox_name(marker)
    url = admin_url.with_database(name)
    where = f"{url.host}:{url.port}"
    with removed_afterwards(partial(drop_database, admin_url, name), f'the sandbox database "{name}" on {where}'):
        if on_progress is not None:
            on_progress(f'creating the sandbox database "{name}" on {where}')
        # Held signals: interrupted mid-way, CREATE DATABASE could still commit after the DROP has run.
        with signals_deferred():
            note = _create_database(admin_url, name, facts, marker)
        yield EmptyDatabase(url, f'scratch database "{name}" on {where}{note}', marker)


def sandbox_name(marker: SandboxMarker) -> str:
    """dbguard_sandbox_<YYYYMMDDTHHMMSS>_<pid>_<12 hex>: at most 52 bytes, within PostgreSQL's 63."""
    return f"{SANDBOX_PREFIX}{marker.stamp}_{marker.pid}_{secrets.token_hex(6)}"


def drop_database(admin_url: DatabaseUrl, name: str) -> None:
    with closing(connect(admin_url)) as admin:
        major = database_facts(admin).server_major
        if major >= 13:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            return
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _create_database(admin_url: DatabaseUrl, name: str, facts: DatabaseFacts, marker: SandboxMarker) -> str:
    """CREATE DATABASE from template0 (template1 may hold objects the restore would collide with) with
    the target's encoding and collation, and mark it; returns a note for the description when the
    encoding and collation could not be had on this server."""
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
        note = ""
        try:
            admin.execute(faithful)
        except psycopg.errors.InsufficientPrivilege:
            raise ConnectionFailure(_no_createdb_message(admin_url)) from None
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.FeatureNotSupported) as error:
            # the target's locale does not exist on the sandbox server
            note = f" (server's default locale: {mask(str(error)).strip()})"
        except psycopg.Error as error:
            raise ConnectionFailure(_create_failed(name, error)) from None
        try:
            if note:
                admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            set_marker(admin, name, marker)
        except psycopg.Error as error:
            raise ConnectionFailure(_create_failed(name, error)) from None
        return note


def _no_createdb_message(admin_url: DatabaseUrl) -> str:
    role = admin_url.url.username or "the current role"
    host = admin_url.url.host or "127.0.0.1"
    return (
        f'the role "{role}" may not create databases on {host}: pass --sandbox-url '
        "postgresql://user@host/postgres of a server where it can, or use --sandbox local"
    )


def _create_failed(name: str, error: psycopg.Error) -> str:
    return f'cannot create the sandbox database "{name}": {mask(str(error)).strip()}'
