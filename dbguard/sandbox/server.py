"""The "server" sandbox: a scratch database on the target's own server, or on the one `--sandbox-url` names."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import psycopg
from psycopg import sql

from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.base import Progress, Sandbox, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts, connect, database_facts
from dbguard.sandbox.copy import copy_scoped
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl, mask

SANDBOX_PREFIX = "dbguard_sandbox_"


@contextmanager
def server_sandbox(
    target_url: DatabaseUrl,
    tables_with_data: set[str] | None,
    sandbox_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    on_progress: Progress | None = None,
) -> Iterator[Sandbox]:
    # The admin connection only runs CREATE/DROP DATABASE: the target database itself will do when the
    # sandbox lives on the target's server, since the role can certainly connect there.
    admin_url = sandbox_url or target_url
    name = SANDBOX_PREFIX + secrets.token_hex(6)
    url = admin_url.with_database(name)
    if url.same_database(target_url):
        raise UsageError(f"the sandbox {url} would be the target database itself")
    with closing(connect(target_url)) as conn:
        facts = database_facts(conn)
    where = f"{url.url.host or '127.0.0.1'}:{url.url.port or 5432}"
    with removed_afterwards(partial(drop_database, admin_url, name), f'the sandbox database "{name}" on {where}'):
        if on_progress is not None:
            on_progress(f'creating the sandbox database "{name}" on {where}')
        # Held signals: interrupted mid-way, CREATE DATABASE could still commit after the DROP has run.
        with signals_deferred():
            note = _create_database(admin_url, name, facts)
        stats = copy_scoped(target_url, url, tables_with_data, pg_bin, on_progress)
        scope = "all tables" if tables_with_data is None else f"the rows of {len(stats.tables_copied)} table(s)"
        description = f'scratch database "{name}" on {where}: schema of {target_url.database} with {scope}{note}'
        yield Sandbox(url, description, "server", stats)


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
