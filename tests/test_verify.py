"""`dbguard verify` on real PostgreSQL (the real-schema database: partitions with foreign keys on them,
domains, triggers, non-ASCII names) and real SQLite files, with real violations put in behind the
server's back: exit codes, what the reports name, the Prometheus exposition, the time budget, sampling,
backup freshness, and a target left exactly as it was."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dbguard.backup.store import BackupStore
from dbguard.backup.take import take_backup
from dbguard.cli import app
from dbguard.monitor.backups import backup_freshness
from dbguard.targets.url import DatabaseUrl
from tests.realschema import load_real_schema
from tests.warehouse import load_warehouse, make_sqlite_warehouse, scratch_database

runner = CliRunner()
SECRET = "Sup3rSecretPW"


def verify(*args: str) -> tuple[int, str, str]:
    """dbguard verify in-process: exit code, stdout, stderr."""
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def verify_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = verify(*args, "--format", "json")
    assert out, err
    return code, json.loads(out)


def checks(report: dict[str, Any], status: str | None = None) -> dict[str, dict[str, Any]]:
    """The report's checks by subject, those with `status` only when given."""
    return {c["subject"]: c for c in report["checks"] if status is None or c["status"] == status}


@pytest.fixture
def real_pg(tmp_path: Path) -> Iterator[str]:
    with scratch_database() as url:
        load_real_schema(url)
        yield url


def superuser(url: str, *statements: str) -> None:
    """Run statements as the superuser, each in its own autocommit step (the test database only)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def fingerprint(url: str) -> list[tuple[Any, ...]]:
    """Every user table's row count and content hash, and the catalog's constraints and indexes."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1")]  # fmt: skip
        rows: list[tuple[Any, ...]] = [
            (t, *conn.execute(f"SELECT count(*), sum(hashtext(x::text)) FROM {t} AS x").fetchone())  # type: ignore[misc]
            for t in tables
        ]
        rows += conn.execute("SELECT conname, convalidated FROM pg_constraint ORDER BY 1").fetchall()
        rows += conn.execute("SELECT indexrelid::regclass::text, indisvalid FROM pg_index ORDER BY 1").fetchall()
    return rows


# -- PostgreSQL --


def test_clean_real_schema_passes_and_is_left_unchanged(real_pg: str, tmp_path: Path) -> None:
    before = fingerprint(real_pg)
    code, report = verify_json("--db", real_pg, "--backup-dir", str(tmp_path / "store"))
    assert code == 0, report
    assert report["verdict"] == "OK" and report["exit_code"] == 0
    assert set(report) == {"schema_version", "tool", "target", "dialect", "server_version", "policy", "started_at",
                           "duration_seconds", "sample_percent", "time_budget_seconds", "verdict", "exit_code",
                           "summary", "checks", "backup"}  # fmt: skip
    assert set(report["summary"]) == {"checks", "pass", "fail", "skipped", "incomplete"}
    assert all(set(c) == {"check", "subject", "table", "status", "detail", "violations", "sampled_percent",
                          "seconds", "sample"} for c in report["checks"])  # fmt: skip
    assert report["backup"]["newest_verified_id"] is None and report["backup"]["stale"] is None
    by_subject = checks(report)
    # the foreign keys declared on the partitions, each checked once, and the one on the non-ASCII table
    assert {"sales.pay_2024_s1.pay_2024_s1_cust_id_fkey", "sales.pay_2024_s2.pay_2024_s2_cust_id_fkey",
            "sales.pay_2024_s2.pay_2024_s2_store_id_fkey", "Kundendienst.Fälle.Fälle_Kunde_fkey"} <= set(by_subject)
    assert by_subject["sales.customer.since"]["check"] == "domain check"
    assert by_subject["sales.customer.since"]["status"] == "pass"
    assert by_subject["btree indexes"]["status"] == "skipped"  # amcheck is not installed: said, not passed
    assert "not installed" in by_subject["btree indexes"]["detail"]
    assert report["summary"]["fail"] == 0 and report["summary"]["incomplete"] == 0
    assert fingerprint(real_pg) == before


