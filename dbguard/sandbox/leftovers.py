"""dbguard's own leftovers after a crash, found and removed: sandbox databases, local sandbox directories
(a throwaway cluster, maybe still running, or a SQLite copy) and partial backup files that a process
killed with SIGKILL, or cut off by a power failure, could not remove itself.

Only what dbguard can prove it made is ever removed. A sandbox database must carry a valid sandbox
marker as its comment, and a directory a valid marker file, each matching the time and pid in the name
(a database merely named like a sandbox is someone else's); a directory and its marker file must also
belong to this OS user (or, as root, the directory to the `postgres` user the cluster ran as), so that
no other user can plant one for root to "clean". A partial file must have the name `staged()` gives.

A leftover is *stale*, and may go, when the process that made it is gone: it ran on this host and its pid
is dead (or a zombie, or now a younger process). A leftover from another host is stale once older than
`older_than`, unless sessions are still connected to it. One whose process still runs here is in use and
never removed, whatever its age.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from dbguard.backup.store import host_label, partial_files
from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure, DbguardError, UsageError
from dbguard.sandbox.local import pid_exists, postmaster_running, remove_cluster, sandbox_parents, server_user
from dbguard.sandbox.marker import DIRECTORY_PREFIX, MARKER_FILE, SandboxMarker
from dbguard.sandbox.server import SANDBOX_PREFIX, drop_database
from dbguard.targets import postgres
from dbguard.targets.url import DatabaseUrl, mask

DEFAULT_OLDER_THAN = timedelta(hours=1)
# The clocks behind a process's start time (boot time + ticks) and a marker's creation time drift apart by
# a few seconds; a pid that started this much later than the marker was made is a reused one.
_PID_REUSE_MARGIN = timedelta(seconds=60)
_DURATION = re.compile(r"^(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$")
_SANDBOX_DATABASES = """
SELECT d.datname, shobj_description(d.oid, 'pg_database'),
       (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid())
FROM pg_database d WHERE left(d.datname, %s) = %s ORDER BY d.datname"""
_COMMENT = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"


class State(StrEnum):
    STALE = "stale"  # removable
    IN_USE = "in use"
    RECENT = "recent"  # from another host, younger than older_than
    FOREIGN = "not dbguard's"  # no valid marker: never touched
    OTHER_USER = "another user's"


class Kind(StrEnum):
    DATABASE = "sandbox database"
    DIRECTORY = "local sandbox directory"
    PARTIAL = "partial backup file"


@dataclass(frozen=True)
class Leftover:
    kind: Kind
    name: str  # the database's name, or the path
    where: str  # the server (host:port) of a database; "" for files
    state: State
    reason: str  # why it is in that state, for people
    token: str | None = None  # the marker's: checked again right before removal

    @property
    def stale(self) -> bool:
        return self.state is State.STALE

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" on {self.where}" if self.where else "")


def parse_duration(text: str) -> timedelta:
    """'90s', '30m', '1h', '2d', '1h30m' -> a timedelta. Raises UsageError."""
    found = _DURATION.match(text.strip())
    if not text.strip() or found is None:
        raise UsageError(f"--older-than {text!r} is not a duration: use e.g. 30m, 1h, 2d or 1h30m")
    units = {key: int(value) for key, value in found.groupdict().items() if value}
    return timedelta(days=units.get("d", 0), hours=units.get("h", 0), minutes=units.get("m", 0),
                     seconds=units.get("s", 0))  # fmt: skip


def find_leftovers(
    server: DatabaseUrl | None,
    backup_dir: Path | None,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    parents: Sequence[Path] | None = None,
) -> list[Leftover]:
    """Every leftover found: sandbox databases on `server`'s server (None: none looked for), local
    sandbox directories in `parents` (default: where local sandboxes are made) and partial files in the
    store `backup_dir`. Raises UsageError for a `server` that cannot be used, ConnectionFailure when it
    cannot be reached."""
    now = datetime.now(UTC)
    found: list[Leftover] = []
    if server is not None:
        with closing(_connect(server, read_only=True)) as conn:
            found += server_sandboxes(conn, _where(server), older_than, now)
    for parent in parents if parents is not None else sandbox_parents():
        found += local_directories(parent, older_than, now)
    if backup_dir is not None:
        found += partials(backup_dir, older_than, now)
    return found


def server_sandboxes(
    conn: psycopg.Connection[Any], where: str, older_than: timedelta, now: datetime | None = None
) -> list[Leftover]:
    """The sandbox databases on `conn`'s server (one catalog query); `where` names the server."""
    now = now or datetime.now(UTC)
    found = []
    for name, comment, sessions in conn.execute(_SANDBOX_DATABASES, (len(SANDBOX_PREFIX), SANDBOX_PREFIX)):
        marker = SandboxMarker.parse(comment)
        if marker is None:
            found.append(Leftover(Kind.DATABASE, name, where, State.FOREIGN, "no dbguard marker"))
        elif not name.startswith(f"{SANDBOX_PREFIX}{marker.stamp}_{marker.pid}_"):
            found.append(Leftover(Kind.DATABASE, name, where, State.FOREIGN, "its marker does not match its name"))
        else:
            on_this_host = marker.host == socket.gethostname()
            state, reason = _judge(marker.created_at, marker.pid, marker.host, on_this_host, older_than, now)
            if state is State.STALE and not on_this_host and sessions:
                state, reason = State.IN_USE, f"{sessions} session(s) connected; {reason}"
            found.append(Leftover(Kind.DATABASE, name, where, state, reason, marker.token))
    return found


