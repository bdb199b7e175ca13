"""`dbguard cleanup` after real crashes: a dry-run and a backup killed with SIGKILL leave a sandbox database,
a running local cluster and a partial file; cleanup finds and removes exactly those, and never a database
that merely looks like a sandbox, nor the sandbox of a process that still runs."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.sandbox.leftovers import State, local_directories, parse_duration, process_alive, server_sandboxes
from dbguard.sandbox.local import postmaster_running
from dbguard.sandbox.marker import DIRECTORY_PREFIX, MARKER_FILE, SandboxMarker
from dbguard.sandbox.server import SANDBOX_PREFIX
from tests.test_backup_faults import wait_for
from tests.warehouse import ADMIN_URL

ROOT = Path(__file__).parent.parent
SERVER = "127.0.0.1:5432"
T = TypeVar("T")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory short enough for a local cluster's socket path, as the dbguard runs' TMPDIR:
    their local leftovers land there, apart from anyone else's."""
    path = Path(tempfile.mkdtemp(prefix="dg-", dir="/tmp"))
    path.chmod(0o711)  # as root, a local cluster runs as the postgres OS user, which must reach its directory
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def locked(url: str, table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on `table` meanwhile: a pg_dump that reaches it waits."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
        yield
        conn.rollback()


@contextmanager
def started(*args: str, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real dbguard process in its own process group (so that SIGKILL reaches its pg_dump too), killed
    on the way out if the test has not done it."""
    command = [sys.executable, "-m", "dbguard", *args]
    process = subprocess.Popen(command, cwd=ROOT, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def dbguard(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbguard", *args], cwd=ROOT, env=_env(tmp), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300, check=False)  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp)}


def dump_waiting(target: str) -> bool | None:
    """True once a pg_dump session on `target`'s database waits for a lock."""
    with psycopg.connect(ADMIN_URL) as conn:
        row = conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND application_name = 'pg_dump' "
                           "AND wait_event_type = 'Lock'", (_database(target),)).fetchone()  # fmt: skip
    return True if row else None


def kill(process: subprocess.Popen[bytes], target: str) -> None:
    """SIGKILL the dbguard process group, and end the pg_dump sessions it left on `target`'s database."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND application_name = 'pg_dump'", (_database(target),))  # fmt: skip


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def sandboxes_of(pid: int) -> str | None:
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname LIKE 'dbguard\\_sandbox\\_%'").fetchall()  # fmt: skip
    mine = [name for name, comment in rows if (marker := SandboxMarker.parse(comment)) and marker.pid == pid]
    return mine[0] if mine else None


def database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def dead_pid() -> int:
    """The pid of a process of this host that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def make_database(name: str, comment: str | None) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if comment is not None:
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def marker_of(pid: int, host: str | None = None, age: timedelta = timedelta(0)) -> SandboxMarker:
    created = (datetime.now(UTC) - age).isoformat(timespec="seconds")
    return SandboxMarker(created, pid, host or socket.gethostname(), secrets.token_hex(8))


def made(marker: SandboxMarker) -> str:
    return f"made {marker.created_at:%Y-%m-%d %H:%M:%S} UTC"


def name_for(marker: SandboxMarker) -> str:
    return f"{SANDBOX_PREFIX}{marker.stamp}_{marker.pid}_{secrets.token_hex(6)}"


def test_a_sigkilled_dry_run_leaves_a_sandbox_database_that_cleanup_removes(warehouse_pg: str, short_tmp: Path) -> None:
    script = short_tmp / "fix.sql"
    script.write_text("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n")
    name = None
    try:
        with (
            locked(warehouse_pg, "orders"),  # not a table the script touches: the copy's pg_dump waits on it
            started("dry-run", str(script), "--db", warehouse_pg, tmp=short_tmp) as process,
        ):
            name = wait_for("the sandbox database", lambda: sandboxes_of(process.pid), process)
            wait_for("the copy", lambda: dump_waiting(warehouse_pg), process)
            kill(process, warehouse_pg)
        assert re.fullmatch(rf"dbguard_sandbox_[0-9]{{8}}T[0-9]{{6}}_{process.pid}_[0-9a-f]{{12}}", name)
        assert database_exists(name)

        result = dbguard("cleanup", "--db", warehouse_pg, "--yes", tmp=short_tmp)
        assert result.returncode == 0, result.stderr
        listed = rf"^stale +sandbox database {name} on {SERVER}: its process {process.pid} is gone"
        assert re.search(listed, result.stdout, re.MULTILINE)
        assert f"removed sandbox database {name} on {SERVER}\n" in result.stdout
        assert not database_exists(name)
    finally:
        if name:
            drop(name)


def test_a_sigkilled_local_dry_run_leaves_a_running_cluster_that_cleanup_stops_and_removes(
    warehouse_pg: str, short_tmp: Path
) -> None:
    script = short_tmp / "fix.sql"
    script.write_text("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n")
    with (
        locked(warehouse_pg, "orders"),  # the cluster is up and the copy's pg_dump waits on it
        started("dry-run", str(script), "--db", warehouse_pg, "--sandbox", "local", tmp=short_tmp) as process,
    ):

        def cluster_up() -> Path | None:
            found = [path for path in short_tmp.glob(f"{DIRECTORY_PREFIX}*") if postmaster_running(path / "data")]
            return found[0] if found else None

        directory = wait_for("the local cluster", cluster_up, process)
        wait_for("the copy", lambda: dump_waiting(warehouse_pg), process)
        kill(process, warehouse_pg)
    postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    try:
        assert directory.name.startswith(f"{DIRECTORY_PREFIX}") and f"-{process.pid}-" in directory.name
        assert SandboxMarker.parse((directory / MARKER_FILE).read_text().strip()) is not None
        assert postmaster_running(directory / "data"), "the postmaster outlives dbguard (pg_ctl detaches it)"

        result = dbguard("cleanup", "--yes", tmp=short_tmp)
        assert result.returncode == 0, result.stderr
        assert f"removed local sandbox directory {directory}\n" in result.stdout
        assert not directory.exists()
        deadline = time.monotonic() + 30  # pg_ctl returns once the pid file is gone, a moment before the process
        while process_alive(postmaster, datetime.now(UTC)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(postmaster, datetime.now(UTC)), "the sandbox's postmaster was stopped"
    finally:
        if directory.exists():
            subprocess.run(["pg_ctl", "-D", str(directory / "data"), "-m", "immediate", "stop"], check=False,
                           user="postgres" if os.geteuid() == 0 else None)  # fmt: skip


def test_a_sigkilled_backup_leaves_a_partial_file_that_cleanup_removes(warehouse_pg: str, short_tmp: Path) -> None:
    store = short_tmp / "backups"
    with (
        locked(warehouse_pg, "orders"),  # --tables stock: counted, then pg_dump opens its file and waits on orders
        started(
            "backup", "--db", warehouse_pg, "--tables", "stock", "--backup-dir", str(store), tmp=short_tmp
        ) as process,
    ):
        partial = wait_for("the partial file", lambda: next(store.glob(".*.partial-*"), None), process)
        kill(process, warehouse_pg)
    assert re.fullmatch(rf"\..+\.dump\.partial-[0-9]{{8}}T[0-9]{{6}}-{process.pid}-.+", partial.name), partial.name

    again = dbguard("backup", "--db", warehouse_pg, "--tables", "stock", "--backup-dir", str(store), "--no-verify",
                    tmp=short_tmp)  # fmt: skip
    assert again.returncode == 0, again.stderr
    # (the server may hold others' stale sandboxes too: then the command names it as well)
    hint = rf"1 partial backup file\): `dbguard cleanup (--db \S+ )?--backup-dir {re.escape(str(store))}` removes them"
    assert re.search(rf"^note: [0-9]+ stale dbguard leftovers? from crashed runs \(.*{hint}$", again.stderr, re.M)

    result = dbguard("cleanup", "--backup-dir", str(store), "--yes", tmp=short_tmp)
    assert result.returncode == 0, result.stderr
    assert f"removed partial backup file {partial}\n" in result.stdout
    assert not partial.exists()


def test_only_dbguard_s_stale_sandboxes_go(short_tmp: Path) -> None:
    gone = dead_pid()
    stale = marker_of(gone)
    alive = marker_of(os.getpid())
    reused = marker_of(os.getpid(), age=timedelta(days=3))  # made before this process started: not by it
    mismatched = marker_of(gone)
    databases = {
        "stale": (name_for(stale), stale.text()),
        "no marker": (name_for(marker_of(gone)), None),
        "forged": (name_for(marker_of(gone)), 'dbguard-sandbox {"created": "yesterday", "pid": ' + f"{gone}}}"),
        "live": (name_for(alive), alive.text()),
        "pid reused": (name_for(reused), reused.text()),
        "mismatched": (f"{SANDBOX_PREFIX}20200101T000000_{gone}_abcdef", mismatched.text()),
    }
    try:
        for name, comment in databases.values():
            make_database(name, comment)
        result = dbguard("cleanup", "--db", ADMIN_URL, "--older-than", "0s", "--yes", tmp=short_tmp)
        assert result.returncode == 0, result.stderr
        listing = [line for line in result.stdout.splitlines() if not line.startswith("removed")]
        lines = {name: line for line in listing for name, _ in databases.values() if name in line}
        assert lines[databases["no marker"][0]].startswith("not dbguard's")
        assert lines[databases["no marker"][0]].endswith("no dbguard marker: left alone")
        assert lines[databases["forged"][0]].startswith("not dbguard's")
        assert lines[databases["mismatched"][0]].endswith("its marker does not match its name: left alone")
        assert lines[databases["live"][0]].startswith(f"in use         sandbox database {databases['live'][0]}")
        assert lines[databases["live"][0]].endswith(f"its process {os.getpid()} is running ({made(alive)}): left alone")
        assert lines[databases["pid reused"][0]].endswith(f"its process {os.getpid()} is gone ({made(reused)})")
        assert lines[databases["stale"][0]].startswith(f"stale          sandbox database {databases['stale'][0]}")
        assert f"removed sandbox database {databases['stale'][0]} on {SERVER}\n" in result.stdout
        survivors = {kind for kind, (name, _) in databases.items() if database_exists(name)}
        assert survivors == {"no marker", "forged", "live", "mismatched"}
    finally:
        for name, _ in databases.values():
            drop(name)


def test_leftovers_from_another_host_go_by_age_unless_sessions_use_them() -> None:
    old = marker_of(1, host="elsewhere.example", age=timedelta(hours=2))
    young = marker_of(1, host="elsewhere.example", age=timedelta(minutes=5))
    names = [name_for(old), name_for(young)]
    try:
        make_database(names[0], old.text())
        make_database(names[1], young.text())
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:  # pg_stat_activity: one snapshot per transaction
            found = {f.name: f for f in server_sandboxes(conn, SERVER, timedelta(hours=1)) if f.name in names}
            assert found[names[0]].state is State.STALE
            assert "2h 0m old, from host elsewhere.example" in found[names[0]].reason
            assert found[names[1]].state is State.RECENT
            user = psycopg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + names[0])
            try:
                found = {f.name: f for f in server_sandboxes(conn, SERVER, timedelta(hours=1)) if f.name in names}
                assert found[names[0]].state is State.IN_USE and "1 session(s) connected" in found[names[0]].reason
            finally:
                user.close()
    finally:
        for name in names:
            drop(name)


def test_local_directories_need_a_marker_of_this_user_matching_their_name(short_tmp: Path) -> None:
    gone = dead_pid()
    stale = marker_of(gone)
    good = short_tmp / f"{DIRECTORY_PREFIX}{stale.stamp}-{gone}-abcd1234"
    good.mkdir()
    (good / MARKER_FILE).write_text(stale.text() + "\n")
    unmarked = short_tmp / f"{DIRECTORY_PREFIX}{stale.stamp}-{gone}-unmarked"
    unmarked.mkdir()
    linked = short_tmp / f"{DIRECTORY_PREFIX}{stale.stamp}-{gone}-linked"
    linked.mkdir()
    (linked / MARKER_FILE).symlink_to(good / MARKER_FILE)  # a marker borrowed through a link proves nothing
    found = {Path(f.name).name: f for f in local_directories(short_tmp, timedelta(hours=1))}
    assert found[good.name].state is State.STALE
    assert found[unmarked.name].state is State.FOREIGN
    assert found[linked.name].state is State.FOREIGN

    listed = dbguard("cleanup", tmp=short_tmp)  # no terminal, no --yes: it lists, removes nothing, exits 2
    assert listed.returncode == 2
    assert f"stale          local sandbox directory {good}: its process {gone} is gone" in listed.stdout
    assert listed.stderr.startswith("dbguard: error: nothing removed (no terminal to confirm on): pass --yes")
    assert len(listed.stderr.splitlines()) == 1
    assert good.exists()

    removed = dbguard("cleanup", "--yes", tmp=short_tmp)
    assert removed.returncode == 0, removed.stderr
    assert not good.exists() and unmarked.exists() and linked.exists()


@pytest.mark.parametrize("value", ["abc", "1x", "", "-1h", "1.5h", "h"])
def test_a_bad_older_than_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(app, ["cleanup", "--older-than", value])
    assert result.exit_code == 2
    assert result.stderr.startswith("dbguard: error: --older-than") and len(result.stderr.splitlines()) == 1


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("0s") == timedelta(0)


def test_dry_run_mentions_stale_sandboxes(warehouse_pg: str, short_tmp: Path) -> None:
    stale = marker_of(dead_pid())
    name = name_for(stale)
    script = short_tmp / "read.sql"
    script.write_text("SELECT 1;\n")
    try:
        make_database(name, stale.text())
        result = dbguard("dry-run", str(script), "--db", warehouse_pg, tmp=short_tmp)
        # The first line, before the dry-run itself (whose outcome is not this test's business).
        note = (rf"note: [0-9]+ stale dbguard leftovers? from crashed runs \([0-9]+ sandbox databases? on {SERVER}"
                rf"\): `dbguard cleanup --db {re.escape(warehouse_pg)}` removes them\n")  # fmt: skip
        assert re.match(note, result.stderr), result.stderr
    finally:
        drop(name)