def test_injected_violations_are_named_and_exit_1(real_pg: str) -> None:
    superuser(
        real_pg,
        # an orphan in a partition: the foreign-key triggers do not fire for a replica session
        "SET session_replication_role = replica; "
        "INSERT INTO sales.pay_2024_s2 VALUES (90001, 4242, 2, 1, '2024-05-01')",
        # a row that breaks a CHECK the catalog says is validated
        "INSERT INTO sales.store VALUES (9, 'Llanfairpwllgwyngyll')",
        "ALTER TABLE sales.store ADD CONSTRAINT city_short CHECK (length(city) < 12) NOT VALID",
        "UPDATE pg_constraint SET convalidated = true WHERE conname = 'city_short'",
        # a value its domain no longer accepts, with the domain's CHECK validated again behind its back
        "ALTER DOMAIN sales.year DROP CONSTRAINT year_check",
        "UPDATE sales.customer SET since = 1066 WHERE id = 7",
        "ALTER DOMAIN sales.year ADD CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155) NOT VALID",
        "UPDATE pg_constraint SET convalidated = true WHERE conname = 'year_check'",
    )
    code, report = verify_json("--db", real_pg)
    assert code == 1 and report["verdict"] == "VIOLATIONS"
    failed = checks(report, "fail")
    assert set(failed) == {"sales.pay_2024_s2.pay_2024_s2_cust_id_fkey", "sales.store.city_short",
                           "sales.customer.since"}  # fmt: skip
    orphan = failed["sales.pay_2024_s2.pay_2024_s2_cust_id_fkey"]
    assert orphan["violations"] == 1 and orphan["sample"] == [{"cust_id": 4242}]
    city = failed["sales.store.city_short"]
    assert city["violations"] == 1 and city["sample"] == [{"id": 9, "city": "Llanfairpwllgwyngyll"}]
    assert "sales.year" in failed["sales.customer.since"]["detail"]
    code, text, _ = verify("--db", real_pg)
    assert code == 1
    assert text.startswith("VIOLATIONS")
    assert "cust_id=4242" in text and "city=Llanfairpwllgwyngyll" in text


def test_foreign_key_on_a_partitioned_table_is_checked_once_through_its_partitions(real_pg: str) -> None:
    superuser(real_pg, "ALTER TABLE sales.pay ADD CONSTRAINT pay_store FOREIGN KEY (store_id) REFERENCES sales.store",
              "ALTER TABLE sales.pay ADD CONSTRAINT amt_positive CHECK (amt >= 0)",
              "SET session_replication_role = replica; "
              "INSERT INTO sales.pay_2023 VALUES (90002, 1, 77, 1, '2023-02-01')")  # fmt: skip
    code, report = verify_json("--db", real_pg)
    assert code == 1
    keys = [c for c in report["checks"] if c["check"] == "foreign key" and "store_id" in c["detail"]
            and "pay_2024_s2_store_id_fkey" not in c["subject"]]  # fmt: skip
    # the partitions' clones of pay_store are not checked again: one outcome, one orphan
    assert [(c["subject"], c["status"], c["violations"]) for c in keys] == [("sales.pay.pay_store", "fail", 1)]
    assert keys[0]["sample"] == [{"store_id": 77}]
    # a CHECK on the partitioned table is evaluated once, on it: not again on each partition's copy
    amount = [c["subject"] for c in report["checks"] if c["check"] == "check constraint"]
    assert amount == ["sales.pay.amt_positive"]


def test_foreign_key_of_a_table_with_inheritance_children_binds_its_own_rows_only(real_pg: str) -> None:
    """PostgreSQL does not give a table's INHERITS children its foreign keys: a child row without a parent
    row is legal, and verify must not call the database violated for it (exit 1 on a sound database)."""
    superuser(real_pg, "CREATE TABLE sales.visit (id int PRIMARY KEY, store_id int REFERENCES sales.store)",
              "CREATE TABLE sales.visit_2024 () INHERITS (sales.visit)",
              "INSERT INTO sales.visit VALUES (1, 1)",
              "INSERT INTO sales.visit_2024 VALUES (2, 4242)")  # fmt: skip
    for sample in ((), ("--sample", "50")):  # FROM ONLY ... TABLESAMPLE too
        code, report = verify_json("--db", real_pg, *sample)
        assert code == 0, checks(report, "fail")
        assert checks(report)["sales.visit.visit_store_id_fkey"]["status"] == "pass"
    # an orphan in the table itself still fails
    superuser(real_pg, "SET session_replication_role = replica; INSERT INTO sales.visit VALUES (3, 4343)")
    code, report = verify_json("--db", real_pg)
    failed = checks(report, "fail")
    assert code == 1 and set(failed) == {"sales.visit.visit_store_id_fkey"}, failed
    assert failed["sales.visit.visit_store_id_fkey"]["sample"] == [{"store_id": 4343}]


