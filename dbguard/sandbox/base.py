"""The sandbox a dry-run happens in: made, filled with a scoped copy of the target, and always removed.

Each provider is a context manager that registers its removal BEFORE it starts creating anything, so a
sandbox that is only half made (an interrupted CREATE DATABASE, a cluster whose start timed out) is
removed too. Removal runs in `finally`: after an error, after Ctrl-C, and after SIGTERM once
`signals.install_sigterm_handler()` is in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.catalog import DatabaseFacts
from dbguard.sandbox.copy import CopyStats
from dbguard.sandbox.marker import SandboxMarker
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl, mask

PROVIDERS: dict[Dialect, tuple[str, ...]] = {
    Dialect.POSTGRES: ("server", "local", "container"),
    Dialect.SQLITE: ("sqlite",),
}
Progress = Callable[[str], None]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sandbox:
    url: DatabaseUrl
    description: str  # for people: where the sandbox is and what was copied into it
    provider: str
    copy: CopyStats | None = None
    marker: SandboxMarker | None = None  # the marker set on the sandbox (None: a SQLite copy carries none)


class EmptyDatabase(NamedTuple):
    """What a PostgreSQL provider yields: an empty database, and the marker it set on it."""

    url: DatabaseUrl
    description: str  # for people: where it is
    marker: SandboxMarker


def provider_for(dialect: Dialect | str, chosen: str) -> str:
    """SQLite has one provider, a copy of the file; PostgreSQL uses the one chosen (--sandbox)."""
    return PROVIDERS[Dialect.SQLITE][0] if Dialect(dialect) is Dialect.SQLITE else chosen


@contextmanager
def open_sandbox(
    target_url: DatabaseUrl,
    provider: str,
    tables_with_data: set[str] | None,
    sandbox_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    on_progress: Progress | None = None,
) -> Iterator[Sandbox]:
    """Create a sandbox, copy the target into it (the rows of `tables_with_data` only; None: all), yield
    it, and remove it whatever happens."""
    allowed = PROVIDERS.get(target_url.dialect, ())
    if provider not in allowed:
        choices = ", ".join(allowed) or "none"
        raise UsageError(f"--sandbox {provider} does not work for {target_url.dialect.value} targets: use {choices}")
    if sandbox_url is not None and provider not in ("server", "sqlite"):
        raise UsageError(f"--sandbox-url does not apply to --sandbox {provider}")
    if sandbox_url is not None and sandbox_url.dialect is not target_url.dialect:
        raise UsageError(f"--sandbox-url {sandbox_url} is not a {target_url.dialect.value} URL like the target's")
    if sandbox_url is not None and sandbox_url.same_database(target_url):
        raise UsageError(f"--sandbox-url {sandbox_url} is the target database itself: a sandbox must be elsewhere")
    if target_url.dialect is Dialect.SQLITE:
        from dbguard.sandbox.sqlite import sqlite_sandbox

        with sqlite_sandbox(target_url, sandbox_url, on_progress) as sandbox:
            yield sandbox
        return
    from dbguard.sandbox.catalog import connect, database_facts
    from dbguard.sandbox.copy import copy_scoped

    with closing(connect(target_url, read_only=True)) as conn:
        facts = database_facts(conn)
    with empty_postgres(provider, facts, sandbox_url or target_url, pg_bin, on_progress) as (url, where, marker):
        if url.same_database(target_url):  # never yield, never write to, the target itself
            raise UsageError(f"the sandbox {url} resolves to the target database itself")
        stats = copy_scoped(target_url, url, tables_with_data, pg_bin, on_progress)
        scope = "all tables" if tables_with_data is None else f"the rows of {len(stats.tables_copied)} table(s)"
        yield Sandbox(url, f"{where}: schema of {target_url.database} with {scope}", provider, stats, marker)


@contextmanager
def empty_postgres(
    provider: str,
    facts: DatabaseFacts,
    server_url: DatabaseUrl,
    pg_bin: Path | None = None,
    on_progress: Progress | None = None,
) -> Iterator[EmptyDatabase]:
    """An empty PostgreSQL database to fill (with a scoped copy, or with a backup to verify), marked as a
    sandbox, proven to be it, and removed afterwards. Its URL carries the marker's token
    (`DatabaseUrl.sandbox_token`), so every later connection proves it again. `server_url` is where the
    "server" provider creates it; the others make their own server."""
    manager: AbstractContextManager[EmptyDatabase]
    if provider == "server":
        from dbguard.sandbox.server import server_database

        manager = server_database(server_url, facts, on_progress)
    elif provider == "local":
        from dbguard.sandbox.local import local_cluster

        manager = local_cluster(facts, pg_bin, on_progress)
    elif provider == "container":
        from dbguard.sandbox.container import container_database

        manager = container_database(facts, on_progress)
    else:
        raise UsageError(f"unknown sandbox provider {provider!r}: use server, local or container")
    with manager as database:
        # Every connection through this URL must find this sandbox's marker before anything runs; proven
        # once here too, before a restore (pg_restore cannot check it itself) writes anything.
        url = database.url.expecting_sandbox(database.marker.token)
        from dbguard.sandbox.catalog import connect

        connect(url).close()
        yield EmptyDatabase(url, database.description, database.marker)


@contextmanager
def removed_afterwards(remove: Callable[[], None], what: str) -> Iterator[None]:
    """Run `remove` when the block ends, however it ends, with Ctrl-C and SIGTERM held back meanwhile.

    A failed removal is an error of its own (the user must clean up by hand) unless the block is
    already failing: then it is logged, and the original error, the more useful one, goes on.
    """
    failing = False
    try:
        yield
    except BaseException:
        failing = True
        raise
    finally:
        with signals_deferred():
            try:
                remove()
            except Exception as error:
                message = f"could not remove {what}: {mask(str(error))}"
                if not failing:
                    raise ConnectionFailure(message) from None
                _log.warning(message)