def local_directories(parent: Path, older_than: timedelta, now: datetime | None = None) -> list[Leftover]:
    """The local sandbox directories in `parent` (a glob, and one small file read per directory)."""
    now = now or datetime.now(UTC)
    found = []
    for path in sorted(parent.glob(f"{DIRECTORY_PREFIX}*")):
        if path.is_symlink() or not path.is_dir():
            continue
        problem, marker = _directory_marker(path)
        if marker is None:
            state = State.OTHER_USER if problem.startswith("another user's") else State.FOREIGN
            found.append(Leftover(Kind.DIRECTORY, str(path), "", state, problem))
            continue
        on_this_host = marker.host == socket.gethostname()
        state, reason = _judge(marker.created_at, marker.pid, marker.host, on_this_host, older_than, now)
        found.append(Leftover(Kind.DIRECTORY, str(path), "", state, reason, marker.token))
    return found


def partials(directory: Path, older_than: timedelta, now: datetime | None = None) -> list[Leftover]:
    """The partial files in the backup store `directory` (a glob)."""
    now = now or datetime.now(UTC)
    found = []
    this_host = host_label()
    for partial in partial_files(directory):
        try:
            written = datetime.fromtimestamp(partial.path.lstat().st_mtime, UTC)
        except FileNotFoundError:  # renamed into place meanwhile
            continue
        on_this_host = partial.host == this_host
        # From another host, the age counts from the last write: a partial still being written is not stale.
        since = partial.created if on_this_host else max(partial.created, written)
        state, reason = _judge(since, partial.pid, partial.host, on_this_host, older_than, now)
        found.append(Leftover(Kind.PARTIAL, str(partial.path), "", state, reason))
    return found


def remove_leftover(leftover: Leftover, server: DatabaseUrl | None) -> None:
    """Remove one stale leftover, after proving once more that it is the one found (the same marker).
    `server`: the one a database was found on. Raises ConnectionFailure (or UsageError: not stale)."""
    if not leftover.stale:
        raise UsageError(f"{leftover} is {leftover.state.value}: left alone")
    try:
        if leftover.kind is Kind.DATABASE:
            if server is None:
                raise UsageError(f"{leftover}: which server? (--db)")
            _drop_sandbox_database(server, leftover)
        elif leftover.kind is Kind.DIRECTORY:
            _remove_directory(Path(leftover.name), leftover)
        else:
            Path(leftover.name).unlink(missing_ok=True)
    except OSError as error:
        raise ConnectionFailure(f"cannot remove {leftover}: {error.strerror or error}") from None


def stale_notice(server: DatabaseUrl | None, backup_dir: Path | None = None) -> str | None:
    """A one-line note for `dry-run` and `backup` when they see stale leftovers: how many, where, and the
    `dbguard cleanup` command that removes them. None when there are none, or when looking failed (the
    command itself reports an unreachable server)."""
    if server is not None and server.dialect is not Dialect.POSTGRES:
        server = None
    try:
        stale = [leftover for leftover in find_leftovers(server, backup_dir) if leftover.stale]
    except (DbguardError, OSError, psycopg.Error):
        return None
    if not stale:
        return None
    counts = {kind: sum(1 for leftover in stale if leftover.kind is kind) for kind in Kind}
    parts = [_count(n, kind.value) for kind, n in counts.items() if n]
    command = "dbguard cleanup"
    if counts[Kind.DATABASE] and server is not None:
        parts[0] += f" on {_where(server)}"
        command += f" --db {server}"
    if counts[Kind.PARTIAL] and backup_dir is not None:
        command += f" --backup-dir {backup_dir}"
    found = _count(len(stale), "stale dbguard leftover")
    return f"note: {found} from crashed runs ({', '.join(parts)}): `{command}` removes them"