def test_a_referenced_row_that_only_an_inheritance_child_holds_does_not_satisfy_a_foreign_key(real_pg: str) -> None:
    """A foreign key looks up the referenced table itself, not its INHERITS children: a key whose row lives only
    in a child is an orphan (planted behind the server's back), and verify must say so."""
    superuser(real_pg, "CREATE TABLE sales.region (id int PRIMARY KEY)",
              "CREATE TABLE sales.region_eu () INHERITS (sales.region)",
              "CREATE TABLE sales.depot (id int PRIMARY KEY, region_id int REFERENCES sales.region)",
              "INSERT INTO sales.region VALUES (1)", "INSERT INTO sales.region_eu VALUES (2)",
              "INSERT INTO sales.depot VALUES (1, 1)",
              "SET session_replication_role = replica; INSERT INTO sales.depot VALUES (2, 2)")  # fmt: skip
    code, report = verify_json("--db", real_pg)
    failed = checks(report, "fail")
    assert code == 1 and set(failed) == {"sales.depot.depot_region_id_fkey"}, failed
    assert failed["sales.depot.depot_region_id_fkey"]["sample"] == [{"region_id": 2}]


def test_a_value_a_not_valid_domain_constraint_left_in_is_no_violation(real_pg: str) -> None:
    """ALTER DOMAIN ... ADD CONSTRAINT ... NOT VALID keeps the old values that break it, by design: verify must
    not call that database violated (exit 1); the re-cast stops at such a value, so the column is INCOMPLETE."""
    superuser(real_pg, "ALTER DOMAIN sales.year DROP CONSTRAINT year_check",
              "UPDATE sales.customer SET since = 1066 WHERE id = 7",
              "ALTER DOMAIN sales.year ADD CONSTRAINT year_positive CHECK (VALUE > 0)",  # validated: 1066 holds it
              "ALTER DOMAIN sales.year ADD CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155) NOT VALID")
    code, report = verify_json("--db", real_pg)
    since = checks(report)["sales.customer.since"]
    assert code == 8 and since["status"] == "incomplete", since
    assert "year_check" in since["detail"] and "NOT VALID" in since["detail"]


def test_a_column_of_a_domain_built_on_a_checked_domain_is_checked(real_pg: str) -> None:
    """A domain over a domain has no CHECK of its own but runs its base's: its columns must not be left out."""
    superuser(real_pg, "CREATE DOMAIN sales.fiscal_year AS sales.year",
              "CREATE TABLE sales.budget (id int PRIMARY KEY, fy sales.fiscal_year)",
              "INSERT INTO sales.budget VALUES (1, 2024)")  # fmt: skip
    code, report = verify_json("--db", real_pg)
    assert code == 0 and checks(report)["sales.budget.fy"]["status"] == "pass", report["checks"]
    superuser(real_pg, "ALTER DOMAIN sales.year DROP CONSTRAINT year_check",
              "INSERT INTO sales.budget VALUES (2, 1066)",
              "ALTER DOMAIN sales.year ADD CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155) NOT VALID",
              "UPDATE pg_constraint SET convalidated = true WHERE conname = 'year_check'")  # fmt: skip
    code, report = verify_json("--db", real_pg)
    budget = checks(report)["sales.budget.fy"]
    assert code == 1 and budget["status"] == "fail" and "year_check" in budget["detail"], budget


def test_invalid_index_from_a_failed_concurrent_build(real_pg: str) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        superuser(real_pg, "CREATE UNIQUE INDEX CONCURRENTLY customer_since_unique ON sales.customer (since)")
    code, report = verify_json("--db", real_pg)
    assert code == 1
    invalid = checks(report)["all indexes"]
    assert invalid["status"] == "fail" and invalid["violations"] == 1
    assert "sales.customer_since_unique" in invalid["detail"]


def test_amcheck_runs_when_installed(real_pg: str) -> None:
    superuser(real_pg, "CREATE EXTENSION amcheck")
    code, report = verify_json("--db", real_pg)
    assert code == 0
    amcheck = {c["subject"]: c["status"] for c in report["checks"] if c["check"] == "amcheck"}
    assert amcheck["sales.customer_pkey"] == "pass" and amcheck["sales.pay_2024_s1_cust"] == "pass"
    assert set(amcheck.values()) == {"pass"}


