"""The SQLite target, against real SQLite files built by the warehouse fixture."""

from __future__ import annotations

import hashlib
import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure
from dbguard.targets.model import SchemaChange
from dbguard.targets.sqlite import SqliteTarget, connect
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import make_sqlite_warehouse

WAREHOUSE_TABLES = ["order_lines", "orders", "products", "reservations", "stock", "warehouses"]


def url_of(path: Path) -> DatabaseUrl:
    return DatabaseUrl.parse(f"sqlite:///{path}")


@pytest.fixture
def target(warehouse_sqlite: Path) -> Iterator[SqliteTarget]:
    opened = connect(url_of(warehouse_sqlite))
    yield opened
    opened.close()


# -- connecting --


def test_missing_file_is_a_connection_failure_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ConnectionFailure, match=r"SQLite database .*nope\.db does not exist") as raised:
        connect(url_of(missing))
    assert raised.value.exit_code == 4
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_a_connection_failure(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some text that happens to be long enough" * 20)
    with pytest.raises(ConnectionFailure, match=r"garbage\.db is not a usable SQLite database: file is not a"):
        connect(url_of(garbage))


def test_a_directory_is_a_connection_failure(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailure, match="SQLite database"):
        connect(url_of(tmp_path))


def test_a_path_with_spaces_and_uri_characters_opens_the_right_file(tmp_path: Path) -> None:
    folder = tmp_path / "odd # naïve &mode=ro"
    folder.mkdir()
    path = make_sqlite_warehouse(folder / "w.db")
    opened = connect(url_of(path))
    assert opened.table_sizes(["stock"])["stock"].estimated_rows == 120
    opened.close()
    assert sorted(p.name for p in folder.iterdir()) == ["w.db"]


def test_connection_leaves_transactions_to_the_caller_and_enforces_foreign_keys(target: SqliteTarget) -> None:
    assert target.conn.isolation_level is None
    assert target.conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    target.table_stats(["stock"])
    assert not target.conn.in_transaction  # reading opened no transaction of its own
    target.conn.execute("BEGIN IMMEDIATE")
    target.table_stats(["stock"])
    target.integrity_checks([])
    assert target.conn.in_transaction  # ... and closed none of the caller's
    target.conn.execute("ROLLBACK")


def test_identity(target: SqliteTarget) -> None:
    assert target.dialect is Dialect.SQLITE
    assert target.server_version == sqlite3.sqlite_version
    assert target.server_major == 3


# -- names and sizes --


def test_resolve_is_case_insensitive_and_leaves_unknown_names_out(target: SqliteTarget) -> None:
    names = ["STOCK", "main.Orders", '"products"', "nope", "main.nope"]
    assert target.resolve(names) == {"STOCK": "stock", "main.Orders": "orders", '"products"': "products"}


def test_canonical_names_keep_the_case_they_were_created_with(tmp_path: Path) -> None:
    path = tmp_path / "mixed.db"
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "StockLevels" (id INTEGER PRIMARY KEY)')
    opened = connect(url_of(path))
    assert opened.resolve(["stocklevels"]) == {"stocklevels": "StockLevels"}
    assert opened.all_tables() == ["StockLevels"]
    opened.close()


def test_all_tables_leaves_out_sqlite_internal_tables(target: SqliteTarget) -> None:
    target.conn.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER)")
    target.conn.execute("INSERT INTO counters (n) VALUES (1)")
    target.conn.execute("ANALYZE")  # sqlite_stat1
    internal = {name for (name,) in target.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sqlite_sequence", "sqlite_stat1"} <= internal
    assert target.all_tables() == sorted([*WAREHOUSE_TABLES, "counters"])


def test_table_sizes_count_rows_exactly(target: SqliteTarget) -> None:
    sizes = target.table_sizes(["stock", "Products", "nope"])
    assert set(sizes) == {"stock", "products"}
    assert sizes["stock"].estimated_rows == 120
    assert sizes["products"].estimated_rows == 40
    assert sizes["stock"].bytes is not None and sizes["stock"].bytes >= 4096


# -- schema --


def test_schema_columns_constraints_and_indexes(target: SqliteTarget) -> None:
    schema = target.schema()
    assert sorted(schema.tables) == WAREHOUSE_TABLES
    qty = {c.name: c for c in schema.tables["stock"]}["qty"]
    assert (qty.type, qty.nullable, qty.default) == ("INTEGER", False, None)
    reserved = {c.name: c for c in schema.tables["stock"]}["reserved"]
    assert reserved.default == "0"
    constraints = {key: (c.kind, c.definition) for key, c in schema.constraints.items()}
    assert constraints["stock.stock_pkey"] == ("primary", "PRIMARY KEY (warehouse_id, product_id)")
    assert constraints["reservations.reservations_warehouse_id_product_id_fkey"] == (
        "foreign", "FOREIGN KEY (warehouse_id, product_id) REFERENCES stock (warehouse_id, product_id)")  # fmt: skip
    assert constraints["order_lines.order_lines_order_id_fkey"] == (
        "foreign", "FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE")  # fmt: skip
    assert constraints["products.products_sku_key"] == ("unique", "UNIQUE (sku)")
    assert constraints["stock.stock_check"] == ("check", "CHECK (qty >= 0), CHECK (reserved >= 0 AND reserved <= qty)")
    assert constraints["orders.orders_check"] == ("check", "CHECK (status IN ('open', 'shipped', 'cancelled'))")
    assert all(c.valid for c in schema.constraints.values())
    assert "automatic index" in schema.indexes["sqlite_autoindex_products_1"].definition
    assert all(i.valid for i in schema.indexes.values())


def test_schema_diff_after_add_column_and_create_index(target: SqliteTarget) -> None:
    before = target.schema()
    assert before.diff(target.schema()) == []
    target.conn.execute("ALTER TABLE stock ADD COLUMN note TEXT DEFAULT 'n/a'")
    target.conn.execute("CREATE INDEX stock_qty ON stock (qty)")
    assert before.diff(target.schema()) == [
        SchemaChange("column added", "stock.note", after="TEXT DEFAULT 'n/a'"),
        SchemaChange("index added", "stock_qty", after="CREATE INDEX stock_qty ON stock (qty)"),
    ]


def test_check_clauses_ignore_the_word_check_in_names_strings_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "checks.db"
    with sqlite3.connect(path) as conn:
        conn.execute("""CREATE TABLE audit (
            check_date TEXT DEFAULT 'check (nothing)', -- check (not this one either)
            "check" INTEGER /* check (1) */ CONSTRAINT positive CHECK ("check" > (0)),
            kind TEXT CHECK (kind IN ('a', ')')))""")
    opened = connect(url_of(path))
    check = opened.schema().constraints["audit.audit_check"]
    assert check.definition == """CHECK ("check" > (0)), CHECK (kind IN ('a', ')'))"""
    opened.close()


# -- content hashes --


def test_stats_format_and_empty_table(target: SqliteTarget) -> None:
    target.conn.execute("CREATE TABLE empty (id INTEGER)")
    stats = target.table_stats(["stock", "empty"])
    assert stats["stock"].rows == 120
    assert stats["stock"].hash.split(":")[0].isdigit() and len(stats["stock"].hash.split(":")[1]) == 16
    assert (stats["empty"].rows, stats["empty"].hash) == (0, "0:0000000000000000")


def test_stats_hash_is_the_documented_construction(target: SqliteTarget) -> None:
    target.conn.execute("CREATE TABLE pairs (a, b)")
    target.conn.executemany("INSERT INTO pairs VALUES (?, ?)", [(1, "x"), (None, b"\x00"), (2.5, "it's")])
    total, xor = 0, 0
    for (rendered,) in target.conn.execute("SELECT CAST(quote(a) || '|' || quote(b) AS BLOB) FROM pairs"):
        total += int.from_bytes(hashlib.blake2b(rendered, digest_size=8, key=b"dbguard row hash: sum").digest())
        xor ^= int.from_bytes(hashlib.blake2b(rendered, digest_size=8, key=b"dbguard row hash: xor").digest())
    assert target.table_stats(["pairs"])["pairs"].hash == f"{total % 2**64}:{xor:016x}"


def test_stats_do_not_depend_on_row_order(target: SqliteTarget) -> None:
    before = target.table_stats(["order_lines"])["order_lines"]
    target.conn.executescript("""
        BEGIN;
        CREATE TEMP TABLE saved AS SELECT * FROM order_lines;
        DELETE FROM order_lines;
        INSERT INTO order_lines SELECT * FROM saved ORDER BY order_id DESC, line_no DESC;
        COMMIT;""")
    first_rowid = target.conn.execute("SELECT order_id FROM order_lines ORDER BY rowid LIMIT 1").fetchone()
    assert first_rowid == (30,)  # the rows really are stored in another order now
    assert target.table_stats(["order_lines"])["order_lines"] == before


def test_stats_change_with_one_value_and_with_a_type(target: SqliteTarget) -> None:
    before = target.table_stats(["stock"])["stock"]
    target.conn.execute("UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 2 AND product_id = 17")
    changed = target.table_stats(["stock"])["stock"]
    assert changed.rows == before.rows and changed.hash != before.hash
    target.conn.execute("UPDATE stock SET qty = qty - 1 WHERE warehouse_id = 2 AND product_id = 17")
    assert target.table_stats(["stock"])["stock"] == before
    before = target.table_stats(["products"])["products"]
    target.conn.execute("UPDATE products SET name = CAST(name AS BLOB) WHERE id = 1")  # same bytes, other type
    assert target.table_stats(["products"])["products"].hash != before.hash


def test_stats_are_stable_across_calls_and_connections(warehouse_sqlite: Path) -> None:
    first = connect(url_of(warehouse_sqlite))
    second = connect(url_of(warehouse_sqlite))
    tables = first.all_tables()
    assert first.table_stats(tables) == first.table_stats(tables) == second.table_stats(tables)
    first.close()
    second.close()


def test_stats_memory_stays_flat_as_the_table_grows(target: SqliteTarget) -> None:
    target.conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)")
    target.conn.execute("WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 100000) "
                        "INSERT INTO big SELECT value, printf('%0100d', value) FROM n")  # fmt: skip
    tracemalloc.start()
    try:
        stats = target.table_stats(["big"])["big"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.rows == 100_000
    assert peak < 1_000_000  # the rows alone are over 10 MB as Python objects


# -- foreign keys --


def test_foreign_key_closure(target: SqliteTarget) -> None:
    # order_lines needs its parents; nothing references it
    assert target.foreign_key_closure(["ORDER_LINES"]) == {"order_lines", "orders", "products", "warehouses"}
    # stock: its parents, the reservations that reference it, and the orders those reservations need
    assert target.foreign_key_closure(["stock"]) == {"stock", "warehouses", "products", "reservations", "orders"}
    # orders: a delete cascades to order_lines, which need products and warehouses
    assert target.foreign_key_closure(["orders"]) == set(WAREHOUSE_TABLES)
    assert target.foreign_key_closure(["nope"]) == set()


def test_foreign_key_closure_follows_cascades_down_more_than_one_level(target: SqliteTarget) -> None:
    target.conn.execute("CREATE TABLE line_notes (order_id INTEGER, line_no INTEGER, note TEXT, "
                        "FOREIGN KEY (order_id, line_no) REFERENCES order_lines ON DELETE CASCADE)")  # fmt: skip
    assert "line_notes" in target.foreign_key_closure(["orders"])
    fk = target.schema().constraints["line_notes.line_notes_order_id_line_no_fkey"]
    assert fk.definition == ("FOREIGN KEY (order_id, line_no) REFERENCES order_lines (order_id, line_no) "
                             "ON DELETE CASCADE")  # fmt: skip


# -- integrity --


def test_integrity_checks_pass_on_a_clean_database(target: SqliteTarget) -> None:
    results = {r.name: r for r in target.integrity_checks([])}
    assert set(results) == {"integrity_check", "foreign keys hold"}
    assert all(r.passed and not r.skipped for r in results.values())


def _insert_orphans(target: SqliteTarget, count: int) -> None:
    target.conn.execute("PRAGMA foreign_keys = OFF")
    target.conn.executemany("INSERT INTO order_lines VALUES (?, 1, 1, 1, 1)", [(900 + i,) for i in range(count)])
    target.conn.execute("PRAGMA foreign_keys = ON")


def test_an_orphan_row_is_caught_with_a_sample(target: SqliteTarget) -> None:
    _insert_orphans(target, 1)
    results = {r.name: r for r in target.integrity_checks([])}
    assert results["integrity_check"].passed
    fk = results["foreign keys hold"]
    assert not fk.passed and not fk.skipped
    (table, rowid, parent), = fk.sample  # fmt: skip
    assert (table, parent) == ("order_lines", "orders")
    assert target.conn.execute("SELECT order_id FROM order_lines WHERE rowid = ?", (rowid,)).fetchone() == (900,)


def test_restricted_foreign_key_check_covers_the_tables_and_those_referencing_them(target: SqliteTarget) -> None:
    _insert_orphans(target, 1)

    def foreign_keys_hold(tables: list[str]) -> bool:
        return {r.name: r for r in target.integrity_checks(tables)}["foreign keys hold"].passed

    assert not foreign_keys_hold(["order_lines"])
    assert not foreign_keys_hold(["orders"])  # the orphan sits in a table that references orders
    assert foreign_keys_hold(["stock"])


def test_foreign_key_sample_is_limited_to_ten_rows(target: SqliteTarget) -> None:
    _insert_orphans(target, 25)
    fk = {r.name: r for r in target.integrity_checks([])}["foreign keys hold"]
    assert len(fk.sample) == 10
    assert fk.detail.startswith("25 row(s)")


# -- queries --


def test_query_returns_at_most_limit_rows(target: SqliteTarget) -> None:
    assert len(target.query("SELECT * FROM stock", limit=5)) == 5
    assert target.query("SELECT count(*) FROM stock") == [(120,)]
    assert target.query("SELECT * FROM stock WHERE qty < 0") == []


def test_query_cannot_write(target: SqliteTarget) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        target.query("DELETE FROM stock")
    assert target.query("SELECT count(*) FROM stock") == [(120,)]
    target.conn.execute("DELETE FROM reservations")  # the connection itself can still write
    assert target.query("SELECT count(*) FROM reservations") == [(0,)]
