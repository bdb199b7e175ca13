"""`dbguard dry-run` end to end, on the real PostgreSQL and real SQLite files: never mocked."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.inputs import Source
from dbguard.pipeline.dryrun import DryRunOptions, dry_run
from dbguard.policy.policy import Invariant, Policy, load_policy
from dbguard.report.dryrun.model import DryRunReport
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL

LOCK = "SET lock_timeout = '2s';\n"


def run(sql: str, url: str, policy: Policy | None = None, **options: object) -> DryRunReport:
    return dry_run(
        Source("fix.sql", sql), DatabaseUrl.parse(url), policy or load_policy(None), DryRunOptions(**options)
    )  # type: ignore[arg-type]


def sandboxes(pid: int | None = None) -> list[str]:
    """This process's sandboxes (or `pid`'s): their names carry the pid that made them, and other tests may
    run on the same server meanwhile."""
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbguard_sandbox_%'").fetchall()
    return [r[0] for r in rows if f"_{pid or os.getpid()}_" in r[0]]


def fingerprint(url: str) -> dict[str, str]:
    target = open_target(DatabaseUrl.parse(url))
    try:
        return {t: s.hash for t, s in target.table_stats(target.all_tables()).items()}
    finally:
        target.close()


def test_rows_and_locks_per_statement(warehouse_pg: str) -> None:
    report = run(
        LOCK + "DELETE FROM reservations WHERE order_id = 3;\n"
        "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 2;\n"
        "INSERT INTO orders (customer, status) VALUES ('walk-in', 'open');\n"
        "ALTER TABLE products ADD COLUMN note text;\n"
        "CREATE INDEX stock_qty_idx ON stock (qty);\n"
        "LOCK TABLE warehouses IN SHARE MODE;\n"
        "SELECT count(*) FROM order_lines;\n",
        warehouse_pg,
    )
    runs = {r.index: r for r in report.execution.runs}
    assert [runs[i].rows for i in (2, 3, 4)] == [1, 40, 1]
    locks = {i: {(held.table, held.mode) for held in runs[i].locks} for i in runs}
    assert locks[2] == {("public.reservations", "ROW EXCLUSIVE")}
    assert ("public.stock", "ROW EXCLUSIVE") in locks[3]
    assert locks[5] == {("public.products", "ACCESS EXCLUSIVE")}
    assert ("public.stock", "SHARE") in locks[6]
    assert locks[7] == {("public.warehouses", "SHARE")}
    assert locks[8] == {("public.order_lines", "ACCESS SHARE")}
    assert all(r.executed and r.error is None for r in report.execution.runs)
    assert any(c.change == "column added" and c.name == "public.products.note" for c in report.schema_changes)
    assert any(c.change == "index added" for c in report.schema_changes)
    deltas = {t.table: t for t in report.tables}
    assert deltas["public.reservations"].delta == -1 and deltas["public.orders"].delta == 1
    assert deltas["public.stock"].changed and not deltas["public.warehouses"].changed
    assert any("orders_id_seq" in note for note in report.notes)


def test_a_table_reached_only_through_dynamic_sql_is_copied_and_rehearsed_again(warehouse_pg: str) -> None:
    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit_log (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO audit_log SELECT i, 'x' FROM generate_series(1, 1000) i")
    # The table name is hidden from the parser in dynamic SQL: the first scoped copy leaves audit_log empty,
    # the server's counters show the script read it, and the second rehearsal sees the real rows.
    probe = (
        "DO $$ DECLARE n bigint; BEGIN EXECUTE 'SELECT count(*) FROM audit' || '_log' INTO n;\n"
        "IF n <> 0 THEN RAISE EXCEPTION 'audit_log has % rows', n; END IF; END $$;\n"
    )
    sql = LOCK + "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n" + probe
    scoped = run(sql, warehouse_pg)
    assert scoped.scoped and "public.audit_log" in scoped.tables_copied
    assert "public.order_lines" not in scoped.tables_copied  # the copy is still scoped
    assert scoped.execution.failed is not None and "audit_log has 1000 rows" in (scoped.execution.failed.error or "")
    full = run(sql, warehouse_pg, full=True)
    assert full.execution.failed is not None and "audit_log has 1000 rows" in (full.execution.failed.error or "")


def test_the_target_is_never_modified(warehouse_pg: str) -> None:
    before = fingerprint(warehouse_pg)
    report = run("DELETE FROM reservations;\nTRUNCATE order_lines;\nDROP TABLE stock CASCADE;\n", warehouse_pg)
    assert report.verdict == "BLOCKED"
    assert report.execution.failed is None  # it really ran, in the sandbox
    assert fingerprint(warehouse_pg) == before
    assert sandboxes() == []


def test_invariant_failure_is_caught_with_sample_rows(warehouse_pg: str) -> None:
    policy = Policy(
        invariants=(
            Invariant(
                name="stock never below 5",
                kind="sql",
                sql="SELECT warehouse_id, product_id, qty FROM stock WHERE qty < 5",
            ),
        )
    )
    report = run(
        LOCK + "UPDATE stock SET qty = 1 WHERE warehouse_id = 2 AND product_id IN (1, 2);\n", warehouse_pg, policy
    )
    (gate,) = [g for g in report.checks if g.result.name == "stock never below 5"]
    assert gate.blocks
    assert sorted(gate.result.sample) == [(2, 1, 1), (2, 2, 1)]
    reason = "check failed: stock never below 5: 2 row(s) returned by the invariant's query"
    assert report.verdict == "BLOCKED" and reason in report.blocking_reasons


def test_broken_foreign_key_is_caught_even_with_triggers_disabled(warehouse_pg: str) -> None:
    sql = (
        LOCK + "ALTER TABLE stock DISABLE TRIGGER ALL;\n"
        "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (999, 1, 5);\n"
        "ALTER TABLE stock ENABLE TRIGGER ALL;\n"
    )
    report = run(sql, warehouse_pg)
    (gate,) = [g for g in report.checks if g.result.name == "foreign keys hold"]
    assert gate.blocks and ("public.stock.stock_warehouse_id_fkey", 999) in gate.result.sample


def test_failing_statement_is_reported_with_its_line(warehouse_pg: str) -> None:
    report = run(
        LOCK + "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n\nUPDATE stock\n  SET qty = -1\n"
        "  WHERE warehouse_id = 2;\nDELETE FROM orders WHERE id = 1;\n",
        warehouse_pg,
    )
    failed = report.execution.failed
    assert failed is not None and failed.index == 3 and failed.line == 4
    assert "check constraint" in (failed.error or "")
    assert not report.execution.runs[-1].executed
    assert report.verdict == "BLOCKED"


def test_delete_share_threshold(warehouse_pg: str) -> None:
    report = run(LOCK + "DELETE FROM reservations WHERE qty > 0;\n", warehouse_pg)
    assert [f.rule_id for f in report.findings] == ["limit-delete-percent"]
    small = run(LOCK + "DELETE FROM reservations WHERE order_id = 3;\n", warehouse_pg)
    assert small.findings == ()


def test_non_transactional_statement_runs_as_its_own_step(warehouse_pg: str) -> None:
    report = run(
        LOCK + "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n"
        "CREATE INDEX CONCURRENTLY stock_updated_idx ON stock (updated_at);\n",
        warehouse_pg,
    )
    index_run = report.execution.runs[-1]
    assert index_run.separate_step and index_run.executed and index_run.error is None
    assert report.execution.committed_steps == 1
    assert any("committed before" in note for note in report.notes)


def test_sqlite_dry_run_leaves_the_file_untouched(warehouse_sqlite: Path) -> None:
    digest = hashlib.sha256(warehouse_sqlite.read_bytes()).hexdigest()
    report = run(
        "DELETE FROM reservations WHERE order_id = 3;\nUPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n",
        f"sqlite:///{warehouse_sqlite}",
    )
    assert [r.rows for r in report.execution.runs] == [1, 40]
    assert {c.result.name for c in report.checks} >= {"integrity_check", "foreign keys hold"}
    assert all(c.result.passed for c in report.checks)
    assert hashlib.sha256(warehouse_sqlite.read_bytes()).hexdigest() == digest


def test_local_provider_end_to_end(warehouse_pg: str) -> None:
    sql = LOCK + "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n"
    report = run(sql, warehouse_pg, provider="local")
    assert report.provider == "local" and report.execution.runs[-1].rows == 40


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_removes_the_sandbox(warehouse_pg: str, tmp_path: Path, signum: int, exit_code: int) -> None:
    script = tmp_path / "slow.sql"
    script.write_text("SELECT pg_sleep(60);\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "dbguard", "dry-run", str(script), "--db", warehouse_pg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    def own() -> list[str]:  # sandbox names carry the pid that made them; other tests may run meanwhile
        return sandboxes(process.pid)

    deadline = time.monotonic() + 30
    while not own() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert own(), "the dry-run never created its sandbox"
    time.sleep(0.5)  # let it reach pg_sleep
    process.send_signal(signum)
    process.wait(timeout=30)
    assert process.returncode == exit_code
    assert own() == []


runner = CliRunner()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres:S3cret@127.0.0.1:1/test", "connection refused"),
        ("postgresql://postgres@127.0.0.1:5432/dbguard_no_such_db", "does not exist"),
    ],
    ids=["unreachable", "missing-database"],
)
def test_unusable_target_exits_4_without_secrets(url: str, message: str, tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    result = runner.invoke(app, ["dry-run", str(script), "--db", url])
    assert result.exit_code == 4
    assert message in result.stderr and "S3cret" not in result.stderr + result.stdout
    assert sandboxes() == []


def test_missing_pg_dump_exits_4(warehouse_pg: str, tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = runner.invoke(app, ["dry-run", str(script), "--db", warehouse_pg, "--pg-bin", str(empty)])
    assert result.exit_code == 4 and "pg_dump" in result.stderr
    assert sandboxes() == []


def test_no_permission_to_create_a_database_says_what_to_do(warehouse_pg: str, tmp_path: Path) -> None:
    role = f"dbguard_nocreate_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        with psycopg.connect(warehouse_pg, autocommit=True) as conn:
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        script = tmp_path / "x.sql"
        script.write_text("SELECT 1;")
        url = warehouse_pg.replace("postgres@", f"{role}@")
        result = runner.invoke(app, ["dry-run", str(script), "--db", url])
        assert result.exit_code == 4 and "--sandbox-url" in result.stderr
        assert sandboxes() == []
    finally:
        with psycopg.connect(warehouse_pg, autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


def test_container_sandbox_without_docker_exits_4(warehouse_pg: str, tmp_path: Path) -> None:
    if Path("/var/run/docker.sock").exists() or os.environ.get("DOCKER_HOST"):
        pytest.skip("a Docker engine is present: the no-Docker path cannot be shown here")
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    result = runner.invoke(app, ["dry-run", str(script), "--db", warehouse_pg, "--sandbox", "container"])
    assert result.exit_code == 4 and "Docker" in result.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "WITH d AS (DELETE FROM reservations WHERE qty > 0 RETURNING 1) SELECT count(*) FROM d;\n",
        "DO $$ BEGIN DELETE FROM reservations WHERE qty > 0; END $$;\n",
        "DELETE FROM orders WHERE id <= 30;\n",  # ON DELETE CASCADE empties order_lines too
    ],
    ids=["cte", "do-block", "cascade"],
)
def test_delete_share_is_measured_on_the_tables_not_the_row_count(warehouse_pg: str, sql: str) -> None:
    with psycopg.connect(warehouse_pg, autocommit=True) as conn:  # let the cascade case get through
        conn.execute("ALTER TABLE reservations DROP CONSTRAINT reservations_order_id_fkey")
    report = run(LOCK + sql, warehouse_pg)
    assert report.execution.failed is None
    assert any(f.rule_id == "limit-delete-percent" for f in report.findings), report.findings
    assert report.verdict == "BLOCKED"
    if "orders" in sql:  # the rows the cascade removed are measured too, though the script never names them
        (lines,) = [t for t in report.tables if t.table == "public.order_lines"]
        assert (lines.rows_before, lines.rows_after) == (60, 0)


def test_writing_through_a_view_is_measured_on_the_table_behind_it(warehouse_pg: str) -> None:
    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        conn.execute("CREATE VIEW v_stock AS SELECT * FROM stock")
    report = run(LOCK + "UPDATE v_stock SET qty = qty + 1 WHERE warehouse_id = 1;\n", warehouse_pg)
    assert "public.stock" in report.tables_copied  # found by the server's counters, copied on the second pass
    (stock,) = [t for t in report.tables if t.table == "public.stock"]
    assert stock.changed and stock.rows_before == 120
    assert report.execution.runs[-1].rows == 40 and report.verdict == "SAFE", report.blocking_reasons


def test_wrong_password_exits_4_without_showing_it(tmp_path: Path) -> None:
    """A real server that checks passwords: a throwaway cluster, switched to scram-sha-256."""
    from dbguard.sandbox.catalog import database_facts
    from dbguard.sandbox.local import local_cluster

    with psycopg.connect(ADMIN_URL) as conn:
        facts = database_facts(conn)
    with local_cluster(facts) as (url, _, _marker):
        with psycopg.connect(url.conninfo(), autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres PASSWORD 'Right-PW-1'")
            (Path(url.host) / "data" / "pg_hba.conf").write_text("local all all scram-sha-256\n")
            conn.execute("SELECT pg_reload_conf()")
        script = tmp_path / "x.sql"
        script.write_text("SELECT 1;")
        wrong = f"postgresql://postgres:Wr0ng-PW-2@/postgres?host={url.host}&port={url.port}"
        result = runner.invoke(app, ["dry-run", str(script), "--db", wrong])
        assert result.exit_code == 4
        assert "password authentication failed" in result.stderr
        assert "Wr0ng-PW-2" not in result.stderr + result.stdout
