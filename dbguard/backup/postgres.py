"""PostgreSQL backups from one exported snapshot: the dump, the counts and the hashes describe exactly one
state of the database.

`snapshot_backup` works inside the CALLER's transaction. `run` opens its transaction, calls it, and
then runs the script in that same transaction: no commit can fall between the backup and the script.
With `lock=True` the tables are locked in EXCLUSIVE mode first (readers go on, writers wait), before
the snapshot is taken: in REPEATABLE READ the snapshot is fixed by the first query, and LOCK TABLE is
not a query, so the lock is in place when the snapshot is fixed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from dbguard import __version__
from dbguard.backup.store import (
    BackupStore,
    Manifest,
    TableImage,
    kept_only_with_manifest,
    new_backup_id,
    sha256_of,
    staged,
    utc_now,
)
from dbguard.errors import BackupFailure
from dbguard.sandbox import children
from dbguard.sandbox.copy import quote_pattern
from dbguard.sandbox.pgtools import binary_major, check_dump_compatible, find_binary, tool_error
from dbguard.targets.postgres import PostgresTarget, error_text

Progress = Callable[[str], None]
DUMP_SUFFIX = ".dump"
# gzip level 1, not pg_dump's default 6: under `run` the written tables stay locked for writers while the
# dump runs, and level 1 halves its time for a dump about 10% larger.
DEFAULT_COMPRESSION = 1


class DumpLockTimeout(BackupFailure):
    """pg_dump gave up waiting for a table's lock (--lock-wait-timeout): another session holds one; worth
    another attempt later. No backup was written."""


def begin_snapshot_transaction(target: PostgresTarget) -> None:
    """Make the target's next transaction REPEATABLE READ (call before its first query)."""
    if target.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        target.conn.rollback()
    target.conn.autocommit = False
    target.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ


def snapshot_backup(
    target: PostgresTarget,
    store: BackupStore,
    tables: Sequence[str] | None,
    *,
    lock: bool = False,
    label: str | None = None,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
    compress: int = DEFAULT_COMPRESSION,
    lock_wait_timeout: str | None = None,
) -> Manifest:
    """Dump `tables` (canonical "schema.table" names; None: the whole database) from one snapshot taken in
    the caller's open REPEATABLE READ transaction, with their row counts and content hashes from that
    same snapshot. Nothing is committed or rolled back here. The manifest is written UNVERIFIED.

    `lock_wait_timeout` (a PostgreSQL duration): how long pg_dump waits for the ACCESS SHARE locks it takes
    on every table it dumps or describes; past it, DumpLockTimeout. Under `run`, the written tables stay
    locked for writers while pg_dump waits, so it must not wait without end for an unrelated session.

    Raises BackupFailure when any step fails, the loss of the caller's session included (even once pg_dump
    has its snapshot: the caller cannot go on in that transaction); nothing is left in the store then."""
    say = progress or (lambda _message: None)
    conn = target.conn
    if conn.isolation_level != psycopg.IsolationLevel.REPEATABLE_READ or conn.autocommit:
        raise BackupFailure("a snapshot backup needs a REPEATABLE READ transaction (begin_snapshot_transaction)")
    pg_dump = find_binary("pg_dump", target.server_major, pg_bin)
    check_dump_compatible(pg_dump, target.server_major)
    tools = {"dbguard": __version__, "pg_dump": _version(pg_dump), "pg_dump_compression": f"gzip {compress}"}
    store.ensure_writable()
    with session_lost_is_backup_failure(target):
        if lock and tables:
            say(f"locking {len(tables)} table(s) in EXCLUSIVE mode: readers go on, writers wait")
            names = sql.SQL(", ").join(sql.Identifier(*t.split(".", 1)) for t in tables)
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        scope = "tables" if tables else "full"
        # Rows live in leaf partitions: counting those counts each row once, and dumping a partitioned
        # table's data means dumping its partitions' data.
        named = list(tables) if tables else target.all_tables()
        every = target.leaf_tables(named)
        partitions = target.partition_leaves(named)
        locale = _locale(target)
        chosen = set(every)
        others = [t for t in target.leaf_tables(target.all_tables()) if t not in chosen] if tables else []
        default_label = ",".join(t.split(".")[-1] for t in named) if tables else target.url.database
        backup_id = new_backup_id(label or default_label)
        final = store.dump_path(backup_id, DUMP_SUFFIX)
        with kept_only_with_manifest(final):
            with staged(final) as partial:
                # pg_dump reads the exported snapshot on its own connection while this one counts and hashes
                # in the same snapshot: the two overlap instead of adding up.
                with _dumping(pg_dump, target, snapshot, others, partial, compress, lock_wait_timeout) as process:
                    say(f"counting and hashing {len(every)} table(s) in snapshot {snapshot}, pg_dump running")
                    stats = target.table_stats(every)
                    _wait_for_dump(process, partial, say)
                size = partial.stat().st_size
                if size == 0:
                    raise BackupFailure("pg_dump wrote an empty file")
                digest = sha256_of(partial)
                # The snapshot and, under `run`, the locks live only as long as this transaction: the dump
                # is a backup of the state the caller goes on in only if the session survived it.
                conn.execute("SELECT 1")
            manifest = Manifest(
                id=backup_id,
                created_at=utc_now(),
                dialect="postgres",
                target=str(target.url),
                server_version=target.server_version,
                tools=tools,
                locale=locale,
                tables={t: TableImage(s.rows, s.hash) for t, s in sorted(stats.items())},
                dump_file=final.name,
                dump_sha256=digest,
                dump_bytes=size,
                snapshot=snapshot,
                scope=scope,
                partitions=partitions,
            )
            store.save(manifest)
    say(f"backup {backup_id}: {size / 1024 / 1024:.1f} MiB, {len(stats)} table(s)")
    return manifest


