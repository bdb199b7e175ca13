"""`check --db` and `check --stats` against real PostgreSQL 15 and SQLite (issue 12 §1): findings are sized
from the real catalog, the same with a stats file as with the database, the target is only read, and a
stats file holds no data and no password."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.errors import UsageError
from dbguard.policy.policy import parse_policy
from tests.realschema import PARTITIONS, load_real_schema
from tests.warehouse import scratch_database

runner = CliRunner()

_SCHEMA = """
CREATE TABLE stock (id bigint PRIMARY KEY, sku varchar(20) NOT NULL, qty int, region text, code char(8));
INSERT INTO stock SELECT i, 'S' || i, i % 100, CASE WHEN i % 3 = 0 THEN NULL ELSE 'zz-region-secret' END, 'c'
  FROM generate_series(1, 150000) i;
CREATE TABLE mid (id int PRIMARY KEY, note text);
INSERT INTO mid SELECT i, 'n' FROM generate_series(1, 20000) i;
CREATE TABLE tiny (id int PRIMARY KEY, label varchar(20), amount int);
INSERT INTO tiny SELECT i, 'l' || i, i FROM generate_series(1, 50) i;
"""
_SCRIPT = """\
CREATE INDEX stock_qty ON stock (qty);
CREATE INDEX mid_note ON mid (note);
CREATE INDEX tiny_label ON tiny (label);
ALTER TABLE stock ALTER COLUMN sku TYPE text;
ALTER TABLE stock ALTER COLUMN qty TYPE bigint;
UPDATE stock SET region = 'eu' WHERE region IS NULL;
UPDATE stock SET region = 'eu' WHERE id = 5;
UPDATE stokc SET qty = 0 WHERE id = 1;
CREATE TABLE fresh (id int);
INSERT INTO fresh VALUES (1);
SELECT count(*) FROM sales.pay;
"""


@pytest.fixture(scope="module")
def sized_pg() -> Iterator[str]:
    """A database with a 150k-row table, a 20k-row one, a 50-row one and tests/realschema.py, analyzed."""
    with scratch_database("dbguard_stats") as url:
        load_real_schema(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_SCHEMA)
            conn.execute("ANALYZE")
        yield url


def _check(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = runner.invoke(app, ["check", *args, "--format", "json"])
    findings = json.loads(result.stdout)["files"][0]["findings"] if result.exit_code in (0, 1) else []
    return result.exit_code, findings, result.stdout + result.stderr


def _by_line(findings: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(f["line"], f["rule"]): f for f in findings}


def _target_state(url: str) -> tuple[Any, ...]:
    """What any write would change: rows and content of the big table, every relfilenode, the write counters."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        rows = conn.execute("SELECT count(*), sum(hashtextextended(s::text, 0)) FROM stock s").fetchone()
        files = conn.execute("SELECT string_agg(relname || ':' || relfilenode, ',' ORDER BY relname) FROM pg_class "
                             "WHERE relnamespace >= 2200").fetchone()  # fmt: skip
        writes = conn.execute("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del), count(*) FROM pg_stat_user_tables"
                              ).fetchone()  # fmt: skip
        return rows, files, writes


