"""Fail-open paths found by review, each on the real server or a real SQLite file: a way `run` could commit
what it should have rolled back, report a verdict that is not true, or a dry-run could write the target.

Each test shows the database unchanged (or the verdict right) where the bug left it changed.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from dbguard.backup.store import BackupStore
from dbguard.inputs import Source
from dbguard.journal import Transaction
from dbguard.pipeline.dryrun import dry_run
from dbguard.pipeline.run import RunOptions
from dbguard.policy.policy import load_policy
from dbguard.report.run.model import RunPlan
from dbguard.targets.url import DatabaseUrl
from tests.test_run import FAST, Runs, blocking, content, execute, query

PERMISSIVE = """
name = "review"
allow_non_transactional = true
[thresholds]
max_rows_affected = 1000000
max_delete_percent = 100.0
"""

# A statement trigger on stock that empties another table: TRUNCATE moves no row counter.
TRUNCATING_TRIGGER = """
CREATE TABLE scratchpad (x int);
CREATE FUNCTION empty_scratchpad() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN TRUNCATE scratchpad; RETURN NULL; END $$;
CREATE TRIGGER stock_empties_scratchpad AFTER UPDATE ON stock FOR EACH STATEMENT EXECUTE FUNCTION empty_scratchpad();
"""


@pytest.fixture
def runs(warehouse_pg: str, tmp_path: Path) -> Runs:
    return Runs(warehouse_pg, tmp_path)


def sqlite_rows(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_dry_run_cannot_attach_and_write_the_real_sqlite_file(warehouse_sqlite: Path, tmp_path: Path) -> None:
    """The sandbox is a copy of the file, but ATTACH reaches any path: the script attached the target itself and
    deleted its rows from the dry-run (the dry-run rehearses even a script with blocking findings)."""
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(PERMISSIVE)
    before = sqlite_rows(warehouse_sqlite, "reservations")
    assert before > 0
    sql = f"ATTACH DATABASE '{warehouse_sqlite}' AS real;\nDELETE FROM real.reservations;\n"
    report = dry_run(Source("attach.sql", sql), DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}"),
                     load_policy(policy_file))  # fmt: skip
    assert report.verdict == "BLOCKED"
    assert report.execution.failed is not None and report.execution.failed.index == 1
    assert sqlite_rows(warehouse_sqlite, "reservations") == before


def test_a_table_a_trigger_truncates_is_in_the_backup(runs: Runs) -> None:
    """The dry-run saw the trigger's TRUNCATE empty an empty table: no row counter moved, but it took an
    ACCESS EXCLUSIVE lock, so the plan backs the table up. Rows arrive before the run; the run empties the
    table, as the script does, and the backup holds them (before, the run committed with no backup of them;
    then the coverage check refused every such run)."""
    execute(runs.url, TRUNCATING_TRIGGER)

    def rows_arrive(plan: RunPlan) -> bool:
        assert "public.scratchpad" in plan.backup_tables
        execute(runs.url, "INSERT INTO scratchpad SELECT generate_series(1, 5)")
        return True

    report = runs.run("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1 AND product_id = 1;", rows_arrive,
                      RunOptions(quick_verify=True))  # fmt: skip
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert query(runs.url, "SELECT count(*) FROM scratchpad") == [(0,)]
    manifest = BackupStore(runs.store_dir).load(report.backup_id or "")
    assert manifest.tables["public.scratchpad"].rows == 5


def test_a_truncate_cascade_without_a_dry_run_needs_its_children_in_the_backup(runs: Runs) -> None:
    """TRUNCATE ... CASCADE empties order_lines and reservations, which the script never names: with the
    dry-run skipped they were not in the backup, and coverage saw no counter move."""
    before = content(runs.url)
    sql = (
        '-- dbguard: allow ban-truncate, ban-cascade, require-lock-timeout reason="review test"\n'
        "TRUNCATE orders CASCADE;\n"
    )
    report = runs.run(sql, options=FAST)
    assert report.exit_code == 6 and report.transaction is Transaction.ROLLED_BACK, report.reasons
    assert "public.order_lines" in blocking(report)["backup coverage"]
    assert content(runs.url) == before


def test_data_that_moved_under_a_do_block_is_drift(runs: Runs) -> None:
    """A DO block has no row count: the drift check skipped it, and a DO that changed 9 rows in the dry-run
    committed 40 changes after the data moved. The server's counters give its rows."""
    sql = "DO $$ BEGIN UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1 AND qty < 20; END $$;"
    expected = query(runs.url, "SELECT count(*) FROM stock WHERE warehouse_id = 1 AND qty < 20")[0][0]

    def move_the_data(plan: RunPlan) -> bool:
        execute(runs.url, "UPDATE stock SET qty = 15 WHERE warehouse_id = 1")
        before.update(content(runs.url))
        return True

    before: dict[str, tuple[int, str]] = {}
    report = runs.run(sql, move_the_data, RunOptions(quick_verify=True))
    assert report.dry_run is not None and report.dry_run.verdict == "SAFE", report.reasons
    assert report.exit_code == 6 and report.transaction is Transaction.ROLLED_BACK, report.reasons
    assert f"statement 1: {expected} rows written (server counters) in the dry-run, 40 now" in blocking(report)[
        "row drift"]  # fmt: skip
    assert content(runs.url) == before


def test_writes_to_tables_the_script_creates_need_no_backup(runs: Runs) -> None:
    """Coverage blocked every script that filled a temporary or new table (pg_temp_N.x "not in the backup"),
    while what a backup must hold is the tables that existed before."""
    sql = ("CREATE TEMP TABLE low AS SELECT warehouse_id, product_id FROM stock WHERE qty < 15;\n"
           "CREATE TABLE stock_note (warehouse_id bigint, product_id bigint);\n"
           "INSERT INTO stock_note SELECT * FROM low;\n"
           "UPDATE stock SET qty = qty + 1 FROM low WHERE stock.warehouse_id = low.warehouse_id "
           "AND stock.product_id = low.product_id;\n")  # fmt: skip
    low = query(runs.url, "SELECT count(*) FROM stock WHERE qty < 15")[0][0]
    report = runs.run(sql, options=FAST)
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert query(runs.url, "SELECT count(*) FROM stock_note") == [(low,)]


def test_a_search_path_set_by_the_script_cannot_fool_the_gate(warehouse_pg: str) -> None:
    """An `=` that is always true, found first on a search_path the script sets, would hide a broken key
    from the gate's orphan query: the gate runs with the configured search_path."""
    execute(warehouse_pg, """
        CREATE SCHEMA lenient;
        CREATE FUNCTION lenient.always(bigint, bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
        CREATE OPERATOR lenient.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = lenient.always);
    """)  # fmt: skip
    sql = ('-- dbguard: allow ban-disabling-integrity reason="test"\nSET session_replication_role = replica;\n'
           "SET search_path = lenient, pg_catalog, public;\nSET lock_timeout = '2s';\n"
           "UPDATE stock SET warehouse_id = 999 WHERE warehouse_id = 1 AND product_id = 1;\n")  # fmt: skip
    report = dry_run(Source("x.sql", sql), DatabaseUrl.parse(warehouse_pg), load_policy(None))
    (fk,) = [g for g in report.checks if g.result.name == "foreign keys hold"]
    assert fk.blocks and "999" in fk.result.detail, fk
    assert report.verdict == "BLOCKED"
