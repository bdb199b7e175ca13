"""The sandbox a dry-run happens in: made, filled with a scoped copy of the target, and always removed.

Each provider is a context manager that registers its removal BEFORE it starts creating anything, so a
sandbox that is only half made (an interrupted CREATE DATABASE, a cluster whose start timed out) is
removed too. Removal runs in `finally`: after an error, after Ctrl-C, and after SIGTERM once
`signals.install_sigterm_handler()` is in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.copy import CopyStats
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


def default_provider(target_url: DatabaseUrl) -> str:
    return PROVIDERS[target_url.dialect][0] if target_url.dialect in PROVIDERS else "server"


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
    manager: AbstractContextManager[Sandbox]
    if provider == "server":
        from dbguard.sandbox.server import server_sandbox

        manager = server_sandbox(target_url, tables_with_data, sandbox_url, pg_bin, on_progress)
    elif provider == "local":
        from dbguard.sandbox.local import local_sandbox

        manager = local_sandbox(target_url, tables_with_data, pg_bin, on_progress)
    elif provider == "container":
        from dbguard.sandbox.container import container_sandbox

        manager = container_sandbox(target_url, tables_with_data, pg_bin, on_progress)
    else:
        from dbguard.sandbox.sqlite import sqlite_sandbox

        manager = sqlite_sandbox(target_url, sandbox_url, on_progress)
    with manager as sandbox:
        if sandbox.url.same_database(target_url):  # providers refuse this before writing; never yield it
            raise UsageError(f"the sandbox {sandbox.url} resolves to the target database itself")
        yield sandbox


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