@contextmanager
def session_lost_is_backup_failure(target: PostgresTarget) -> Iterator[None]:
    """A query of the backup that fails (above all a session terminated or cut off mid-way) is a
    BackupFailure, not a bug: the backup was not taken."""
    try:
        yield
    except psycopg.Error as error:
        if target.conn.broken or target.conn.closed:
            raise BackupFailure(f"the connection to {target.url.database} was lost during the backup "
                                f"({error_text(error)}); no backup was written") from None  # fmt: skip
        raise BackupFailure(f"the backup's query failed: {error_text(error)}; no backup was written") from None


@contextmanager
def _dumping(pg_dump: Path, target: PostgresTarget, snapshot: str, others: Sequence[str], out: Path,
             compress: int, lock_wait_timeout: str | None) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """pg_dump of the snapshot into `out`, started; stopped if the block ends before `_wait_for_dump` has
    seen it finish. `others`: the tables whose rows are left out (a scoped backup keeps the whole schema:
    the types, schemas and sequences its tables need to be restored)."""
    args: list[str | Path] = [pg_dump, "--format=custom", f"--compress={compress}", f"--snapshot={snapshot}",
                              f"--file={out}"]  # fmt: skip
    if lock_wait_timeout:
        args.append(f"--lock-wait-timeout={lock_wait_timeout}")
    for other in others:
        schema, _, name = other.partition(".")
        args.append(f"--exclude-table-data={quote_pattern(schema, name)}")
    with children.started(args, env=target.url.libpq_env()) as process:
        yield process


def _wait_for_dump(process: subprocess.Popen[bytes], out: Path, say: Progress) -> None:
    """Wait for pg_dump to end (its stderr is only warnings and errors: it does not fill the pipe meanwhile);
    BackupFailure unless it succeeded."""
    while True:  # communicate() drains stderr as it goes, so a chatty pg_dump never blocks on a full pipe
        try:
            _, errors = process.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if out.exists():
                say(f"pg_dump: {out.stat().st_size / 1024 / 1024:.1f} MiB written")
    signal_name = children.killed_by(process.returncode)
    if signal_name is not None:
        why = " (the file size limit was reached)" if signal_name == "SIGXFSZ" else ""
        raise BackupFailure(f"pg_dump was killed by {signal_name}{why}; no backup was written")
    if process.returncode != 0:
        text = errors.decode(errors="replace") if errors else ""
        detail = tool_error(text, "pg_dump")
        # --lock-wait-timeout runs pg_dump's LOCK TABLE under a statement_timeout
        if "LOCK TABLE" in text and ("statement timeout" in text or "lock timeout" in text):
            raise DumpLockTimeout(f"pg_dump waited longer than the lock timeout for a table's lock: {detail}")
        raise BackupFailure(f"pg_dump failed: {detail}; no backup was written")


def _locale(target: PostgresTarget) -> dict[str, str]:
    """What a verification sandbox needs to hold this data faithfully."""
    row = target.conn.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    return {"encoding": str(row[0]), "lc_collate": str(row[1]), "lc_ctype": str(row[2])} if row else {}


def _version(binary: Path) -> str:
    result = children.run([binary, "--version"], timeout=30)
    return result.stdout.strip() or f"major {binary_major(binary)}"
