"""Backups under real faults: damaged dumps, edited manifests, an unwritable store, a full disk, a pg_dump
killed mid-way, no pg_dump at all. Each ends in a clear error and a non-zero exit, and never in a
manifest that claims VERIFIED.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from dbguard.backup.store import (
    FAILED,
    MISSING,
    SIZE_MISMATCH,
    UNVERIFIED,
    VERIFIED,
    BackupStore,
    Manifest,
    TableImage,
    Verification,
    sha256_of,
)
from tests.test_backup import cli, only_manifest
from tests.test_children import running
from tests.warehouse import ADMIN_URL, scratch_database

ROOT = Path(__file__).parent.parent
BIG_ROWS = 400_000  # about 10 MB of pg_dump custom format, which takes pg_dump most of a second to write
T = TypeVar("T")


@pytest.fixture(scope="module")
def big_pg() -> Iterator[str]:
    """A database with one big table, shared by the tests that only read it."""
    with scratch_database("dbguard_big") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE movements (id bigint PRIMARY KEY, note text NOT NULL)")
            conn.execute(
                "INSERT INTO movements SELECT i, md5(i::text) || md5((-i)::text) FROM generate_series(1, %s) i",
                (BIG_ROWS,),
            )
        yield url


def take_verified(url: str, directory: Path) -> tuple[BackupStore, Manifest]:
    """A VERIFIED backup of `url`, taken by the CLI, in the store `directory`."""
    code, output = cli("backup", "--db", url, "--backup-dir", str(directory))
    assert code == 0, output
    store = BackupStore(directory)
    manifest = only_manifest(store)
    assert manifest.verification.status == VERIFIED
    return store, manifest


@pytest.fixture
def verified(warehouse_pg: str, tmp_path: Path) -> tuple[BackupStore, Manifest]:
    return take_verified(warehouse_pg, tmp_path)


def assert_nothing_verified(directory: Path) -> None:
    for entry in BackupStore(directory).list():
        assert isinstance(entry, tuple) or entry.verification.status != VERIFIED, entry


def assert_no_backup_written(directory: Path) -> None:
    """No manifest, no dump, no temporary file: the store holds nothing (it may not exist at all)."""
    left = sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    assert left == [], left


def flip_one_byte(dump: Path) -> None:
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))


def truncate_to_half(dump: Path) -> None:
    with dump.open("r+b") as handle:
        handle.truncate(dump.stat().st_size // 2)


def empty(dump: Path) -> None:
    dump.write_bytes(b"")


# damage: (how, the reason verify gives, the status `backup list` shows from presence and size alone)
DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "one byte flipped": (flip_one_byte, "sha256 does not match", FAILED),
    "truncated": (truncate_to_half, "truncated or changed", SIZE_MISMATCH),
    "missing": (Path.unlink, "is missing", MISSING),
    "zero bytes": (empty, "is 0 bytes", SIZE_MISMATCH),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_dump_fails_verification(verified: tuple[BackupStore, Manifest], damage: str) -> None:
    store, manifest = verified
    harm, reason, listed = DAMAGE[damage]
    harm(store.directory / manifest.dump_file)
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5, output
    assert f"backup {manifest.id} FAILED verification" in output and reason in output
    after = store.load(manifest.id)
    assert after.verification.status == FAILED
    assert reason in (after.verification.reason or "")
    if damage == "one byte flipped":
        assert "sha256" in (after.verification.reason or "")
    code, listing = cli("backup", "list", "--backup-dir", str(store.directory))
    assert code == 0 and f"{manifest.id}  {listed}" in listing, listing
    assert_nothing_verified(store.directory)


@pytest.mark.parametrize("damage", [d for d, (_, _, listed) in DAMAGE.items() if listed != FAILED])
def test_list_shows_a_missing_or_resized_dump_without_verifying(
    verified: tuple[BackupStore, Manifest], damage: str
) -> None:
    """`list` checks presence and size (cheap): a deleted or emptied dump is never listed VERIFIED, though
    its manifest still says so."""
    store, manifest = verified
    harm, reason, listed = DAMAGE[damage]
    harm(store.directory / manifest.dump_file)
    code, listing = cli("backup", "list", "--backup-dir", str(store.directory))
    assert code == 0, listing
    (line,) = [line for line in listing.splitlines() if line.startswith(manifest.id)]
    assert f"{manifest.id}  {listed}" in line and reason in line and VERIFIED not in line, line
    assert store.load(manifest.id).verification.status == VERIFIED  # list only reads


def test_list_trusts_size_and_verify_checks_content(verified: tuple[BackupStore, Manifest]) -> None:
    """A changed byte keeps the size: `list` cannot see it (it reads no dump), `verify` does."""
    store, manifest = verified
    flip_one_byte(store.directory / manifest.dump_file)
    assert f"{manifest.id}  VERIFIED" in cli("backup", "list", "--backup-dir", str(store.directory))[1]
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5 and "sha256 does not match" in output, output
    assert f"{manifest.id}  FAILED" in cli("backup", "list", "--backup-dir", str(store.directory))[1]


def test_a_dump_that_does_not_restore_fails_even_when_its_checksum_matches(
    verified: tuple[BackupStore, Manifest],
) -> None:
    """As if the dump had been cut short before it was hashed: only the restore can tell."""
    store, manifest = verified
    dump = store.directory / manifest.dump_file
    truncate_to_half(dump)
    store.save(replace(manifest, dump_sha256=sha256_of(dump), dump_bytes=dump.stat().st_size,
                       verification=Verification(UNVERIFIED)))  # fmt: skip
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5, output
    after = store.load(manifest.id)
    assert after.verification.status == FAILED
    assert "pg_restore --list cannot read" in output or "does not restore" in output, output
    assert_nothing_verified(store.directory)


def test_a_restore_that_differs_from_the_manifest_fails(verified: tuple[BackupStore, Manifest]) -> None:
    """As if the counts had been taken outside the dump's snapshot: the restored rows disagree."""
    store, manifest = verified
    stock = manifest.tables["public.stock"]
    wrong = {**manifest.tables, "public.stock": TableImage(stock.rows + 1, stock.hash)}
    store.save(replace(manifest, tables=wrong, verification=Verification(UNVERIFIED)))
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5, output
    reason = store.load(manifest.id).verification.reason or ""
    assert "the restored data differs" in reason and "public.stock has 120 rows" in reason
    assert_nothing_verified(store.directory)