def test_invariants_of_the_policy(real_pg: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("""
[[invariants]]
name = "no void payment"
kind = "sql"
sql = "SELECT id, d FROM sales.pay WHERE status = 'void'"

[[invariants]]
name = "customer names"
kind = "not_null"
table = "sales.customer"
columns = ["name"]

[[invariants]]
name = "few deletes"
kind = "row_count"
table = "sales.store"
max_delete_percent = 10
""")
    code, report = verify_json("--db", real_pg, "--policy", str(policy))
    assert code == 0
    by_subject = checks(report)
    assert by_subject["no void payment"]["status"] == "pass"
    assert by_subject["customer names"]["status"] == "pass"
    assert by_subject["few deletes"]["status"] == "skipped"  # a row_count invariant needs a script
    superuser(real_pg, "UPDATE sales.pay SET status = 'void' WHERE id = 3")
    code, report = verify_json("--db", real_pg, "--policy", str(policy))
    assert code == 1
    assert checks(report)["no void payment"]["status"] == "fail"
    assert checks(report)["no void payment"]["violations"] == 1


def _hold_lock(url: str, table: str, locked: threading.Event, release: threading.Event) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # type: ignore[arg-type]
        locked.set()
        release.wait(30)
        conn.rollback()


@contextmanager
def _locked(url: str, table: str) -> Iterator[None]:
    """Another session holds ACCESS EXCLUSIVE on `table` for the block (released when it ends, however)."""
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(url, table, locked, release))
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_time_budget_reports_unfinished_and_unreached_checks_as_incomplete(real_pg: str, tmp_path: Path) -> None:
    """A check blocked by a lock longer than the budget is stopped by statement_timeout; every later check
    is not reached. Nothing failed, nothing passes by default: exit 8."""
    policy = tmp_path / "patient.toml"
    policy.write_text('[timeouts]\nlock_timeout = "1min"\n')
    with _locked(real_pg, "sales.store"):
        code, report = verify_json("--db", real_pg, "--policy", str(policy), "--time-budget", "1")
    assert code == 8 and report["verdict"] == "INCOMPLETE"
    details = [(c["subject"], c["status"], c["detail"]) for c in report["checks"]]
    stopped = [d for d in details if d[2].startswith("stopped: the time budget ran out")]
    assert len(stopped) == 1 and stopped[0][1] == "incomplete"
    blocked_at = details.index(stopped[0])
    assert all(status == "incomplete" and "not checked" in detail for _, status, detail in details[blocked_at + 1:])
    assert report["summary"]["fail"] == 0 and report["summary"]["pass"] == blocked_at


def test_lock_held_by_another_session_is_incomplete_not_passed(real_pg: str, tmp_path: Path) -> None:
    policy = tmp_path / "quick.toml"
    policy.write_text('[timeouts]\nlock_timeout = "200ms"\n')
    with _locked(real_pg, "sales.customer"):
        code, report = verify_json("--db", real_pg, "--policy", str(policy))
    assert code == 8
    incomplete = checks(report, "incomplete")
    assert incomplete and all("lock" in c["detail"] for c in incomplete.values())
    assert "sales.customer.since" in incomplete  # the domain column's table is the locked one
    assert report["summary"]["fail"] == 0


