"""Backups while other sessions write, for real: the backup is one consistent snapshot, and with locks taken
inside the caller's transaction, writers wait and nothing is lost.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from dbguard.backup.postgres import begin_snapshot_transaction, snapshot_backup
from dbguard.backup.store import VERIFIED, BackupStore
from dbguard.backup.take import take_backup
from dbguard.backup.verify import verify_backup
from dbguard.targets import postgres
from dbguard.targets.url import DatabaseUrl
from tests.test_backup import as_images, live_stats, manifest_images, restored

ACCOUNTS = 100_000
OPENING_BALANCE = 100
WRITER_LIMIT_SECONDS = 60  # the writer stops by itself after this, whatever happens to the test
JOIN_SECONDS = 10

# Every account's balance is its opening balance plus what moved in minus what moved out. A transfer
# changes two accounts and records the movement in one transaction, so the invariant spans two tables
# and holds in every snapshot, and only in a snapshot: a dump that read `accounts` and `movements` at
# different moments would break it.
BROKEN_ACCOUNTS = """
SELECT count(*) FROM accounts a
LEFT JOIN (SELECT id, sum(delta) AS delta FROM (
    SELECT to_id AS id, amount AS delta FROM movements
    UNION ALL SELECT from_id, -amount FROM movements) m GROUP BY id) moved USING (id)
WHERE a.balance <> %s + coalesce(moved.delta, 0)"""


def scalar(url: str, query: str, params: tuple[object, ...] = ()) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


class Writer(threading.Thread):
    """A real concurrent writer on its own autocommit connection: transfers, each one transaction."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.commits = 0
        self.started_writing = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        chooser = random.Random(20261127)
        deadline = time.monotonic() + WRITER_LIMIT_SECONDS
        try:
            with psycopg.connect(self.url, autocommit=True, application_name="dbguard-test-writer") as conn:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    source, sink = chooser.sample(range(1, ACCOUNTS + 1), 2)
                    amount = chooser.randint(1, 5)
                    with conn.transaction():
                        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, source))
                        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, sink))
                        conn.execute("INSERT INTO movements (from_id, to_id, amount) VALUES (%s, %s, %s)",
                                     (source, sink, amount))  # fmt: skip
                    self.commits += 1
                    if self.commits >= 20:
                        self.started_writing.set()
        except BaseException as error:  # surfaced by the test, not lost in the thread
            self.errors.append(error)
            self.started_writing.set()


def test_a_backup_taken_during_writes_is_one_consistent_snapshot(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, note text NOT NULL)")
        conn.execute("INSERT INTO accounts SELECT i, %s, md5(i::text) FROM generate_series(1, %s) i",
                     (OPENING_BALANCE, ACCOUNTS))  # fmt: skip
        conn.execute("""CREATE TABLE movements (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            from_id integer NOT NULL REFERENCES accounts, to_id integer NOT NULL REFERENCES accounts,
            amount integer NOT NULL)""")
    store = BackupStore(tmp_path)
    commits_at: dict[str, int] = {}
    writer = Writer(pg_url)

    def progress(message: str) -> None:
        # The snapshot is exported before the hashing starts; the manifest is written after the dump ends.
        if message.startswith("counting and hashing") and "snapshot" not in commits_at:
            commits_at["snapshot"] = writer.commits
        if message.startswith("backup ") and "dumped" not in commits_at:
            commits_at["dumped"] = writer.commits

    writer.start()
    try:
        assert writer.started_writing.wait(JOIN_SECONDS)
        manifest = take_backup(DatabaseUrl.parse(pg_url), store, progress=progress)
    finally:
        writer.stop.set()
        writer.join(JOIN_SECONDS)
    assert not writer.is_alive() and writer.errors == []
    assert commits_at["dumped"] > commits_at["snapshot"], commits_at  # writes landed while the dump ran

    assert manifest.verification.status == VERIFIED, manifest.verification.reason
    backed_up = manifest.tables["public.movements"].rows
    assert 0 < backed_up < writer.commits  # writes before the snapshot are in it, later ones are not
    assert manifest.tables["public.accounts"].rows == ACCOUNTS
    live = live_stats(pg_url)
    assert live["public.movements"].rows == writer.commits
    assert as_images(live) != manifest_images(manifest)

    with restored(store, manifest) as copy:
        assert as_images(live_stats(copy, list(manifest.tables))) == manifest_images(manifest)
        assert scalar(copy, BROKEN_ACCOUNTS, (OPENING_BALANCE,)) == 0
        assert scalar(copy, "SELECT sum(balance) FROM accounts") == OPENING_BALANCE * ACCOUNTS
        assert scalar(copy, "SELECT count(*) FROM movements") == backed_up
    assert scalar(pg_url, BROKEN_ACCOUNTS, (OPENING_BALANCE,)) == 0


