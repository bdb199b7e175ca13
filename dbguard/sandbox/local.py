"""The "local" sandbox: a throwaway PostgreSQL cluster made with initdb and pg_ctl in a temporary directory.

It listens on a Unix socket inside that directory only (no TCP port), trusts local connections, and
runs with fsync off: it holds a copy for minutes, never data anyone needs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.base import Progress, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts
from dbguard.sandbox.pgtools import binary_major, find_binary, run_tool
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl

SERVER_USER = "postgres"  # initdb and postgres refuse to run as root; as root, run them as this OS user
# A Unix socket path must fit in 107 bytes; a long $TMPDIR would not leave room for ".s.PGSQL.<port>".
_MAX_SOCKET_DIR = 80


@contextmanager
def local_cluster(
    facts: DatabaseFacts, pg_bin: Path | None = None, on_progress: Progress | None = None
) -> Iterator[tuple[DatabaseUrl, str]]:
    """An empty throwaway cluster of the same major version, stopped and deleted afterwards."""
    progress = on_progress or (lambda _message: None)
    initdb, pg_ctl = (_server_binary(name, facts.server_major, pg_bin) for name in ("initdb", "pg_ctl"))
    run_as = _server_user()
    base = tempfile.gettempdir()
    workdir = Path(tempfile.mkdtemp(prefix="dbguard-sandbox-", dir=base if len(base) < _MAX_SOCKET_DIR else "/tmp"))
    with removed_afterwards(lambda: _remove_cluster(pg_ctl, workdir, run_as), f"the local cluster in {workdir}"):
        if run_as is not None:
            os.chown(workdir, run_as[1], run_as[2])
        progress(f"creating a local PostgreSQL {facts.server_major} cluster in {workdir}")
        port = _start_cluster(initdb, pg_ctl, workdir, facts, run_as[0] if run_as else None)
        # libpq takes a directory as the host to mean a Unix socket in it.
        url = DatabaseUrl(URL.create("postgresql+psycopg", "postgres", None, str(workdir), port, "postgres"))
        yield url, f"local PostgreSQL {facts.server_major} cluster in {workdir} (socket, port {port})"


def _start_cluster(initdb: Path, pg_ctl: Path, workdir: Path, facts: DatabaseFacts, user: str | None) -> int:
    """initdb (with the target's encoding and collation) and start; returns the port it runs on."""
    data = workdir / "data"
    initdb_args: list[str | Path] = [initdb, f"--pgdata={data}", "--auth=trust", "--username=postgres", "--no-sync"]
    initdb_args += [f"--encoding={facts.encoding}", f"--lc-collate={facts.lc_collate}", f"--lc-ctype={facts.lc_ctype}"]
    run_tool(initdb_args, {}, "initdb of the local sandbox", user=user, cwd=workdir)
    port = _free_port()
    options = (
        f"-k {shlex.quote(str(workdir))} -c listen_addresses='' -p {port} "
        "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    )
    start: list[str | Path] = [pg_ctl, f"--pgdata={data}", f"--log={workdir / 'server.log'}", "-o", options]
    # Held signals: a postmaster still starting when the removal looks for its pid file would outlive it.
    with signals_deferred():
        run_tool([*start, "-w", "-t", "60", "start"], {}, "starting the local sandbox", user=user, cwd=workdir)
    return port


def _server_binary(name: str, major: int, pg_bin: Path | None) -> Path:
    path = find_binary(name, major, pg_bin)
    found = binary_major(path)
    if found != major:
        raise ConnectionFailure(
            f"{path} is PostgreSQL {found} but the target runs {major}: a local sandbox needs the same major "
            f"version (install postgresql-{major} or pass --pg-bin DIR), or use --sandbox server"
        )
    return path


def _server_user() -> tuple[str, int, int] | None:
    """(name, uid, gid) of the OS user to run the server as when running as root; None otherwise."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ConnectionFailure(
            f"a local sandbox cannot run as root and there is no '{SERVER_USER}' OS user to run it as: "
            "run dbguard as another user, or use --sandbox server"
        ) from None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    # The server listens on no TCP port; the number only names its socket file and shared memory key.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _remove_cluster(pg_ctl: Path, workdir: Path, run_as: tuple[str, int, int] | None) -> None:
    data = workdir / "data"
    try:
        if (data / "postmaster.pid").exists():
            stop: list[str | Path] = [pg_ctl, f"--pgdata={data}", "-m", "immediate", "-w", "-t", "60", "stop"]
            run_tool(stop, {}, "stopping the local sandbox", user=run_as[0] if run_as else None, cwd=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=False)
