"""`dbguard run` in-process, on real PostgreSQL and SQLite: what makes it roll back (a failing invariant,
a foreign key broken through a partition, data that moved since the dry-run, a trigger writing outside the
backup, a statement timeout, a lock that is not granted), what it retries, a later step that fails after
an earlier one committed, and a second run on the same target.

Each test proves the database unchanged (every table's count and content hash equal to the pre-image) or
fully changed, and that the journal tells what happened and still verifies.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from dbguard.backup.store import BackupStore
from dbguard.cli import app
from dbguard.errors import ConnectionFailure, JournalFailure
from dbguard.inputs import Source
from dbguard.journal import Journal, Transaction, group_runs
from dbguard.pipeline.run import RunOptions, run_script
from dbguard.policy.policy import load_policy
from dbguard.report.run import text as run_text
from dbguard.report.run.model import RunPlan, RunReport
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl
from tests.realschema import load_real_schema
from tests.test_backup import cli
from tests.warehouse import scratch_database

FAST = RunOptions(skip_dry_run=True, quick_verify=True)  # where the dry-run and the restore test are beside the point
POLICY = """
name = "run-tests"
allow_non_transactional = {allow_non_transactional}
[timeouts]
lock_timeout = "{lock_timeout}"
statement_timeout = "{statement_timeout}"
[run]
allow_skip_dry_run = true
allow_quick_verify = true
lock_retries = {lock_retries}
max_row_drift_percent = 10.0
max_row_drift_rows = 5
"""


def sql_invariant(name: str, query: str) -> str:
    """A policy's [[invariants]] entry of kind sql: `query` must return no rows."""
    return f'[[invariants]]\nname = "{name}"\nkind = "sql"\nsql = "{query}"\n'