def wait_until(what: str, condition: Callable[[], bool], timeout: float = JOIN_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.01)


QTY = "SELECT qty FROM stock WHERE warehouse_id = 1 AND product_id = 1"
WAITING_ON = """
SELECT a.wait_event_type, l.mode, l.relation::regclass::text, pg_blocking_pids(a.pid)
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted WHERE a.pid = %s"""


def test_locked_snapshot_backup_makes_writers_wait_and_loses_nothing(warehouse_pg: str, tmp_path: Path) -> None:
    url = DatabaseUrl.parse(warehouse_pg)
    store = BackupStore(tmp_path)
    original_qty = scalar(warehouse_pg, QTY)
    before = as_images(live_stats(warehouse_pg, ["public.stock"]))
    writer_pid: list[int] = []
    writer_done = threading.Event()
    writer_errors: list[BaseException] = []

    def writer() -> None:
        try:
            with psycopg.connect(warehouse_pg, autocommit=True, application_name="dbguard-test-writer") as conn:
                writer_pid.append(conn.info.backend_pid)
                conn.execute("SET lock_timeout = '30s'")  # bounded, should the test go wrong
                conn.execute("UPDATE stock SET qty = qty + 1000 WHERE warehouse_id = 1 AND product_id = 1")
            writer_done.set()
        except BaseException as error:
            writer_errors.append(error)

    thread = threading.Thread(target=writer, daemon=True)
    with closing(postgres.connect(url)) as target:
        begin_snapshot_transaction(target)
        manifest = snapshot_backup(target, store, ["public.stock"], lock=True)
        owner = target.conn.info.backend_pid
        thread.start()
        try:
            with psycopg.connect(warehouse_pg, autocommit=True) as monitor:

                def waiting() -> list[tuple[object, ...]]:
                    return monitor.execute(WAITING_ON, (writer_pid[0],)).fetchall() if writer_pid else []

                wait_until("the writer waits on a lock", lambda: bool(waiting()) or bool(writer_errors))
                assert writer_errors == []
                ((event, mode, relation, blockers),) = waiting()
                assert (event, mode, relation) == ("Lock", "RowExclusiveLock", "stock")
                assert blockers == [owner]
                assert not writer_done.wait(1.0)  # still waiting a second later

                # The backup is verified while the lock holds, as `run` does before the script runs.
                verified = verify_backup(store, manifest, server_url=url)
                assert verified.verification.status == VERIFIED, verified.verification.reason
                assert not writer_done.is_set()

                # The caller's own change, in the backup's transaction, then COMMIT: the writer goes on.
                target.conn.execute("UPDATE stock SET qty = qty + 5 WHERE warehouse_id = 1 AND product_id = 1")
                target.conn.commit()
        finally:
            if target.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                target.conn.rollback()  # never leave the writer blocked behind a failed assertion
            thread.join(JOIN_SECONDS)
    assert not thread.is_alive() and writer_done.is_set() and writer_errors == []

    assert scalar(warehouse_pg, QTY) == original_qty + 5 + 1000  # both changes are there: nothing was lost
    assert manifest_images(manifest) == before  # the backup is the state at the snapshot...
    with restored(store, manifest) as copy:
        assert scalar(copy, QTY) == original_qty  # ...without the caller's change or the writer's update
        assert as_images(live_stats(copy, ["public.stock"])) == before