def test_an_edited_manifest_is_detected_by_its_own_hash(verified: tuple[BackupStore, Manifest]) -> None:
    store, manifest = verified
    path = store.manifest_path(manifest.id)
    body = json.loads(path.read_text())
    body["tables"]["public.stock"]["rows"] += 1
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")

    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5, output
    assert "was edited after it was written" in output
    (entry,) = store.list()
    assert isinstance(entry, tuple) and entry[0] == manifest.id  # never loaded, so never trusted as VERIFIED
    code, listing = cli("backup", "list", "--backup-dir", str(store.directory))
    assert code == 0
    assert f"{manifest.id}  UNREADABLE" in listing and "edited" in listing


@pytest.mark.parametrize(
    "spoil",
    [lambda text: "null\n", lambda text: text[: len(text) // 2], lambda text: ""],
    ids=["json-but-not-an-object", "truncated", "empty"],
)
def test_a_manifest_that_is_not_a_manifest_is_unreadable(
    verified: tuple[BackupStore, Manifest], spoil: Callable[[str], str]
) -> None:
    store, manifest = verified
    path = store.manifest_path(manifest.id)
    path.write_text(spoil(path.read_text()))
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 5, output
    assert "is not a dbguard manifest" in output
    code, listing = cli("backup", "list", "--backup-dir", str(store.directory))
    assert code == 0, listing
    assert f"{manifest.id}  UNREADABLE" in listing
    assert_nothing_verified(store.directory)


def test_an_unknown_backup_id_is_a_usage_error(tmp_path: Path) -> None:
    code, output = cli("backup", "verify", "2026-01-01T00-00-00.000000Z-nothing", "--backup-dir", str(tmp_path))
    assert code == 2, output
    assert "no backup 2026-01-01T00-00-00.000000Z-nothing" in output
    code, output = cli("backup", "verify", "../../etc/passwd", "--backup-dir", str(tmp_path))
    assert code == 2, output
    assert "is not a backup id" in output


def test_an_unwritable_backup_directory_fails_before_anything_is_dumped(warehouse_pg: str, tmp_path: Path) -> None:
    # The tests run as root, and root ignores permission bits (chmod 0o500 would not stop it), and a
    # read-only mount needs privileges a test should not use. A regular file where a directory is
    # expected cannot be written into by anyone, root included: mkdir fails with ENOTDIR.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, output = cli("backup", "--db", warehouse_pg, "--backup-dir", str(blocker / "backups"))
    assert code == 5, output
    assert "is not writable" in output
    assert blocker.read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_missing_pg_dump_is_a_tool_failure(warehouse_pg: str, tmp_path: Path) -> None:
    no_tools = tmp_path / "empty-bin"
    no_tools.mkdir()
    store_dir = tmp_path / "backups"
    code, output = cli("backup", "--db", warehouse_pg, "--pg-bin", str(no_tools), "--backup-dir", str(store_dir))
    assert code == 4, output
    assert f"pg_dump not found in {no_tools}" in output
    assert_no_backup_written(store_dir)


def test_a_sqlite_database_held_by_a_writer_is_a_backup_failure(warehouse_sqlite: Path, tmp_path: Path) -> None:
    """The copy is made, but the write lock that proves no writer slipped in cannot be had (SQLite's busy
    timeout, 5 s, runs out): a clear error and exit 5, not a traceback."""
    store_dir = tmp_path / "backups"
    url = f"sqlite:///{warehouse_sqlite}"
    holder = sqlite3.connect(warehouse_sqlite, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE stock SET qty = qty + 1")
        code, output = cli("backup", "--db", url, "--backup-dir", str(store_dir))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 5, output
    assert "database is locked" in output and "another connection is writing" in output
    assert_no_backup_written(store_dir)
    code, output = cli("backup", "--db", url, "--backup-dir", str(store_dir))  # once the writer is gone
    assert code == 0 and "VERIFIED" in output, output


def test_a_full_disk_leaves_no_backup_behind(big_pg: str, tmp_path: Path) -> None:
    """The real CLI in a process whose files may not grow past 512 KiB (`ulimit -f`, inherited by pg_dump)."""
    store_dir = tmp_path / "backups"
    blocks = 1024  # 512-byte blocks: 512 KiB, far below the dump of BIG_ROWS rows
    script = f'ulimit -f {blocks}; exec "$0" -m dbguard backup --db "$1" --backup-dir "$2"'
    result = subprocess.run(["bash", "-c", script, sys.executable, big_pg, str(store_dir)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "pg_dump was killed by SIGXFSZ" in result.stderr and "no backup was written" in result.stderr
    assert_no_backup_written(store_dir)
    assert cli("backup", "list", "--backup-dir", str(store_dir)) == (0, f"no backups in {store_dir}\n")


@contextlib.contextmanager
def small_filesystem(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes (a multiple of the page size) mounted at `where`, unmounted afterwards."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_while_the_manifest_is_written_removes_the_dump(warehouse_pg: str, tmp_path: Path) -> None:
    """A store with room for the dump and not one page more: the dump is written, the manifest cannot be,
    and the dump goes too, for a dump without its manifest is no backup."""
    assert cli("backup", "--db", warehouse_pg, "--no-verify", "--backup-dir", str(tmp_path / "measure"))[0] == 0
    dump_bytes = only_manifest(BackupStore(tmp_path / "measure")).dump_bytes
    page = os.sysconf("SC_PAGE_SIZE")
    with small_filesystem(tmp_path / "small", -(-dump_bytes // page) * page) as small:
        store_dir = small / "backups"
        code, output = cli("backup", "--db", warehouse_pg, "--no-verify", "--backup-dir", str(store_dir))
        assert code == 5, output
        assert "cannot write" in output and ".json: No space left on device" in output, output
        assert_no_backup_written(store_dir)


def test_a_full_disk_fails_a_sqlite_backup_cleanly(warehouse_sqlite: Path, tmp_path: Path) -> None:
    """SQLite's backup API writes the copy from inside dbguard itself: the write fails with EFBIG
    (Python ignores SIGXFSZ), and the copy is abandoned."""
    store_dir = tmp_path / "backups"
    assert warehouse_sqlite.stat().st_size > 16 * 512
    script = 'ulimit -f 16; exec "$0" -m dbguard backup --db "$1" --backup-dir "$2"'
    result = subprocess.run(["bash", "-c", script, sys.executable, f"sqlite:///{warehouse_sqlite}", str(store_dir)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "cannot copy the database" in result.stderr
    assert_no_backup_written(store_dir)


def tool_child(parent: int, program: str, option: str) -> int | None:
    """The pid of `parent`'s child running `program` with `option` (not a short-lived `--version`)."""
    for children in Path(f"/proc/{parent}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if Path(argv[0].decode()).name == program and any(a.startswith(option.encode()) for a in argv):
                return int(pid)
    return None


def dumping_child(parent: int) -> int | None:
    return tool_child(parent, "pg_dump", "--snapshot=")


@contextlib.contextmanager
def dbguard_running(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m dbguard ARGS` as a process of its own; killed and reaped at the end if still running."""
    process = subprocess.Popen([sys.executable, "-m", "dbguard", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stderr_of(process: subprocess.Popen[bytes], timeout: float = 120) -> str:
    """What the process wrote to stderr until it exited."""
    _, stderr = process.communicate(timeout=timeout)
    return stderr.decode()


def error_lines(stderr: str) -> list[str]:
    """stderr without dbguard's notes (such as leftovers of crashed runs that it found on the server)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("note: ")]


def wait_for(what: str, probe: Callable[[], T | None], process: subprocess.Popen[bytes] | None,
             timeout: float = 60) -> T:  # fmt: skip
    """Poll `probe` until it returns something; fail when `process` (if any) exits first, or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        if process is not None and process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"dbguard exited ({process.returncode}) before {what}: {stderr.decode()}")
        time.sleep(0.002)
    pytest.fail(f"timed out waiting for {what}")


def test_pg_dump_killed_mid_way_leaves_no_backup_behind(big_pg: str, tmp_path: Path) -> None:
    store_dir = tmp_path / "backups"
    with dbguard_running("backup", "--db", big_pg, "--backup-dir", str(store_dir)) as process:
        pg_dump = wait_for("pg_dump started", lambda: dumping_child(process.pid), process)

        def partial_under_way() -> Path | None:
            # Mid-way: the data is being written (not merely the header), and far from all of it.
            for path in store_dir.glob(".*.partial-*"):
                try:
                    if path.stat().st_size >= 256 * 1024:
                        return path
                except FileNotFoundError:
                    pass
            return None

        partial = wait_for("pg_dump writing data", partial_under_way, process)
        os.kill(pg_dump, signal.SIGKILL)
        stderr = stderr_of(process)
    assert process.returncode == 5, stderr
    assert "pg_dump was killed by SIGKILL" in stderr
    assert not partial.exists()
    assert_no_backup_written(store_dir)


def test_pg_restore_killed_during_verification_does_not_blame_the_dump(big_pg: str, tmp_path: Path) -> None:
    """The verification could not finish: that says nothing about the backup, which stays UNVERIFIED
    (never FAILED, never VERIFIED), with exit 5 and the reason."""
    store_dir = tmp_path / "backups"
    assert cli("backup", "--db", big_pg, "--no-verify", "--backup-dir", str(store_dir))[0] == 0
    manifest = only_manifest(BackupStore(store_dir))
    with dbguard_running("backup", "verify", manifest.id, "--backup-dir", str(store_dir)) as process:
        pg_restore = wait_for("pg_restore restoring", lambda: tool_child(process.pid, "pg_restore", "--use-list="),
                              process)  # fmt: skip
        os.kill(pg_restore, signal.SIGKILL)
        stderr = stderr_of(process)
    assert process.returncode == 5, stderr
    assert error_lines(stderr) == [
        f"dbguard: error: verification of backup {manifest.id} could not finish: pg_restore was killed by SIGKILL; "
        f"the backup is still UNVERIFIED: run `dbguard backup verify {manifest.id}` again"
    ]
    assert BackupStore(store_dir).load(manifest.id).verification == manifest.verification
    assert f"{manifest.id}  UNVERIFIED" in cli("backup", "list", "--backup-dir", str(store_dir))[1]


def test_a_sandbox_session_terminated_during_verification_does_not_blame_the_dump(big_pg: str, tmp_path: Path) -> None:
    """dbguard's session in the verification sandbox ends (pg_terminate_backend) while it counts and hashes
    the restored rows: exit 5, the backup stays UNVERIFIED, and the sandbox is still removed."""
    store_dir = tmp_path / "backups"
    assert cli("backup", "--db", big_pg, "--no-verify", "--backup-dir", str(store_dir))[0] == 0
    manifest = only_manifest(BackupStore(store_dir))
    with dbguard_running("backup", "verify", manifest.id, "--backup-dir", str(store_dir)) as process:

        def hashing_in_its_sandbox() -> tuple[int, str] | None:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pid, datname FROM pg_stat_activity WHERE datname LIKE %s AND application_name = "
                    "'dbguard' AND state = 'active' AND query LIKE '%%hashtextextended%%' "
                    "AND backend_type = 'client backend'",  # its session, not the hash's parallel workers
                    (f"dbguard\\_sandbox\\_%\\_{process.pid}\\_%",),
                ).fetchone()
            return (int(row[0]), str(row[1])) if row else None

        session, sandbox = wait_for("the restored rows being hashed", hashing_in_its_sandbox, process)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (session,))
        stderr = stderr_of(process)
    assert process.returncode == 5, stderr
    (line,) = error_lines(stderr)
    assert line.startswith(f"dbguard: error: verification of backup {manifest.id} could not finish: "), line
    assert "terminating connection due to administrator command" in line and "still UNVERIFIED" in line, line
    assert BackupStore(store_dir).load(manifest.id).verification == manifest.verification
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (sandbox,)).fetchone() is None


def test_dbguard_killed_mid_way_leaves_nothing_that_looks_like_a_backup(big_pg: str, tmp_path: Path) -> None:
    """SIGKILL of dbguard itself: it cannot clean up, but its pg_dump dies with it (the kernel's
    parent-death signal), and what it leaves is a temporary file by name, with no manifest, so nothing
    claims to be a backup; the store goes on working."""
    store_dir = tmp_path / "backups"
    pg_dump: int | None = None
    try:
        with dbguard_running("backup", "--db", big_pg, "--backup-dir", str(store_dir)) as process:
            pg_dump = wait_for("pg_dump started", lambda: dumping_child(process.pid), process)
            wait_for("pg_dump writing data", lambda: next(store_dir.glob(".*.partial-*"), None), process)
            process.kill()
            process.wait()
        orphan = pg_dump
        assert wait_for("pg_dump to die with dbguard", lambda: None if running(orphan) else True, None)
    finally:
        if pg_dump is not None:  # were it orphaned, it would go on writing the temporary file
            with contextlib.suppress(ProcessLookupError):
                os.kill(pg_dump, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    left = sorted(p.name for p in store_dir.iterdir())
    assert left and all(name.startswith(".") and ".partial-" in name for name in left), left
    assert BackupStore(store_dir).list() == []
    assert cli("backup", "list", "--backup-dir", str(store_dir)) == (0, f"no backups in {store_dir}\n")