def content(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and content hash, read in one snapshot."""
    with closing(open_target(DatabaseUrl.parse(url), read_only=True)) as target:
        return {name: (stats.rows, stats.hash) for name, stats in target.table_stats(target.all_tables()).items()}


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Runs:
    """Runs on one target, with their own backup store and journal, and what they said."""

    url: str
    tmp: Path
    said: list[str] = field(default_factory=list)

    @property
    def journal(self) -> Journal:
        return Journal(self.tmp / "journal.jsonl")

    @property
    def store_dir(self) -> Path:
        return self.tmp / "backups"

    def run(self, sql: str, confirm: Callable[[RunPlan], bool] = lambda _plan: True, options: RunOptions = FAST,
            invariants: str = "", lock_timeout: str = "2s", statement_timeout: str = "1min",
            lock_retries: int = 0, allow_non_transactional: bool = False) -> RunReport:  # fmt: skip
        policy_file = self.tmp / "policy.toml"
        policy_file.write_text(POLICY.format(lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                                             lock_retries=lock_retries,
                                             allow_non_transactional=str(allow_non_transactional).lower())
                               + invariants)  # fmt: skip
        script = self.tmp / "script.sql"
        script.write_text(sql)
        return run_script(Source(str(script), sql), DatabaseUrl.parse(self.url), load_policy(policy_file),
                          BackupStore(self.store_dir), self.journal, confirm, options,
                          progress=self.said.append)  # fmt: skip

    def records(self, report: RunReport) -> list[dict[str, Any]]:
        """The journal's records of one run (kind and fields), after checking the whole journal verifies."""
        verification = self.journal.verify()
        assert verification.ok, verification.problems
        (run,) = [run for run in group_runs(verification.records) if run.run_id == report.run_id]
        return [{"kind": str(record.kind), **record.fields} for record in run.records]

    def outcome(self, report: RunReport) -> dict[str, Any]:
        records = self.records(report)
        assert records[0]["kind"] == "intent" and records[-1]["kind"] == "outcome", records
        outcome = records[-1]
        assert outcome["exit_code"] == report.exit_code and outcome["transaction"] == report.transaction.value
        return outcome


@pytest.fixture
def runs(warehouse_pg: str, tmp_path: Path) -> Runs:
    return Runs(warehouse_pg, tmp_path)


def assert_rolled_back_and_proved(report: RunReport) -> None:
    assert report.exit_code == 6 and report.transaction is Transaction.ROLLED_BACK, report
    (step,) = report.steps
    assert step.proof is not None and step.proof.passed, step.proof


def blocking(report: RunReport) -> dict[str, str]:
    return {gate.result.name: gate.result.detail for step in report.steps for gate in step.blocking_gates}


def test_a_run_that_holds_commits_and_journals_it(runs: Runs) -> None:
    report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;")
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert query(runs.url, "SELECT count(*) FROM stock WHERE warehouse_id = 1 AND qty = 11 + product_id % 50") == [
        (40,)]  # fmt: skip
    outcome = runs.outcome(report)
    assert outcome["verdict"] == "COMMITTED" and outcome["backup_id"] == report.backup_id
    assert [s["rows"] for s in outcome["statements"]] == [40]
    # the quick verification (FAST: no restore test) is VERIFIED for run, and says so wherever it is shown
    listed = CliRunner().invoke(app, ["backup", "list", "--backup-dir", str(runs.store_dir)])
    assert "VERIFIED (quick: no restore test)" in listed.output, listed.output


def test_a_failing_invariant_rolls_back_and_proves_it(runs: Runs) -> None:
    before = content(runs.url)
    report = runs.run("UPDATE stock SET qty = 500 WHERE warehouse_id = 2 AND product_id = 7;",
                      invariants=sql_invariant("no stock above 100", "SELECT * FROM stock WHERE qty > 100"))
    assert_rolled_back_and_proved(report)
    assert "no stock above 100" in blocking(report)
    assert content(runs.url) == before
    records = runs.records(report)
    assert [r["result"] for r in records if r["kind"] == "attempt"] == ["rolled back"]
    assert records[-1]["transaction"] == "rolled back" and "no stock above 100" in records[-1]["error"]


def test_a_foreign_key_broken_through_a_partition_is_caught_by_the_gate(tmp_path: Path) -> None:
    """session_replication_role = replica switches the partitions' foreign key triggers off, so the UPDATE
    itself succeeds; with the dry-run skipped, only the run's own gate stands between it and COMMIT."""
    with scratch_database() as url:
        load_real_schema(url)
        before = content(url)
        runs = Runs(url, tmp_path)
        report = runs.run('-- dbguard: allow ban-disabling-integrity reason="test: the gate must catch it"\n'
                          "SET session_replication_role = replica;\n"
                          "UPDATE sales.pay SET cust_id = 999 WHERE id = 401;\n")  # id 401: in sales.pay_2024_s2
        assert_rolled_back_and_proved(report)
        (fk,) = [g.result for g in report.steps[0].blocking_gates]
        assert fk.name == "foreign keys hold" and "sales.pay_2024_s2" in fk.detail, fk
        assert any("999" in map(str, row) for row in fk.sample), fk.sample
        assert content(url) == before
        assert runs.outcome(report)["transaction"] == "rolled back"


def test_data_that_moved_since_the_dry_run_rolls_back(runs: Runs) -> None:
    """The dry-run counts 9 rows; before the run, another session makes all 40 match: drift."""
    sql = "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1 AND qty < 20;"
    expected = query(runs.url, "SELECT count(*) FROM stock WHERE warehouse_id = 1 AND qty < 20")[0][0]

    def move_the_data(plan: RunPlan) -> bool:
        assert [s.expected_rows for s in plan.statements] == [expected]
        execute(runs.url, "UPDATE stock SET qty = 15 WHERE warehouse_id = 1")
        before.update(content(runs.url))
        return True

    before: dict[str, tuple[int, str]] = {}
    report = runs.run(sql, move_the_data, RunOptions(quick_verify=True))
    assert report.dry_run is not None and report.dry_run.verdict == "SAFE"
    assert_rolled_back_and_proved(report)
    assert f"statement 1: {expected} rows in the dry-run, 40 now" in blocking(report)["row drift"]
    assert content(runs.url) == before
    assert "row drift" in runs.outcome(report)["error"]


def test_a_trigger_writing_outside_the_backup_rolls_back(runs: Runs) -> None:
    """A trigger added after the dry-run writes orders, which the backup does not hold: a rollback later
    could not be undone from it, so the run must not commit."""

    def add_a_trigger(plan: RunPlan) -> bool:
        assert plan.backup_tables == ("public.stock",)
        execute(runs.url, """
            CREATE FUNCTION note_stock() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO orders (customer, status) VALUES ('trigger', 'open'); RETURN NULL; END $$;
            CREATE TRIGGER stock_note AFTER UPDATE ON stock FOR EACH ROW EXECUTE FUNCTION note_stock();""")
        before.update(content(runs.url))
        return True

    before: dict[str, tuple[int, str]] = {}
    report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 3 AND product_id < 4;", add_a_trigger,
                      RunOptions(quick_verify=True))  # fmt: skip
    assert_rolled_back_and_proved(report)
    assert blocking(report) == {"backup coverage": "written but not in the backup: public.orders"}
    assert content(runs.url) == before
    assert "backup coverage" in runs.outcome(report)["error"]