def _judge(
    created: datetime, pid: int, host: str, on_this_host: bool, older_than: timedelta, now: datetime
) -> tuple[State, str]:
    made = f"made {created.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if on_this_host:
        if process_alive(pid, created):
            return State.IN_USE, f"its process {pid} is running ({made})"
        return State.STALE, f"its process {pid} is gone ({made})"
    age = now - created
    if age >= older_than:
        return State.STALE, f"{_duration(age)} old, from host {host} ({made})"
    return State.RECENT, f"{_duration(age)} old, from host {host}, whose processes cannot be seen from here"


def process_alive(pid: int, created: datetime) -> bool:
    """Whether process `pid` of this host runs and can be the one that made something at `created`: a
    zombie is dead, and a process that started well after `created` only reuses the pid."""
    if pid == os.getpid():
        return True
    if not pid_exists(pid):
        return False
    started = _process_start(pid)
    if started is None:
        return True  # cannot tell: alive, to be safe
    state, start_time = started
    return state != "Z" and start_time <= created + _PID_REUSE_MARGIN


def _process_start(pid: int) -> tuple[str, datetime] | None:
    """(state letter, start time) of a process, from Linux's /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        seconds = int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    return fields[0], datetime.fromtimestamp(seconds, UTC)


def _directory_marker(path: Path) -> tuple[str, SandboxMarker | None]:
    """(why not, None) or ("", the marker) of a local sandbox directory, read without following links."""
    info = path.lstat()
    owners = {os.geteuid()}
    if os.geteuid() == 0:  # local.py gives the directory to the server's OS user
        try:
            run_as = server_user()
        except ConnectionFailure:  # no such user: no cluster can have run as it
            run_as = None
        if run_as is not None:
            owners.add(run_as[1])
    if info.st_uid not in owners:
        return f"another user's (uid {info.st_uid})", None
    try:
        fd = os.open(path / MARKER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "no dbguard marker file", None
    try:
        marker_info = os.fstat(fd)
        if not stat.S_ISREG(marker_info.st_mode) or marker_info.st_uid != os.geteuid():
            return "its marker file is not a file of this user", None
        text = os.read(fd, 4096).decode("utf-8", "replace")
    finally:
        os.close(fd)
    marker = SandboxMarker.parse(text.strip())
    if marker is None:
        return "no valid dbguard marker in its marker file", None
    if not path.name.startswith(f"{DIRECTORY_PREFIX}{marker.stamp}-{marker.pid}-"):
        return "its marker does not match its name", None
    return "", marker


def _remove_directory(path: Path, leftover: Leftover) -> None:
    _, marker = _directory_marker(path)
    if marker is None or marker.token != leftover.token:
        raise ConnectionFailure(f"{leftover} changed since it was listed: left alone")
    data = path / "data"
    if not postmaster_running(data):
        shutil.rmtree(path)
        return
    from dbguard.sandbox.pgtools import find_binary

    major = int((data / "PG_VERSION").read_text().strip())
    remove_cluster(find_binary("pg_ctl", major), path, server_user())


def _drop_sandbox_database(server: DatabaseUrl, leftover: Leftover) -> None:
    with closing(_connect(server)) as conn:
        row = conn.execute(_COMMENT, (leftover.name,)).fetchone()
    if row is None:
        return  # already gone
    marker = SandboxMarker.parse(row[0])
    if marker is None or marker.token != leftover.token:
        raise ConnectionFailure(f"{leftover} changed since it was listed: left alone")
    try:
        drop_database(server, leftover.name)
    except psycopg.Error as error:
        raise ConnectionFailure(f"cannot drop {leftover}: {mask(str(error)).strip()}") from None


def _connect(server: DatabaseUrl, read_only: bool = False) -> psycopg.Connection[Any]:
    if server.dialect is not Dialect.POSTGRES:
        raise UsageError(f"--db {server}: sandbox databases live on PostgreSQL servers (SQLite's are directories)")
    if server.database.startswith(SANDBOX_PREFIX):
        raise UsageError(f"--db {server} is a sandbox itself: name another database of that server")
    return postgres.connect(server, autocommit=True, application_name="dbguard cleanup", read_only=read_only).conn


def _where(server: DatabaseUrl) -> str:
    return f"{server.host}:{server.port}"


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun[:-1]}ies" if noun.endswith("y") else f"{n} {noun}s"


def _duration(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    days, hours, minutes = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