def test_check_db_sizes_findings_and_stats_file_gives_the_same(sized_pg: str, tmp_path: Path) -> None:
    script = tmp_path / "change.sql"
    script.write_text(_SCRIPT)
    before = _target_state(sized_pg)
    code, live, output = _check(str(script), "--db", sized_pg)
    assert code == 1, output
    found = _by_line(live)
    # lock-taking DDL: error above large_table_rows, the rule's own (error) between, warning below small
    assert found[(1, "require-concurrent-index-creation")]["severity"] == "error"
    assert "(stock: ~150k rows, " in found[(1, "require-concurrent-index-creation")]["message"]
    assert found[(2, "require-concurrent-index-creation")]["severity"] == "error"
    assert "(mid: ~20k rows, " in found[(2, "require-concurrent-index-creation")]["message"]
    assert found[(3, "require-concurrent-index-creation")]["severity"] == "warning"
    assert "(tiny: 50 rows, " in found[(3, "require-concurrent-index-creation")]["message"]
    # type changes decided from the real type: varchar(20) -> text rewrites nothing, integer -> bigint does
    assert (4, "ban-column-type-change") not in found
    assert "from integer to bigint" in found[(5, "ban-column-type-change")]["message"]
    assert found[(5, "ban-column-type-change")]["severity"] == "error"
    # an IS NULL backfill on the large table is batched; an indexed equality is not
    assert found[(6, "prefer-batched-update")]["severity"] == "warning"
    assert "LIMIT 10000 FOR UPDATE SKIP LOCKED" in found[(6, "prefer-batched-update")]["help"]
    assert not [key for key in found if key[0] == 7]
    # a typo is a finding; a table the script created earlier is not missing; a partitioned table is known
    assert "stokc does not exist" in found[(8, "require-existing-table")]["message"]
    assert "Did you mean 'stock'?" in found[(8, "require-existing-table")]["help"]
    assert not [key for key in found if key[0] in (9, 10, 11) and key[1] == "require-existing-table"]

    stats = tmp_path / "stats.json"
    result = runner.invoke(app, ["stats", "--db", sized_pg, "--output", str(stats)])
    assert result.exit_code == 0, result.output
    code_from_file, from_file, _ = _check(str(script), "--stats", str(stats))
    assert (code_from_file, from_file) == (code, live)
    _, offline, _ = _check(str(script))
    assert {f["rule"] for f in offline}.isdisjoint({"prefer-batched-update", "require-existing-table"})
    assert all("rows" not in f["message"] for f in offline)
    assert _target_state(sized_pg) == before, "check --db and stats wrote to the target"


def test_stats_file_holds_no_data_and_no_password(sized_pg: str, tmp_path: Path) -> None:
    with_password = sized_pg.replace("postgres@", "postgres:hunter2-not-shown@")  # trust auth ignores it
    result = runner.invoke(app, ["stats", "--db", with_password])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "hunter2" not in text and "hunter2" not in result.output
    for value in ("zz-region-secret", "S149999", "Lisboa", "customer 7", "Fall 3"):  # row values of the tables
        assert value not in text
    document = json.loads(text)
    assert document["dbguard_stats"] == 1 and document["source"] == sized_pg
    stock = next(t for t in document["tables"] if t["name"] == "stock")
    assert abs(stock["estimated_rows"] - 150000) < 1500 and stock["total_bytes"] > 1_000_000
    assert {"name": "sku", "type": "character varying(20)", "not_null": True} in stock["columns"]
    assert [i["columns"] for i in stock["indexes"]] == [["id"]] and stock["indexes"][0]["unique"]


def test_partitioned_table_is_the_sum_of_its_partitions(sized_pg: str) -> None:
    from dbguard.catalog.read import read_catalog
    from dbguard.targets.url import DatabaseUrl

    catalog = read_catalog(DatabaseUrl.parse(sized_pg), ["sales"])
    pay = catalog.tables["sales.pay"]
    leaves = [catalog.tables[name] for name in PARTITIONS]
    assert pay.partitioned and pay.partitions == PARTITIONS
    assert pay.estimated_rows == sum(t.estimated_rows or 0 for t in leaves) == 1400
    assert pay.total_bytes == sum(t.total_bytes or 0 for t in leaves) > 0
    assert {i.name for i in pay.indexes} == {"pay_id_d"} and pay.indexes[0].columns == ("id", "d")
    assert "public.stock" not in catalog.tables  # --schema sales
    assert catalog.relations["sales.open_pay"] == "view"


def test_type_change_is_decided_from_the_real_type_as_the_server_rewrites(sized_pg: str, tmp_path: Path) -> None:
    """The finding matches what the server does: relfilenode kept (no rewrite) or replaced (rewrite)."""
    script = tmp_path / "types.sql"
    with scratch_database("dbguard_types") as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a varchar(20), b varchar(10), c numeric(8,2), d cidr, e int, f varchar(5));"
                     "INSERT INTO t VALUES ('x', 'y', 1.5, '10.0.0.0/8', 1, 'z'); ANALYZE t")  # fmt: skip
        cases = {"a": "text", "b": "varchar(40)", "c": "numeric", "d": "inet", "e": "bigint", "f": "varchar(2)"}
        script.write_text("".join(f"ALTER TABLE t ALTER COLUMN {c} TYPE {t};\n" for c, t in cases.items()))
        _, findings, output = _check(str(script), "--db", url)
        flagged = {f["line"] for f in findings if f["rule"] == "ban-column-type-change"}
        for line, (column, new_type) in enumerate(cases.items(), 1):
            before = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
            conn.execute(f"ALTER TABLE t ALTER COLUMN {column} TYPE {new_type}")
            rewrote = conn.execute("SELECT pg_relation_filenode('t')").fetchone() != before
            assert (line in flagged) == rewrote, f"{column} -> {new_type}: rewrote={rewrote}\n{output}"
    assert flagged == {5, 6}


