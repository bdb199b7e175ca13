"""Dry-run on a database shaped like real ones (tests/realschema.py): partition trees with foreign keys on
the partitions, an audit trigger, a DO ALSO rule, a view with an INSTEAD rule, dynamic SQL. Every write is
measured, whoever made it, and none can make a dry-run SAFE while it breaks a key or escapes the copy."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dbguard.inputs import Source
from dbguard.pipeline.dryrun import DryRunOptions, dry_run
from dbguard.policy.policy import load_policy
from dbguard.report.dryrun.model import DryRunReport
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl
from tests.realschema import PARTITIONS, load_real_schema

LOCK = "SET lock_timeout = '2s';\n"
WAIVE = '-- dbguard: allow {rules} reason="test of the gate"\n'


@pytest.fixture
def shop(pg_url: str) -> str:
    load_real_schema(pg_url)
    return pg_url


def run(sql: str, url: str, **options: object) -> DryRunReport:
    return dry_run(Source("fix.sql", sql), DatabaseUrl.parse(url), load_policy(None), DryRunOptions(**options))  # type: ignore[arg-type]


def fingerprint(url: str) -> dict[str, str]:
    with open_target(DatabaseUrl.parse(url)) as target:  # type: ignore[attr-defined]
        return {t: s.hash for t, s in target.table_stats(target.all_tables()).items()}


def changed(report: DryRunReport) -> set[str]:
    return {t.table for t in report.tables if t.changed}


def test_a_scoped_copy_follows_partitions_and_their_own_foreign_keys(shop: str) -> None:
    before = fingerprint(shop)
    report = run(LOCK + "UPDATE sales.pay SET amt = 1 WHERE amt = 0;\n", shop)
    assert report.execution.failed is None, report.execution.failed
    assert {"sales.pay", *PARTITIONS, "sales.customer", "sales.store"} <= set(report.tables_copied)
    assert "audit.log" not in report.tables_copied  # still scoped
    # every partition that changed is listed, the one without foreign keys too; the parent is not counted twice
    assert changed(report) == set(PARTITIONS)
    assert "sales.pay" not in {t.table for t in report.tables}
    assert report.verdict == "SAFE", report.blocking_reasons
    assert fingerprint(shop) == before


def test_the_gate_checks_the_partitions_foreign_keys_row_by_row(shop: str) -> None:
    sql = (WAIVE.format(rules="ban-disabling-integrity") + "SET session_replication_role = replica;\n" + LOCK
           + "UPDATE sales.pay SET cust_id = 999 WHERE id = 400;\n")  # fmt: skip
    report = run(sql, shop, full=True)
    (fk,) = [g for g in report.checks if g.result.name == "foreign keys hold"]
    assert fk.blocks and "pay_2024_s1" in fk.result.detail and "999" in fk.result.detail
    (indexes,) = [g for g in report.checks if g.result.name == "amcheck"]
    assert "0 btree" not in indexes.result.detail
    assert report.verdict == "BLOCKED"


def test_writes_by_a_trigger_and_a_rule_are_measured(shop: str) -> None:
    sql = LOCK + "UPDATE sales.customer SET name = name || '!' WHERE id <= 10;\nDELETE FROM sales.store WHERE id = 3;\n"
    report = run(sql, shop)
    deltas = {t.table: t for t in report.tables}
    assert deltas["audit.log"].delta == 10  # the audit trigger, never named by the script
    assert deltas["audit.closed_store"].delta == 1  # the DO ALSO rule
    writes = {a.table: a for run in report.execution.runs for a in run.activity if a.wrote}
    assert writes["audit.log"].inserted == 10 and writes["sales.customer"].updated == 10
    assert not [g for g in report.checks if g.blocks]  # one store of three is a third of the table: a finding


def test_a_delete_through_dynamic_sql_is_measured_and_blocked(shop: str) -> None:
    sql = (WAIVE.format(rules="ban-dynamic-sql") + LOCK
           + "DO $$ BEGIN EXECUTE format('DELETE FROM %s WHERE amt > 0', 'sales.pay_2023'); END $$;\n")  # fmt: skip
    report = run(sql, shop)
    assert "sales.pay_2023" in report.tables_copied
    (pay_2023,) = [t for t in report.tables if t.table == "sales.pay_2023"]
    assert pay_2023.rows_before == 730 and pay_2023.delta < -600
    assert any(f.rule_id == "limit-delete-percent" and "pay_2023" in f.message for f in report.findings)
    assert report.verdict == "BLOCKED"


def test_a_view_with_an_instead_rule_writes_the_partitions_behind_it(shop: str) -> None:
    report = run(LOCK + "DELETE FROM sales.open_pay WHERE id = 2;\n", shop)
    assert changed(report) == {"sales.pay_2023"}
    assert report.verdict == "SAFE", report.blocking_reasons


def test_a_table_still_beyond_the_copy_after_one_widening_blocks(shop: str) -> None:
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("INSERT INTO audit.closed_store VALUES (9, 'Bergen')")
    # Which table it reads depends on data the first copy does not hold: each pass finds a new one.
    probe = ("DO $$ DECLARE m bigint; n bigint; BEGIN EXECUTE 'SELECT count(*) FROM audit.closed' || '_store' INTO m;\n"
             "EXECUTE 'SELECT count(*) FROM audit.' || CASE WHEN m = 0 THEN 'closed_store' ELSE 'log' END INTO n;\n"
             "END $$;\n")  # fmt: skip
    report = run(WAIVE.format(rules="ban-dynamic-sql") + LOCK + probe, shop)
    (gate,) = [g for g in report.checks if g.result.name == "written tables measured"]
    assert gate.blocks and "audit.log" in gate.result.detail and "--full" in gate.result.detail
    assert report.verdict == "BLOCKED"


def test_a_partitioned_table_is_backed_up_and_restored_through_its_partitions(shop: str, tmp_path: Path) -> None:
    from dbguard.backup.restore import restore_tables
    from dbguard.backup.store import VERIFIED, BackupStore
    from dbguard.backup.take import take_backup

    store = BackupStore(tmp_path / "backups")
    url = DatabaseUrl.parse(shop)
    before = fingerprint(shop)
    manifest = take_backup(url, store, ["sales.pay"])
    assert manifest.verification.status == VERIFIED, manifest.verification.reason
    assert set(manifest.tables) == set(PARTITIONS) and manifest.partitions == {"sales.pay": sorted(PARTITIONS)}
    assert sum(image.rows for image in manifest.tables.values()) == 1400
    with psycopg.connect(shop, autocommit=True) as conn:
        conn.execute("DELETE FROM sales.pay WHERE amt > 3")
    restore_tables(store, manifest, url, ["pay"])
    assert fingerprint(shop) == before


def test_a_full_backup_counts_each_partitioned_row_once(shop: str, tmp_path: Path) -> None:
    from dbguard.backup.store import BackupStore
    from dbguard.backup.take import take_backup

    manifest = take_backup(DatabaseUrl.parse(shop), BackupStore(tmp_path / "backups"), verify=False)
    assert "sales.pay" not in manifest.tables and "sales.pay_2024" not in manifest.tables
    assert sum(manifest.tables[p].rows for p in PARTITIONS) == 1400
