"""Finding and running the PostgreSQL programs the sandbox needs: pg_dump, pg_restore, initdb, pg_ctl.

Connection parameters reach these programs through the environment (PGHOST, PGPASSWORD, ...), never
through argv, where any user of the machine could read a password with `ps`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from dbguard.errors import ConnectionFailure
from dbguard.sandbox import children
from dbguard.targets.url import mask

PG_BIN_ENV = "DBGUARD_PG_BIN"
SERVER_PROGRAMS = frozenset({"initdb", "pg_ctl", "postgres"})
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_log = logging.getLogger(__name__)


def find_binary(name: str, major: int | None = None, bin_dir: Path | None = None) -> Path:
    """Locate a PostgreSQL program.

    An explicit directory (`--pg-bin`, else $DBGUARD_PG_BIN) is the only place looked at when given: a
    user who names a directory must not silently get another version from PATH. Otherwise look in
    /usr/lib/postgresql/<major>/bin (Debian's layout, which matches versions exactly), then PATH, then
    `pg_config --bindir`.
    """
    explicit = bin_dir or (Path(os.environ[PG_BIN_ENV]) if os.environ.get(PG_BIN_ENV) else None)
    if explicit is not None:
        candidate = explicit / name
        if _is_executable(candidate):
            return candidate
        raise ConnectionFailure(f"{name} not found in {explicit}: {_install_hint(name, major)}")
    candidates: list[Path] = []
    if major is not None:
        candidates.append(Path(f"/usr/lib/postgresql/{major}/bin") / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    bindir = _pg_config_bindir()
    if bindir is not None:
        candidates.append(bindir / name)
    for candidate in candidates:
        if _is_executable(candidate):
            return candidate
    raise ConnectionFailure(f"{name} not found: {_install_hint(name, major)}")


def binary_major(path: Path) -> int:
    """The major version of a PostgreSQL program, from `<program> --version`."""
    result = children.run([path, "--version"], timeout=30)
    found = _VERSION.search(result.stdout)
    if result.returncode != 0 or found is None:
        raise ConnectionFailure(f"cannot tell the version of {path}: {(result.stdout + result.stderr).strip()!r}")
    return int(found.group(1))


def check_dump_compatible(pg_dump_path: Path, server_major: int) -> None:
    """pg_dump refuses servers newer than itself; say which version to install before it does."""
    dump_major = binary_major(pg_dump_path)
    if dump_major < server_major:
        raise ConnectionFailure(
            f"{pg_dump_path} is version {dump_major} but the server is version {server_major}: "
            f"pg_dump {server_major} or newer is needed (install postgresql-client-{server_major} "
            "or pass --pg-bin DIR)"
        )


def run_tool(
    args: Sequence[str | Path],
    env: Mapping[str, str],
    progress_label: str,
    *,
    user: str | None = None,
    cwd: Path | None = None,
) -> None:
    """Run one program to its end (see children.run: it never outlives dbguard) with `env` merged over
    os.environ; a non-zero exit raises ConnectionFailure carrying the program's stderr (masked: libpq
    error messages may echo a connection string)."""
    argv = [str(arg) for arg in args]
    _log.debug("%s: %s", progress_label, mask(" ".join(argv)))
    try:
        result = children.run(argv, env=env, user=user, cwd=cwd)
    except ConnectionFailure as error:
        raise ConnectionFailure(f"{progress_label} failed: {error}") from None
    signal_name = children.killed_by(result.returncode)
    if signal_name is not None:
        raise ConnectionFailure(f"{progress_label} failed: {Path(argv[0]).name} was killed by {signal_name}")
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}")[-4000:]
        raise ConnectionFailure(f"{progress_label} failed ({Path(argv[0]).name}): {mask(detail)}")


def tool_error(stderr: str, program: str) -> str:
    """The one line that says what went wrong in a PostgreSQL program's stderr: its first
    "<program>: error: ..." line (what follows it is detail, such as the query), else its last line;
    masked, whitespace collapsed."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    marker = f"{program}: error: "
    errors = [line.removeprefix(marker) for line in lines if line.startswith(marker)]
    return mask(errors[0] if errors else lines[-1] if lines else "no message")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = children.run([pg_config, "--bindir"], timeout=30)
    except ConnectionFailure:
        return None
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else None


def _install_hint(name: str, major: int | None) -> str:
    suffix = f"-{major}" if major is not None else ""
    if name in SERVER_PROGRAMS:
        return f"install the PostgreSQL server (postgresql{suffix}) or pass --pg-bin DIR"
    return f"install the PostgreSQL client (postgresql-client{suffix}) or pass --pg-bin DIR"
