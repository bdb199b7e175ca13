"""A script wrapped in its own BEGIN ... COMMIT (sqitch deploy scripts, `sqlite3 .dump`), run for real on
PostgreSQL 15 and SQLite: check lets it through, run does not send the wrapper, so the script's COMMIT cannot
commit before dbguard's integrity gate (a failing invariant still rolls everything back, proved), and a
script that holds commits all of it. A COMMIT in the middle is still refused by check and never run.
A SAVEPOINT the script releases runs as written, nested in dbguard's transaction: its RELEASE commits
nothing (a failing invariant still rolls it back, on SQLite too, where releasing an outermost savepoint
would commit).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from dbguard.dialects import Dialect
from dbguard.journal import Transaction
from dbguard.run import commit_or_rollback
from dbguard.run.wrapper import DBGUARD_SAVEPOINT, released_savepoints, transaction_wrapper
from dbguard.sql.parse import parse_script
from tests.conftest import fired
from tests.test_run import Runs, assert_rolled_back_and_proved, content, query, sql_invariant

WRAPPED = """-- Deploy warehouse:stock-fix to pg
BEGIN;
UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;
UPDATE stock SET reserved = 0 WHERE warehouse_id = 1 AND reserved > qty;
COMMIT;
"""


def test_the_wrapper_is_the_first_and_last_statement_of_one_step() -> None:
    script = parse_script(WRAPPED, Dialect.POSTGRES, "deploy.sql")
    assert transaction_wrapper(script) == {1, 4}
    assert "ban-transaction-control" not in fired(WRAPPED)
    for cut in ("BEGIN;\nUPDATE stock SET qty = 0 WHERE id = 1;\nCOMMIT;\nUPDATE stock SET qty = 1 WHERE id = 2;",
                "BEGIN;\nUPDATE stock SET qty = 0 WHERE id = 1;\n-- dbguard: step\nSELECT 1;\nCOMMIT;"):  # fmt: skip
        assert not transaction_wrapper(parse_script(cut, Dialect.POSTGRES, "x.sql"))
        assert "ban-transaction-control" in fired(cut)


def test_postgres_a_wrapped_script_commits_after_the_gate(warehouse_pg: str, tmp_path: Path) -> None:
    runs = Runs(warehouse_pg, tmp_path)
    report = runs.run(WRAPPED)
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert query(warehouse_pg, "SELECT count(*) FROM stock WHERE warehouse_id = 1 AND qty = 11 + product_id % 50") == [
        (40,)]  # fmt: skip
    statements = runs.outcome(report)["statements"]
    assert [(s["kind"], s["rows"]) for s in statements][0::3] == [("BEGIN", None), ("COMMIT", None)]
    assert statements[1]["rows"] == 40


def test_postgres_the_scripts_own_commit_cannot_get_past_a_failing_invariant(warehouse_pg: str,
                                                                            tmp_path: Path) -> None:  # fmt: skip
    before = content(warehouse_pg)
    runs = Runs(warehouse_pg, tmp_path)
    report = runs.run(
        WRAPPED,
        invariants=sql_invariant("warehouse 1 at most 50", "SELECT * FROM stock WHERE warehouse_id = 1 AND qty > 50"),
    )
    assert_rolled_back_and_proved(report)
    assert content(warehouse_pg) == before


def test_sqlite_a_dump_style_wrapper_commits(warehouse_sqlite: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{warehouse_sqlite}"
    sql = ("-- dbguard: dialect=sqlite\nBEGIN TRANSACTION;\nUPDATE stock SET qty = 7 WHERE product_id = 1;\n"
           "COMMIT;\n")  # fmt: skip
    report = Runs(url, tmp_path).run(sql)
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    with closing(sqlite3.connect(warehouse_sqlite)) as conn:
        assert conn.execute("SELECT DISTINCT qty FROM stock WHERE product_id = 1").fetchall() == [(7,)]


SAVEPOINTS = "SAVEPOINT fix_stock;\nUPDATE stock SET qty = 1000 WHERE product_id = 1;\nRELEASE SAVEPOINT fix_stock;\n"


def test_released_savepoints_and_the_name_run_uses() -> None:
    assert DBGUARD_SAVEPOINT == commit_or_rollback.SAVEPOINT
    assert released_savepoints(parse_script(SAVEPOINTS, Dialect.POSTGRES, "x.sql")) == {1, 3}
    assert "ban-transaction-control" not in fired(SAVEPOINTS)


def test_postgres_a_released_savepoint_commits_nothing_before_the_gate(warehouse_pg: str, tmp_path: Path) -> None:
    before = content(warehouse_pg)
    invariant = sql_invariant("qty below 1000", "SELECT * FROM stock WHERE qty >= 1000")
    assert_rolled_back_and_proved(Runs(warehouse_pg, tmp_path).run(SAVEPOINTS, invariants=invariant))
    assert content(warehouse_pg) == before
    report = Runs(warehouse_pg, tmp_path).run(SAVEPOINTS.replace("1000", "7"))
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert query(warehouse_pg, "SELECT DISTINCT qty FROM stock WHERE product_id = 1") == [(7,)]


def test_sqlite_a_released_savepoint_commits_nothing_before_the_gate(warehouse_sqlite: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{warehouse_sqlite}"
    before = content(url)
    sql = "-- dbguard: dialect=sqlite\n" + SAVEPOINTS.replace("RELEASE SAVEPOINT", "RELEASE")
    invariant = sql_invariant("qty below 1000", "SELECT * FROM stock WHERE qty >= 1000")
    assert_rolled_back_and_proved(Runs(url, tmp_path).run(sql, invariants=invariant))
    assert content(url) == before