def test_a_nan_in_a_violating_row_is_written_as_json_text(real_pg: str) -> None:
    """json.dumps writes a NaN float as NaN, which is not JSON: the sample says it as text."""
    superuser(real_pg, "CREATE TABLE sales.reading (id int PRIMARY KEY, level float8)",
              "INSERT INTO sales.reading VALUES (1, 'NaN')",
              "ALTER TABLE sales.reading ADD CONSTRAINT level_low CHECK (level < 100) NOT VALID",
              "UPDATE pg_constraint SET convalidated = true WHERE conname = 'level_low'")  # fmt: skip
    code, out, err = verify("--db", real_pg, "--format", "json")

    def not_json(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    report = json.loads(out, parse_constant=not_json)
    assert code == 1, err
    assert checks(report, "fail")["sales.reading.level_low"]["sample"] == [{"id": 1, "level": "nan"}]


def test_sample_reads_part_of_each_table_and_says_so(real_pg: str) -> None:
    code, report = verify_json("--db", real_pg, "--sample", "50")
    assert code == 0 and report["sample_percent"] == 50
    row_by_row = [c for c in report["checks"] if c["check"] in ("check constraint", "foreign key", "domain check")]
    assert row_by_row and all(c["sampled_percent"] == 50 for c in row_by_row)
    assert all(c["sampled_percent"] is None for c in report["checks"] if c["check"] == "invalid index")
    code, text, _ = verify("--db", real_pg, "--sample", "50")
    assert code == 0 and "50% sample" in text and "PASS (sample)" in text


@pytest.mark.parametrize("bad", [["--sample", "0"], ["--sample", "100"], ["--sample", "nan"], ["--time-budget", "0"],
                                 ["--time-budget", "nan"], ["--time-budget", "inf"],
                                 ["--time-budget", "3000000"],  # past statement_timeout's range: no internal error
                                 ["--max-backup-age", "soon"]])  # fmt: skip
def test_bad_options_are_usage_errors(bad: list[str], tmp_path: Path) -> None:
    code, _, err = verify("--db", f"sqlite:///{make_sqlite_warehouse(tmp_path / 'w.db')}", *bad)
    assert code == 2
    assert err.startswith("dbguard: error: ") and bad[0] in err and len(err.strip().splitlines()) == 1


def test_prometheus_exposition_parses_and_holds_no_password(real_pg: str, tmp_path: Path) -> None:
    superuser(real_pg, "SET session_replication_role = replica; "
                       "INSERT INTO sales.pay_2024_s1 VALUES (90003, 4243, 1, 1, '2024-05-01')")  # fmt: skip
    with_password = real_pg.replace("postgres@", f"postgres:{SECRET}@")
    out = tmp_path / "dbguard.prom"
    code, stdout, stderr = verify("--db", with_password, "--format", "prometheus", "--output", str(out),
                                  "--backup-dir", str(tmp_path / "empty"), "--max-backup-age", "26h")  # fmt: skip
    assert code == 1  # the violation outranks the missing backup
    text = out.read_text()
    assert SECRET not in text + stdout + stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}
    database = DatabaseUrl.parse(real_pg).database
    ok = {s.labels["subject"]: s.value for s in families["dbguard_verify_check_ok"].samples}
    assert ok["sales.pay_2024_s1.pay_2024_s1_cust_id_fkey"] == 0
    assert ok["sales.pay_2024_s2.pay_2024_s2_cust_id_fkey"] == 1
    assert "btree indexes" not in ok  # skipped: neither a pass nor a failure
    assert all(s.labels["database"] == database for f in families.values() for s in f.samples)
    violations = {s.labels["subject"]: s.value for s in families["dbguard_verify_violations"].samples}
    assert violations["sales.pay_2024_s1.pay_2024_s1_cust_id_fkey"] == 1
    states = {(s.labels["subject"], s.labels["dbguard_verify_check_state"]): s.value
              for s in families["dbguard_verify_check_state"].samples}  # fmt: skip
    assert states[("btree indexes", "skipped")] == 1 and states[("btree indexes", "pass")] == 0
    (exit_code,) = families["dbguard_verify_exit_code"].samples
    assert exit_code.value == 1
    assert families["dbguard_verify_last_run_timestamp_seconds"].samples[0].value > 1.7e9
    assert families["dbguard_verify_duration_seconds"].samples[0].value >= 0
    assert families["dbguard_backup_verified"].samples[0].value == 0
    assert families["dbguard_backup_fresh"].samples[0].value == 0
    assert "dbguard_backup_age_seconds" not in families  # there is no verified backup to be old
    assert not list(tmp_path.glob(".dbguard.prom.partial-*"))


def test_unreachable_database_exits_4_in_one_line() -> None:
    code, out, err = verify("--db", f"postgresql://postgres:{SECRET}@127.0.0.1:1/nothing")
    assert code == 4 and out == ""
    assert err.startswith("dbguard: error: ") and len(err.strip().splitlines()) == 1 and SECRET not in err


def test_a_session_lost_between_two_checks_exits_4_in_one_line(real_pg: str, tmp_path: Path) -> None:
    """The session is lost during an invariant (here it ends itself, as pg_terminate_backend from another
    session would); the next check finds the connection closed: exit 4, one line, never an internal error."""
    policy = tmp_path / "lost.toml"
    policy.write_text('[[invariants]]\nname = "session lost"\nkind = "sql"\nsql = "SELECT 1 FROM (SELECT '
                      'pg_terminate_backend(pg_backend_pid()) AS t OFFSET 0) AS x WHERE NOT t"\n')  # fmt: skip
    code, out, err = verify("--db", real_pg, "--policy", str(policy))
    assert code == 4 and out == "", (out, err)
    assert err.startswith("dbguard: error: the connection was lost") and len(err.strip().splitlines()) == 1