def test_a_statement_timeout_rolls_back_without_a_retry(runs: Runs) -> None:
    before = content(runs.url)
    report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\nSELECT pg_sleep(2);\n",
                      statement_timeout="200ms", lock_retries=3)  # fmt: skip
    assert_rolled_back_and_proved(report)
    assert report.steps[0].attempts == 1
    assert "statement 2 (line 2) failed: canceling statement due to statement timeout" in report.reasons[0]
    assert content(runs.url) == before
    assert [r["result"] for r in runs.records(report) if r["kind"] == "attempt"] == ["rolled back"]


class LockHolder:
    """Another session holding ACCESS EXCLUSIVE on a table in an open transaction, until `release`."""

    def __init__(self, url: str, table: str) -> None:
        self.conn = psycopg.connect(url, application_name="nightly import")
        self.conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self.pid = self.conn.info.backend_pid

    def release(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def test_a_lock_not_granted_is_retried_then_given_up(runs: Runs) -> None:
    before = content(runs.url)
    holder = LockHolder(runs.url, "stock")
    try:
        report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;", lock_timeout="300ms",
                          lock_retries=1)  # fmt: skip
    finally:
        holder.close()
    assert report.exit_code == 6 and report.transaction is Transaction.ROLLED_BACK, report.reasons
    assert report.steps[0].attempts == 2 and "gave up after 2 attempts" in report.reasons[0]
    assert any(f"pid {holder.pid} (nightly import" in line for line in runs.said), runs.said
    assert content(runs.url) == before
    records = runs.records(report)
    assert [r["result"] for r in records if r["kind"] == "attempt"] == ["lock timeout", "lock timeout"]
    assert records[-1]["transaction"] == "rolled back" and records[-1]["exit_code"] == 6


def test_a_lock_released_within_the_retries_lets_the_run_commit(runs: Runs) -> None:
    holder = LockHolder(runs.url, "stock")
    timer = threading.Timer(1.0, holder.release)
    timer.start()
    try:
        report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;", lock_timeout="300ms",
                          lock_retries=5)  # fmt: skip
    finally:
        timer.join()
        holder.close()
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert report.steps[0].attempts >= 2
    assert any(f"pid {holder.pid} (nightly import" in line for line in runs.said), runs.said
    assert query(runs.url, "SELECT count(*) FROM stock WHERE warehouse_id = 1 AND qty = 11 + product_id % 50") == [
        (40,)]  # fmt: skip
    results = [r["result"] for r in runs.records(report) if r["kind"] == "attempt"]
    assert results[-1] == "committed" and set(results[:-1]) == {"lock timeout"}, results