def test_sqlite_check_db_and_stats(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, customer_id INTEGER);
        CREATE INDEX orders_customer ON orders (customer_id);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
        INSERT INTO orders SELECT i, CASE WHEN i % 2 THEN 'secret-region-value' END, i % 100 FROM n;
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE VIEW open_orders AS SELECT * FROM orders WHERE region IS NULL;
    """)
    conn.commit()
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    script = tmp_path / "backfill.sql"
    script.write_text("UPDATE orders SET region = 'eu' WHERE region IS NULL;\n"
                      "UPDATE orders SET region = 'eu' WHERE customer_id = 7;\n"
                      "DELETE FROM ordrs WHERE id = 1;\n"
                      "SELECT count(*) FROM open_orders;\n")  # fmt: skip
    url = f"sqlite:///{path}"
    code, live, output = _check(str(script), "--db", url)
    found = _by_line(live)
    assert code == 1, output
    assert found[(1, "prefer-batched-update")]["severity"] == "warning"
    assert "(orders: 120000 rows" in found[(1, "prefer-batched-update")]["message"].replace("~120k", "120000")
    assert "rowid IN (SELECT rowid FROM orders WHERE region IS NULL LIMIT 10000)" in found[
        (1, "prefer-batched-update")]["help"]  # fmt: skip
    assert not [key for key in found if key[0] in (2, 4)]
    assert "ordrs does not exist" in found[(3, "require-existing-table")]["message"]
    stats = tmp_path / "stats.json"
    assert runner.invoke(app, ["stats", "--db", url, "-o", str(stats)]).exit_code == 0
    assert "secret-region-value" not in stats.read_text()
    assert _check(str(script), "--stats", str(stats))[:2] == (code, live)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, "the SQLite target changed"
    # a PostgreSQL script against SQLite statistics is a usage error, not a silent guess
    result = runner.invoke(app, ["check", str(script), "--stats", str(stats), "--dialect", "postgres"])
    assert result.exit_code == 2 and "statistics are of a sqlite database" in result.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json {", "not a dbguard stats file: not JSON"),
        ('{"tables": []}', "not a dbguard stats file (write one with: dbguard stats --db URL)"),
        ('{"dbguard_stats": 99}', "stats format 99; this dbguard reads format 1"),
        ('{"dbguard_stats": 1, "dialect": "postgres"}', "not a valid dbguard stats file: missing field"),
        (
            '{"dbguard_stats": 1, "dialect": "postgres", "source": "x", "server_version": "15", "taken_at": "t", '
            '"relations": [], "tables": [{"schema": "public", "name": "t", "estimated_rows": -5}]}',
            "whole number",
        ),
    ],
)
def test_malformed_stats_file_is_a_one_line_usage_error(tmp_path: Path, content: str, says: str) -> None:
    stats = tmp_path / "stats.json"
    stats.write_text(content)
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    result = runner.invoke(app, ["check", str(script), "--stats", str(stats)])
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_missing_stats_file_and_both_sources_are_usage_errors(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    missing = runner.invoke(app, ["check", str(script), "--stats", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read stats file" in missing.output
    both = runner.invoke(app, ["check", str(script), "--stats", "a.json", "--db", "sqlite:///x.db"])
    assert both.exit_code == 2 and "not both" in both.output


def test_thresholds_are_validated() -> None:
    # a UsageError (one line, exit 2), not a bare ValueError, which the CLI would show as an internal error
    with pytest.raises(UsageError, match=r"small_table_rows \(500000\) must not be above"):
        parse_policy("[thresholds]\nsmall_table_rows = 500000\n", "p.toml")
    with pytest.raises(UsageError, match="large_table_rows must be a non-negative whole number"):
        parse_policy('[thresholds]\nlarge_table_rows = "big"\n', "p.toml")


def test_a_rule_severity_the_policy_sets_is_not_resized() -> None:
    from dbguard.dialects import Dialect
    from dbguard.pipeline.check import check_text
    from tests.catalogs import catalog_of

    catalog = catalog_of([{"name": "big", "rows": 5_000_000}, {"name": "small", "rows": 10}])
    sql = "CREATE INDEX big_a ON big (a);\nCREATE INDEX small_a ON small (a);\n"
    default = check_text(sql, Dialect.POSTGRES, parse_policy("", "default.toml"), catalog=catalog).findings
    chosen = parse_policy('[rules]\nrequire-concurrent-index-creation = "warning"\n', "p.toml")
    own = check_text(sql, Dialect.POSTGRES, chosen, catalog=catalog).findings
    rule = "require-concurrent-index-creation"
    assert [f.severity.value for f in default if f.rule_id == rule] == ["error", "warning"]
    assert [f.severity.value for f in own if f.rule_id == rule] == ["warning", "warning"]
    # data-loss rules are never lowered by size
    loss = check_text(
        "SET lock_timeout = '2s';\nDROP TABLE small;\n", Dialect.POSTGRES, parse_policy("", "d.toml"), catalog=catalog
    ).findings
    assert [(f.rule_id, f.severity.value) for f in loss] == [("ban-drop-table", "error")]
    assert "(small: 10 rows, 80 kB)" in loss[0].message


def test_stats_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    sqlite3.connect(path).close()
    schema = runner.invoke(app, ["stats", "--db", f"sqlite:///{path}", "--schema", "sales"])
    assert schema.exit_code == 2 and "--schema selects PostgreSQL schemas" in schema.output
    mysql = runner.invoke(app, ["stats", "--db", "mysql://root@127.0.0.1:3306/shop"])
    assert mysql.exit_code == 2 and "unsupported database 'mysql'" in mysql.output
    missing = runner.invoke(app, ["stats", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert missing.exit_code == 4 and not (tmp_path / "none.db").exists()


def test_names_resolve_like_the_server_does(sized_pg: str, tmp_path: Path) -> None:
    """Quoted and non-ASCII names, other schemas, search_path, partitions and views: no false missing table."""
    script = tmp_path / "names.sql"
    script.write_text(
        'UPDATE "Kundendienst"."Fälle" SET "Größe" = \'L\' WHERE "Nr" = 1;\n'
        "SET search_path = sales, public;\n"
        "UPDATE pay_2023 SET amt = 0 WHERE id = 1;\n"
        "SELECT * FROM open_pay, stock WHERE open_pay.id = stock.id;\n"
        'SELECT nextval(\'"Kundendienst"."Fall_Nr"\');\n'
        "UPDATE customer SET name = 'x' WHERE id = 1;\n"
        'UPDATE "Kundendienst"."Falle" SET "Größe" = \'L\' WHERE "Nr" = 1;\n'
        "UPDATE Stock SET qty = 1 WHERE id = 1;\n"
        'UPDATE "Stock" SET qty = 1 WHERE id = 1;\n'
    )
    _, findings, output = _check(str(script), "--db", sized_pg)
    missing = sorted((f["line"], f["message"].split(" does not exist")[0]) for f in findings
                     if f["rule"] == "require-existing-table")  # fmt: skip
    assert missing == [(7, "Kundendienst.Falle"), (9, "Stock")], output


def test_a_never_analyzed_table_keeps_the_rules_severity(tmp_path: Path) -> None:
    """reltuples is -1 until the first ANALYZE or VACUUM: a table with pages is of unknown size (the rule's
    own severity, as offline); one without a page is empty."""
    with scratch_database("dbguard_unanalyzed") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE filled (id int, a int); CREATE TABLE empty (id int);"
                         "INSERT INTO filled SELECT i, i FROM generate_series(1, 5000) i")  # fmt: skip
        script = tmp_path / "idx.sql"
        script.write_text("CREATE INDEX filled_a ON filled (a);\nCREATE INDEX empty_id ON empty (id);\n")
        _, findings, output = _check(str(script), "--db", url)
    found = _by_line(findings)
    assert found[(1, "require-concurrent-index-creation")]["severity"] == "error", output
    assert "(filled: unknown rows (never analyzed), " in found[(1, "require-concurrent-index-creation")]["message"]
    assert found[(2, "require-concurrent-index-creation")]["severity"] == "warning"
    assert "(empty: 0 rows, 0 bytes)" in found[(2, "require-concurrent-index-creation")]["message"]