# -- SQLite --


def _file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_sqlite_clean_passes_and_the_file_is_untouched(tmp_path: Path) -> None:
    db = make_sqlite_warehouse(tmp_path / "w.db")
    before = _file_state(db)
    code, report = verify_json("--db", f"sqlite:///{db}")
    assert code == 0, report
    kinds = {c["check"] for c in report["checks"]}
    assert {"integrity_check", "foreign_key_check", "check constraint"} <= kinds
    assert report["summary"]["pass"] == len(report["checks"])
    assert _file_state(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.db"]  # no journal, no -wal, no -shm left


def test_sqlite_violations_behind_its_back(tmp_path: Path) -> None:
    db = make_sqlite_warehouse(tmp_path / "w.db")
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("INSERT INTO order_lines VALUES (999, 1, 1, 1, 2)")  # no order 999
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE stock SET qty = -5 WHERE warehouse_id = 1 AND product_id = 2")
        conn.commit()
    before = _file_state(db)
    code, report = verify_json("--db", f"sqlite:///{db}")
    assert code == 1
    failed = checks(report, "fail")
    assert failed["order_lines"]["check"] == "foreign_key_check" and failed["order_lines"]["violations"] == 1
    qty = [c for c in failed.values() if c["check"] == "check constraint" and "qty >= 0" in c["detail"]]
    assert len(qty) == 1 and qty[0]["table"] == "stock" and qty[0]["violations"] == 1
    assert qty[0]["sample"][0]["qty"] == -5
    assert _file_state(db) == before


def test_sqlite_flipped_byte_is_corruption(tmp_path: Path) -> None:
    db = make_sqlite_warehouse(tmp_path / "w.db")
    with closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'stock'").fetchone()[0]
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size + 8] ^= 0xFF  # the first cell pointer of the stock table's b-tree page
    db.write_bytes(bytes(data))
    before = _file_state(db)
    code, report = verify_json("--db", f"sqlite:///{db}")
    assert code == 1
    integrity = checks(report)["main"]
    assert integrity["check"] == "integrity_check" and integrity["status"] == "fail"
    assert f"page {root}" in integrity["detail"]
    assert _file_state(db) == before


def test_sqlite_sample_runs_quick_check(tmp_path: Path) -> None:
    db = make_sqlite_warehouse(tmp_path / "w.db")
    code, report = verify_json("--db", f"sqlite:///{db}", "--sample", "10")
    assert code == 0
    assert checks(report)["main"]["check"] == "quick_check"
    # the text says what --sample changed on SQLite, and claims no sample of pages it did not take
    code, text, _ = verify("--db", f"sqlite:///{db}", "--sample", "10")
    assert code == 0 and "quick_check instead of integrity_check" in text and "of each table's pages" not in text


# -- backups --


