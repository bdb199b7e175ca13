"""The "local" sandbox: a throwaway PostgreSQL cluster made with initdb and pg_ctl in a temporary directory.

It listens on a Unix socket inside that directory only (no TCP port), trusts local connections, and
runs with fsync off: it holds a copy for minutes, never data anyone needs. The directory is named
`dbguard-sandbox-<YYYYMMDDTHHMMSS>-<pid>-<random>` and holds the sandbox marker in a file from the start
(the cluster's `postgres` database carries it too), so that `dbguard cleanup` can tell it its own.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.base import EmptyDatabase, Progress, removed_afterwards
from dbguard.sandbox.catalog import DatabaseFacts, connect
from dbguard.sandbox.marker import DIRECTORY_PREFIX, SandboxMarker, marked_directory, set_marker
from dbguard.sandbox.pgtools import binary_major, find_binary, run_tool
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import DatabaseUrl

SERVER_USER = "postgres"  # initdb and postgres refuse to run as root; as root, run them as this OS user
FALLBACK_PARENT = "/tmp"  # where the directory goes when $TMPDIR is too long for a socket path
# A Unix socket path must fit in 107 bytes: <parent>/<prefix><YYYYMMDDTHHMMSS>-<pid, up to 7>-<8>/.s.PGSQL.<port>
_MAX_SOCKET_PATH = 107
_MAX_PARENT = _MAX_SOCKET_PATH - len(f"/{DIRECTORY_PREFIX}YYYYMMDDTHHMMSS-1234567-abcdefgh/.s.PGSQL.65535")


@contextmanager
def local_cluster(
    facts: DatabaseFacts, pg_bin: Path | None = None, on_progress: Progress | None = None
) -> Iterator[EmptyDatabase]:
    """An empty throwaway cluster of the same major version, marked, and stopped and deleted afterwards."""
    progress = on_progress or (lambda _message: None)
    initdb, pg_ctl = (_server_binary(name, facts.server_major, pg_bin) for name in ("initdb", "pg_ctl"))
    run_as = server_user()
    workdir, marker = marked_directory(DIRECTORY_PREFIX, _cluster_parent())
    with removed_afterwards(lambda: remove_cluster(pg_ctl, workdir, run_as), f"the local cluster in {workdir}"):
        if run_as is not None:
            os.chown(workdir, run_as[1], run_as[2])
        progress(f"creating a local PostgreSQL {facts.server_major} cluster in {workdir}")
        port = _start_cluster(initdb, pg_ctl, workdir, facts, run_as[0] if run_as else None)
        # libpq takes a directory as the host to mean a Unix socket in it.
        url = DatabaseUrl(URL.create("postgresql+psycopg", "postgres", None, str(workdir), port, "postgres"))
        _mark_cluster(url, marker)
        where = f"local PostgreSQL {facts.server_major} cluster in {workdir} (socket, port {port})"
        yield EmptyDatabase(url, where, marker)


def sandbox_parents() -> list[Path]:
    """Where local sandboxes' directories go: the temporary directory, or /tmp for a cluster when the
    temporary directory's path is too long for a socket path."""
    return list(dict.fromkeys([Path(tempfile.gettempdir()), _cluster_parent()]))


def _cluster_parent() -> Path:
    base = Path(tempfile.gettempdir())
    return base if len(str(base)) <= _MAX_PARENT else Path(FALLBACK_PARENT)


def _mark_cluster(url: DatabaseUrl, marker: SandboxMarker) -> None:
    with closing(connect(url)) as conn:
        set_marker(conn, url.database, marker)


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


def server_user() -> tuple[str, int, int] | None:
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


def remove_cluster(pg_ctl: Path, workdir: Path, run_as: tuple[str, int, int] | None) -> None:
    """Stop the cluster in `workdir` if its postmaster runs (immediate shutdown: nothing in it is kept),
    and delete the directory. Raises ConnectionFailure or OSError."""
    data = workdir / "data"
    try:
        if postmaster_running(data):
            stop: list[str | Path] = [pg_ctl, f"--pgdata={data}", "-m", "immediate", "-w", "-t", "60", "stop"]
            run_tool(stop, {}, "stopping the local sandbox", user=run_as[0] if run_as else None, cwd=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=False)


def postmaster_running(data: Path) -> bool:
    """Whether the postmaster named in `data`/postmaster.pid is alive (the file outlives a killed one)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return pid_exists(pid)


def pid_exists(pid: int) -> bool:
    """Whether a process `pid` exists on this host (a zombie too)."""
    if pid <= 0:  # kill() would signal a whole process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
