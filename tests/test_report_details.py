"""Dry-run reports on the real PostgreSQL and real SQLite files (issue 8, items 5, 6 and 8): what the server
said about a failed statement (DETAIL, HINT, CONTEXT), a target that was opened read-only, whole statements,
offending rows by column name, the rows each statement wrote per table, and the early-commit note only when
something was committed early."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from html import escape
from pathlib import Path

import psycopg
import pytest

from dbguard.errors import ConnectionFailure
from dbguard.policy.policy import Invariant, Policy
from dbguard.report.dryrun import html as dryrun_html
from dbguard.report.dryrun import json as dryrun_json
from dbguard.report.dryrun import markdown as dryrun_markdown
from dbguard.report.dryrun import text as dryrun_text
from dbguard.report.dryrun.model import DryRunReport
from dbguard.sandbox.pgtools import find_binary, run_tool
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl, scrub_libpq_environment
from tests.realschema import load_real_schema
from tests.test_dryrun import LOCK, run

FORMATS: dict[str, Callable[[DryRunReport], str]] = {
    "text": lambda report: dryrun_text.render(report, width=400),
    "markdown": dryrun_markdown.render,
    "html": dryrun_html.render,
    "json": dryrun_json.render,
}
EARLY_COMMIT = "committed before a statement that must run on its own"


def rendered(report: DryRunReport) -> dict[str, str]:
    return {name: render(report) for name, render in FORMATS.items()}


def shown_everywhere(report: DryRunReport, *phrases: str) -> None:
    """Each phrase in the text, Markdown and HTML reports (HTML-escaped there)."""
    out = rendered(report)
    for phrase in phrases:
        assert phrase in out["text"], phrase
        assert phrase in out["markdown"], phrase
        assert escape(phrase) in out["html"], phrase


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def real_pg(pg_url: str) -> str:
    load_real_schema(pg_url)
    return pg_url


# -- 5. what the server says --


def test_a_foreign_key_violation_keeps_the_servers_detail_in_every_format(warehouse_pg: str) -> None:
    report = run(LOCK + "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (999, 1, 5);\n", warehouse_pg)
    failed = report.execution.failed
    assert failed is not None and 'violates foreign key constraint "stock_warehouse_id_fkey"' in (failed.error or "")
    detail = 'Key (warehouse_id)=(999) is not present in table "warehouses".'
    assert failed.error_detail == detail
    shown_everywhere(report, f"detail: {detail}")
    statement = json.loads(dryrun_json.render(report))["statements"][1]
    assert (statement["detail"], statement["hint"], statement["context"]) == (detail, None, None)


def test_a_row_with_no_partition_keeps_the_detail_and_the_rows_written_before_it(real_pg: str) -> None:
    # The UPDATE's trigger writes audit.log: the server's counters show it, per statement and table.
    sql = (
        LOCK + "UPDATE sales.customer SET name = name || '!' WHERE id <= 3;\n"
        "INSERT INTO sales.pay (id, cust_id, store_id, amt, d) VALUES (9999, 1, 1, 5, '2030-06-01');\n"
    )
    report = run(sql, real_pg)
    failed = report.execution.failed
    assert failed is not None and failed.index == 3
    assert failed.error == 'no partition of relation "pay" found for row'
    assert failed.error_detail == "Partition key of the failing row contains (d) = (2030-06-01)."
    shown_everywhere(report, 'no partition of relation "pay" found for row',
                     "detail: Partition key of the failing row contains (d) = (2030-06-01).")  # fmt: skip

    written = {(index, activity.table): activity for index, activity in dryrun_text.writes(report)}
    assert written[(2, "sales.customer")].updated == 3 and written[(2, "audit.log")].inserted == 3
    out = rendered(report)
    assert re.search(r"^2 +audit\.log +3 +0 +0$", out["text"], re.MULTILINE), out["text"]
    assert "| 2 | `audit.log` | 3 | 0 | 0 |" in out["markdown"]
    assert '<td class="num">2</td><td>audit.log</td><td class="num">3</td>' in out["html"]
    activity = json.loads(out["json"])["statements"][1]["activity"]
    assert {"table": "audit.log", "scans": 0, "inserted": 3, "updated": 0, "deleted": 0} in activity


def test_a_raise_in_a_do_block_keeps_its_detail_hint_and_context(warehouse_pg: str) -> None:
    sql = (
        LOCK + "DO $$\n"
        "BEGIN\n"
        "  IF (SELECT count(*) FROM stock) > 0 THEN\n"
        "    RAISE EXCEPTION 'stock is not empty'\n"
        "      USING DETAIL = 'counted before the purge', HINT = 'run the recount first';\n"
        "  END IF;\n"
        "END $$;\n"
    )
    report = run(sql, warehouse_pg)
    failed = report.execution.failed
    assert failed is not None and failed.error == "stock is not empty"
    assert (failed.error_detail, failed.error_hint) == ("counted before the purge", "run the recount first")
    assert failed.error_context == "PL/pgSQL function inline_code_block line 4 at RAISE"
    shown_everywhere(report, "detail: counted before the purge", "hint: run the recount first",
                     "context: PL/pgSQL function inline_code_block line 4 at RAISE")  # fmt: skip
    statement = json.loads(dryrun_json.render(report))["statements"][1]
    assert statement["hint"] == "run the recount first" and statement["context"].endswith("line 4 at RAISE")


def test_a_deferred_foreign_key_keeps_its_detail_in_the_gate_and_at_commit(warehouse_pg: str) -> None:
    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        conn.execute("ALTER TABLE stock ALTER CONSTRAINT stock_warehouse_id_fkey DEFERRABLE INITIALLY DEFERRED")
    report = run(LOCK + "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (999, 1, 5);\n", warehouse_pg)
    assert report.execution.failed is None  # deferred: the statement itself succeeds
    gates = {gate.result.name: gate for gate in report.checks}
    key = 'Key (warehouse_id)=(999) is not present in table "warehouses".'
    assert gates["deferred constraints"].blocks and key in gates["deferred constraints"].result.detail
    assert gates["commit"].blocks and gates["commit"].result.detail.endswith(f"; detail: {key}")
    shown_everywhere(report, f"detail: {key}")


# -- 6. a dry-run that cannot write --


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_report_says_the_target_was_opened_read_only(
    dialect: str, warehouse_pg: str, warehouse_sqlite: Path
) -> None:
    url = warehouse_pg if dialect == "postgresql" else sqlite_url(warehouse_sqlite)
    report = run(LOCK * (dialect == "postgresql") + "UPDATE stock SET qty = qty WHERE product_id = 1;\n", url)
    assert report.target_read_only and report.verdict == "SAFE"
    shown_everywhere(report, "target opened read-only")
    assert json.loads(dryrun_json.render(report))["target_read_only"] is True


def test_a_write_through_the_dry_runs_target_sessions_fails(warehouse_pg: str, warehouse_sqlite: Path) -> None:
    # The dry-run reads the target through open_target(read_only=True), and pg_dump with libpq_env(read_only=True).
    target = open_target(DatabaseUrl.parse(warehouse_pg), read_only=True)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            target.conn.execute("DELETE FROM reservations")
    finally:
        target.close()
    sqlite_target = open_target(DatabaseUrl.parse(sqlite_url(warehouse_sqlite)), read_only=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            sqlite_target.conn.execute("DELETE FROM reservations")
    finally:
        sqlite_target.close()
    url = DatabaseUrl.parse(warehouse_pg)
    psql = find_binary("psql")
    with pytest.raises(ConnectionFailure, match="read-only transaction"):
        environment = {**scrub_libpq_environment(), **url.libpq_env(read_only=True)}
        run_tool([psql, "-X", "-c", "DELETE FROM reservations"], environment, "writing with pg_dump's environment")
    with psycopg.connect(warehouse_pg) as conn:
        row = conn.execute("SELECT count(*) FROM reservations").fetchone()
    assert row is not None and row[0] > 0


# -- 8. reports a reviewer can read --

SHORT = "DELETE FROM reservations r USING orders o\nWHERE r.order_id = o.id\n  AND o.status = 'cancelled'"
LONG = (
    "UPDATE stock\n   SET qty = qty\n WHERE warehouse_id = 1\n   AND product_id IN (\n     SELECT id FROM products\n)"
)


def test_markdown_and_html_show_the_whole_statement(warehouse_pg: str) -> None:
    report = run(f"{LOCK}{SHORT};\n{LONG};\n", warehouse_pg)
    assert report.execution.failed is None
    out = rendered(report)
    one_line = "DELETE FROM reservations r USING orders o WHERE r.order_id = o.id AND o.status = 'cancelled'"
    assert f"| 2 | 2 | `{one_line}` |" in out["markdown"]
    assert f"<pre>{escape(SHORT)}</pre>" in out["html"]
    # Long: its first line in the table, the whole of it collapsed below (Markdown) or in the cell (HTML).
    assert "| 3 | 5 | `UPDATE stock` … |" in out["markdown"]
    assert (
        f"<details><summary>Statement 3 (line 5), 6 lines</summary>\n\n```sql\n{LONG}\n```\n\n</details>"
        in (out["markdown"])
    )
    assert f"<details><summary><code>UPDATE stock</code> …</summary><pre>{escape(LONG)}</pre></details>" in out["html"]
    statements = json.loads(out["json"])["statements"]
    assert [s["sql"] for s in statements[1:]] == [SHORT, LONG]
    assert statements[1]["text"] == "DELETE FROM reservations r USING orders o"


LONG_NAME = "inventory_adjustments_pending_review_by_regional_managers"


def test_text_never_breaks_a_name_nor_wraps_a_source_line(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {LONG_NAME} (id int PRIMARY KEY, qty int, note text)")
        conn.execute(f"INSERT INTO {LONG_NAME} SELECT i, i, 'n' FROM generate_series(1, 20) i")
    sql = (
        LOCK + f"DELETE FROM {LONG_NAME} WHERE note <> 'a literal long enough to push this source line past the "
        "terminal';\n"
    )
    report = run(sql, pg_url)
    assert any(f.rule_id == "limit-delete-percent" for f in report.findings)  # a finding, with its code frame
    width = 60
    output = dryrun_text.render(report, width=width)
    lines = output.splitlines()
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    # A piece of a name or keyword is its start, cut with "…" (never its end on the next line, never cropped).
    words = {LONG_NAME, "EXCLUSIVE"}
    for match in re.finditer(r"[A-Za-z_]{3,}", output):
        piece = match.group()
        whole = [word for word in words if piece in word and piece != word]
        if whole and piece not in words:
            assert output[match.end()] == "…" and any(w.startswith(piece) for w in whole), (piece, whole)
    framed = [line for line in lines if re.match(r"  > +\d+ \| ", line)]
    assert framed and all(line.endswith("…") for line in framed), framed
    assert not any(line.startswith("terminal") or "terminal';" in line for line in lines)


def test_offending_rows_carry_their_column_names_on_postgresql(warehouse_pg: str) -> None:
    invariant = Invariant(
        "stock stays small", kind="sql", sql="SELECT warehouse_id, product_id, qty FROM stock WHERE qty > 1000"
    )
    policy = Policy(invariants=(invariant,))
    sql = (
        LOCK + "ALTER TABLE stock DISABLE TRIGGER ALL;\n"
        "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (999, 1, 5);\n"
        "ALTER TABLE stock ENABLE TRIGGER ALL;\n"
        "UPDATE stock SET qty = 7777 WHERE warehouse_id = 2 AND product_id = 1;\n"
    )
    report = run(sql, warehouse_pg, policy)
    gates = {gate.result.name: gate.result for gate in report.checks}
    assert gates["foreign keys hold"].detail.endswith("e.g. warehouse_id=999")
    shown_everywhere(report, "foreign key=public.stock.stock_warehouse_id_fkey, warehouse_id=999",
                     "warehouse_id=2, product_id=1, qty=7777")  # fmt: skip
    for text in rendered(report).values():
        assert "(999,)" not in text
    checks = {c["name"]: c for c in json.loads(dryrun_json.render(report))["checks"]}
    assert checks["foreign keys hold"]["sample"] == [
        {"foreign key": "public.stock.stock_warehouse_id_fkey", "warehouse_id": 999}
    ]
    assert checks["stock stays small"]["columns"] == ["warehouse_id", "product_id", "qty"]
    assert checks["stock stays small"]["sample"] == [{"warehouse_id": 2, "product_id": 1, "qty": 7777}]


def test_offending_rows_carry_their_column_names_on_sqlite(warehouse_sqlite: Path) -> None:
    invariant = Invariant(
        "no empty warehouse", kind="sql", sql="SELECT id AS warehouse, code FROM warehouses WHERE id = 2"
    )
    policy = Policy(invariants=(invariant,))
    # Deferred foreign keys let the DELETE through; the gate's foreign_key_check then finds the orphans.
    report = run("PRAGMA defer_foreign_keys = ON;\nDELETE FROM warehouses WHERE id = 3;\n",
                 sqlite_url(warehouse_sqlite), policy)  # fmt: skip
    gates = {gate.result.name: gate.result for gate in report.checks}
    assert gates["foreign keys hold"].columns == ("table", "rowid", "parent")
    first = gates["foreign keys hold"].sample[0]
    shown_everywhere(report, f"table={first[0]}, rowid={first[1]}, parent=warehouses", "warehouse=2, code=")
    assert "FOREIGN KEY constraint failed" in gates["commit"].detail
    checks = {c["name"]: c for c in json.loads(dryrun_json.render(report))["checks"]}
    assert checks["foreign keys hold"]["sample"][0] == {"table": first[0], "rowid": first[1], "parent": "warehouses"}
    assert list(checks["no empty warehouse"]["sample"][0]) == ["warehouse", "code"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_early_commit_note_only_when_something_ran_before_the_separate_step(
    dialect: str, warehouse_pg: str, warehouse_sqlite: Path
) -> None:
    url, vacuum = (warehouse_pg, "VACUUM stock;\n") if dialect == "postgresql" else (
        sqlite_url(warehouse_sqlite), "VACUUM;\n")  # fmt: skip
    update = "UPDATE stock SET qty = qty WHERE product_id = 1;\n"
    first = run(vacuum + update, url)
    assert first.execution.failed is None and first.execution.committed_steps == 0
    assert not any(EARLY_COMMIT in note for note in first.notes)
    assert "committed early" not in dryrun_text.render(first)
    after = run(update + vacuum, url)
    assert after.execution.failed is None and after.execution.committed_steps == 1
    assert any(note.startswith(f"1 transaction(s) {EARLY_COMMIT}") for note in after.notes)