def test_backup_freshness(tmp_path: Path) -> None:
    db = make_sqlite_warehouse(tmp_path / "w.db")
    other = make_sqlite_warehouse(tmp_path / "other.db")
    store_dir = tmp_path / "store"
    url = f"sqlite:///{db}"
    code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
    assert code == 5 and report["verdict"] == "BACKUP STALE"
    assert report["backup"]["stale"] is True and report["backup"]["newest_verified_id"] is None
    store = BackupStore(store_dir)
    take_backup(DatabaseUrl.parse(f"sqlite:///{other}"), store, None)  # another database's: does not count
    code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
    assert code == 5
    manifest = take_backup(DatabaseUrl.parse(url), store, None)
    code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
    assert code == 0, report
    assert report["backup"]["newest_verified_id"] == manifest.id and report["backup"]["stale"] is False
    assert 0 <= report["backup"]["age_seconds"] < 26 * 3600
    code, text, _ = verify("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
    assert f"newest verified: {manifest.id}" in text and "fresh" in text
    snapshot = datetime.strptime(manifest.id[:27], "%Y-%m-%dT%H-%M-%S.%fZ").replace(tzinfo=UTC)
    later = snapshot + timedelta(hours=27)  # the backup's age counts from its snapshot
    stale = backup_freshness(store, DatabaseUrl.parse(url), 26 * 3600, now=later.astimezone(UTC))
    assert stale.stale is True and stale.age_seconds == pytest.approx(27 * 3600)
    # a verified backup whose dump file is gone is no backup
    (store_dir / manifest.dump_file).unlink()
    code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
    assert code == 5
    assert any("MISSING" in problem for problem in report["backup"]["problems"])
    # without a threshold the backup is reported, not alerted on
    code, report = verify_json("--db", url, "--backup-dir", str(store_dir))
    assert code == 0 and report["backup"]["stale"] is None


def test_a_table_scoped_backup_is_no_fresh_backup_of_the_database(tmp_path: Path) -> None:
    """The backup `run` takes holds only the tables the script writes: it cannot bring the database back, so
    a store whose only recent backups are scoped must still alert (a nightly full backup that stopped)."""
    with scratch_database() as url:
        load_warehouse(url)
        store_dir = tmp_path / "store"
        store = BackupStore(store_dir)
        scoped = take_backup(DatabaseUrl.parse(url), store, ["stock"])
        assert scoped.scope == "tables" and scoped.verification.status == "VERIFIED"
        code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
        assert code == 5 and report["verdict"] == "BACKUP STALE", report["backup"]
        assert report["backup"]["newest_verified_id"] is None and report["backup"]["stale"] is True
        assert any(scoped.id in problem and "scoped" in problem for problem in report["backup"]["problems"])
        full = take_backup(DatabaseUrl.parse(url), store, None)
        newer_scoped = take_backup(DatabaseUrl.parse(url), store, ["stock"])
        code, report = verify_json("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
        assert code == 0, report["backup"]
        assert report["backup"]["newest_verified_id"] == full.id  # not the newer, scoped one
        assert any(newer_scoped.id in problem for problem in report["backup"]["problems"])
        code, text, _ = verify("--db", url, "--backup-dir", str(store_dir), "--max-backup-age", "26h")
        assert f"newest verified: {full.id}" in text and "scoped" in text


def test_a_backups_age_counts_from_its_snapshot_not_from_when_its_manifest_was_written(tmp_path: Path) -> None:
    """A dump of a big database takes hours: its manifest is written then, but its data is as old as the
    snapshot stamped in its id. Counting from the manifest would call 27-hour-old data fresh under 26h."""
    db = make_sqlite_warehouse(tmp_path / "w.db")
    url, store = DatabaseUrl.parse(f"sqlite:///{db}"), BackupStore(tmp_path / "store")
    manifest = take_backup(url, store, None)
    snapshot = datetime.strptime(manifest.id[:27], "%Y-%m-%dT%H-%M-%S.%fZ").replace(tzinfo=UTC)
    slow = replace(manifest, created_at=(snapshot + timedelta(hours=3)).isoformat(timespec="seconds"))
    store.save(slow)  # as if the dump had taken three hours
    freshness = backup_freshness(store, url, 26 * 3600, now=snapshot + timedelta(hours=27))
    assert freshness.newest_verified_id == manifest.id
    assert freshness.age_seconds == pytest.approx(27 * 3600) and freshness.stale is True
    assert freshness.newest_verified_at == snapshot.isoformat()


def test_help_documents_the_exit_codes() -> None:
    result = runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for line in ("0  every check passed", "1  a violation", "4  the database cannot be reached",
                 "5  no verified full backup", "8  incomplete", "Example:"):  # fmt: skip
        assert line in result.stdout


def test_sqlite_check_interrupted_by_the_budget_is_incomplete(tmp_path: Path) -> None:
    """The progress handler stops a check the budget has no time left for: INCOMPLETE, not a pass."""
    from dbguard.monitor import sqlite as sqlite_checks
    from dbguard.monitor.runner import Budget, run_planned
    from dbguard.targets import sqlite as sqlite_target

    db = tmp_path / "big.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"value {i}") for i in range(50_000)))
        conn.commit()
    target = sqlite_target.connect(DatabaseUrl.parse(f"sqlite:///{db}"), read_only=True)
    try:
        planned = sqlite_checks.planned_checks(target, None)
        no_time_left = sqlite_checks.arm(target.conn)
        outcomes = run_planned(planned, Budget(None), lambda _left: no_time_left(0.0), sqlite_checks.why_stopped)
    finally:
        target.close()
    (integrity,) = outcomes
    assert integrity.check == "integrity_check" and integrity.status.value == "incomplete"
    assert integrity.detail == "stopped: the time budget ran out during this check"