class OldSnapshot:
    """Another session in a REPEATABLE READ transaction with its snapshot taken: CREATE INDEX CONCURRENTLY
    waits for it to end after it has made its (still INVALID) index, until `release`."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, application_name="long report")
        self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.conn.execute("SELECT count(*) FROM warehouses")

    def release(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def invalid_indexes(url: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")


class _Watched(list[str]):
    """What a run said, each line also shown to `on_line` as it is said."""

    def __init__(self, on_line: Callable[[str], object]) -> None:
        super().__init__()
        self.on_line = on_line

    def append(self, line: str) -> None:
        super().append(line)
        self.on_line(line)


def test_a_concurrent_index_build_that_times_out_drops_its_invalid_index_before_the_retry(runs: Runs) -> None:
    """The build's wait for older snapshots is a lock wait: lock_timeout cancels it after the INVALID index
    exists. Left there, the retry failed on the name being taken."""
    holder = OldSnapshot(runs.url)
    first_attempt_failed = threading.Event()  # released then, not after a fixed time: a loaded machine is slower
    runs.said = _Watched(lambda line: "it left was dropped" in line and first_attempt_failed.set())

    def release_after_the_first_attempt() -> None:
        first_attempt_failed.wait(timeout=120)
        holder.release()

    releaser = threading.Thread(target=release_after_the_first_attempt)
    releaser.start()
    try:
        report = runs.run("CREATE INDEX CONCURRENTLY stock_qty ON stock (qty);", lock_timeout="300ms",
                          lock_retries=5, allow_non_transactional=True)  # fmt: skip
    finally:
        first_attempt_failed.set()
        releaser.join()
        holder.close()
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert report.steps[0].attempts >= 2
    assert any("the INVALID index public.stock_qty it left was dropped" in line for line in runs.said), runs.said
    assert query(runs.url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'stock_qty'::regclass") == [(True,)]
    results = [r["result"] for r in runs.records(report) if r["kind"] == "attempt"]
    assert results[-1] == "committed" and set(results[:-1]) == {"lock timeout"}, results


def test_a_failed_unique_index_build_leaves_no_invalid_index(runs: Runs) -> None:
    before = content(runs.url)
    report = runs.run("CREATE UNIQUE INDEX CONCURRENTLY stock_qty ON stock (qty);", allow_non_transactional=True)
    assert_rolled_back_and_proved(report)
    assert "could not create unique index" in report.reasons[0], report.reasons
    assert report.reasons[0].endswith("; the INVALID index public.stock_qty it left was dropped")
    assert invalid_indexes(runs.url) == [] and content(runs.url) == before
    assert runs.outcome(report)["transaction"] == "rolled back"


def test_a_failing_second_step_leaves_the_first_committed_and_the_restore_brings_it_back(runs: Runs) -> None:
    before = content(runs.url)
    report = runs.run("UPDATE stock SET qty = qty + 5 WHERE warehouse_id = 1;\n"
                      "-- dbguard: step\n"
                      "UPDATE products SET unit_price = -1 WHERE id = 3;\n"  # breaks a CHECK the parser cannot see
                      "-- dbguard: step\n"
                      "UPDATE orders SET status = 'shipped' WHERE id = 1;\n")  # fmt: skip
    assert report.exit_code == 6 and report.transaction is Transaction.PARTLY_COMMITTED, report.reasons
    assert [step.transaction for step in report.steps] == [Transaction.COMMITTED, Transaction.ROLLED_BACK]
    assert report.steps[1].proof is not None and report.steps[1].proof.passed
    assert "unit_price" in report.reasons[0] or "products_unit_price_check" in report.reasons[0], report.reasons
    after = content(runs.url)
    assert after["public.stock"] != before["public.stock"]
    assert {t: v for t, v in after.items() if t != "public.stock"} == {
        t: v for t, v in before.items() if t != "public.stock"}  # fmt: skip
    assert report.restore_command is not None
    text = run_text.render(report, width=200)
    assert text.startswith("PARTLY COMMITTED: ") and "Step 1 (line 1): committed" in text
    assert "Step 2 (line 3): rolled back" in text and "Step 3" not in text
    assert f"Earlier steps stayed committed. To bring the data back:\n  {report.restore_command}\n" in text
    outcome = runs.outcome(report)
    assert outcome["transaction"] == "partly committed"
    command = shlex.split(report.restore_command)
    assert command[:2] == ["dbguard", "restore"]
    code, output = cli(*command[1:], "--yes", "--backup-dir", str(runs.store_dir))
    assert code == 0, output
    assert content(runs.url) == before


def test_a_second_run_on_the_same_target_refuses_at_once(runs: Runs) -> None:
    refused: list[str] = []

    def start_another(plan: RunPlan) -> bool:
        try:
            Runs(runs.url, runs.tmp / "second").run("UPDATE stock SET qty = qty + 1 WHERE product_id = 2;")
        except ConnectionFailure as error:
            refused.append(str(error))
        return True

    (runs.tmp / "second").mkdir()
    report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 2;", start_another)
    assert report.exit_code == 0
    (message,) = refused
    database = DatabaseUrl.parse(runs.url).database
    assert message.startswith(f"another dbguard run is running on {database} (backend pid "), message
    assert ", dbguard, for " in message and message.endswith(": wait for it to end")
    assert ConnectionFailure("").exit_code == 4


def test_sqlite_a_failing_invariant_rolls_back_and_a_second_run_refuses(warehouse_sqlite: Path,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    url = f"sqlite:///{warehouse_sqlite}"
    runs = Runs(url, tmp_path)
    before = content(url)
    invariant = sql_invariant("qty below 1000", "SELECT * FROM stock WHERE qty >= 1000")
    refused: list[str] = []

    def start_another(plan: RunPlan) -> bool:
        try:
            Runs(url, tmp_path / "second").run("UPDATE stock SET qty = qty + 1 WHERE product_id = 2;")
        except ConnectionFailure as error:
            refused.append(str(error))
        return True

    (tmp_path / "second").mkdir()
    report = runs.run("UPDATE stock SET qty = 1000 WHERE product_id = 1;", start_another, invariants=invariant)
    assert_rolled_back_and_proved(report)
    assert content(url) == before
    assert refused and refused[0].startswith(f"another dbguard run is running on {warehouse_sqlite} (pid ")
    assert runs.outcome(report)["transaction"] == "rolled back"
    assert json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[0])["kind"] == "intent"


def test_sqlite_vacuum_runs_as_its_own_step_after_the_backup(warehouse_sqlite: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{warehouse_sqlite}"
    sql = ("-- dbguard: dialect=sqlite\nDELETE FROM reservations WHERE order_id = 3;\n-- dbguard: allow "
           'ban-non-transactional-statement, ban-vacuum-full reason="reclaim space"\nVACUUM;\n')  # fmt: skip
    report = Runs(url, tmp_path).run(sql, allow_non_transactional=True)
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert [(s.number, s.transactional, s.transaction) for s in report.steps] == [
        (1, True, Transaction.COMMITTED), (2, False, Transaction.COMMITTED)]  # fmt: skip
    assert report.backup_id is not None
    with closing(sqlite3.connect(warehouse_sqlite)) as conn:
        assert conn.execute("SELECT count(*) FROM reservations WHERE order_id = 3").fetchone() == (0,)


def test_a_blocked_run_names_its_findings_and_is_not_journaled(runs: Runs) -> None:
    report = runs.run("DELETE FROM reservations;\n")
    assert report.verdict == "BLOCKED" and report.exit_code == 1 and not report.journaled
    assert any("ban-delete-without-where" in reason for reason in report.reasons), report.reasons
    assert "journal show" not in run_text.render(report)


def test_a_constraint_added_not_valid_then_validated_in_a_later_step_commits(runs: Runs) -> None:
    """The safe pattern the rules recommend: step 1 adds the CHECK NOT VALID (new rows checked at once),
    step 2 fixes the rows and validates it."""
    sql = ("SET lock_timeout = '2s';\nALTER TABLE stock ADD CONSTRAINT stock_qty_small CHECK (qty < 55) NOT VALID;\n"
           "-- dbguard: step\nSET lock_timeout = '2s';\nUPDATE stock SET qty = 54 WHERE qty >= 55;\n"
           "ALTER TABLE stock VALIDATE CONSTRAINT stock_qty_small;\n")  # fmt: skip
    report = runs.run(sql, options=RunOptions())
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    (first_gate,) = [g for g in report.steps[0].gates if g.result.name == "constraints valid"]
    assert first_gate.result.passed and "added by the script" in first_gate.result.detail
    assert query(runs.url, "SELECT convalidated FROM pg_constraint WHERE conname = 'stock_qty_small'") == [(True,)]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_long_statements_give_way_to_the_numbers_in_the_plan(width: int) -> None:
    from dbguard.policy.policy import Timeouts
    from dbguard.report.run.model import PlannedStatement

    long = "UPDATE customers SET email = lower(email) WHERE email <> lower(email) AND id > 100000 AND id < 900000"
    statements = tuple(PlannedStatement(i, i * 10, 1, "UPDATE", long, "SHARE UPDATE EXCLUSIVE", 500000 + i)
                       for i in range(1, 4))  # fmt: skip
    plan = RunPlan("postgresql://u@h/db", statements, 1, (), ("public.customers",), ("public.customers",),
                   Timeouts(), 3, "restore", "SAFE")  # fmt: skip
    text = run_text.render_plan(plan, width=width)
    rows = [line for line in text.splitlines() if "UPDATE customers" in line]
    assert len(rows) == 3 and all(len(line) <= width for line in rows)
    assert [line.split()[0] for line in rows] == ["1", "2", "3"]
    assert [line.split()[-1] for line in rows] == ["500001", "500002", "500003"]


def test_a_journal_that_cannot_be_written_stops_the_run_before_anything(runs: Runs, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the journal's folder would go\n")
    before = content(runs.url)
    with pytest.raises(JournalFailure, match="journal"):
        run_script(Source("x.sql", "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;"),
                   DatabaseUrl.parse(runs.url), load_policy(None), BackupStore(runs.store_dir),
                   Journal(blocked / "journal.jsonl"), lambda _plan: True)  # fmt: skip
    assert content(runs.url) == before and not runs.said
