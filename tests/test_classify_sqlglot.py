"""The SQLite and MySQL classifier: real SQL through sqlglot, checked against the normalized model."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from dbguard.dialects import Dialect
from dbguard.sql.classify_sqlglot import classify
from dbguard.sql.model import Action, Facts

logging.getLogger("sqlglot").setLevel(logging.ERROR)

S, M = Dialect.SQLITE, Dialect.MYSQL
NO_WHERE: dict[str, Any] = {"has_where": False, "where": None}


def act(kind: str, table: str | None = None, column: str | None = None, **details: Any) -> tuple[Any, ...]:
    """An expected action; only the details given are compared (a `where` as its SQL text)."""
    return (kind, table, column, details)


def case(
    dialect: Dialect,
    sql: str,
    kind: str,
    read: tuple[str, ...] = (),
    written: tuple[str, ...] = (),
    transactional: bool = True,
    actions: tuple[tuple[Any, ...], ...] = (),
) -> Any:
    return pytest.param(
        dialect, sql, kind, read, written, transactional, actions, id=f"{dialect.value}: {sql[:60]}"
    )


CASES = [
    # DML
    case(S, "DELETE FROM stock", "DELETE", written=("stock",), actions=(act("delete", "stock", **NO_WHERE),)),
    case(
        S,
        "DELETE FROM stock WHERE 1=1",
        "DELETE",
        written=("stock",),
        actions=(act("delete", "stock", has_where=True, where="1 = 1"),),
    ),
    case(
        S,
        'DELETE FROM "Stock" WHERE qty < 0',
        "DELETE",
        written=("Stock",),
        actions=(act("delete", "Stock", has_where=True, where="qty < 0"),),
    ),
    case(
        M,
        "DELETE FROM `Db`.`Orders` LIMIT 10",
        "DELETE",
        written=("Db.Orders",),
        actions=(act("delete", "Db.Orders", **NO_WHERE),),
    ),
    case(
        S,
        "delete from Main.StockItems",
        "DELETE",
        written=("Main.StockItems",),
        actions=(act("delete", "Main.StockItems", **NO_WHERE),),
    ),
    case(
        S,
        "UPDATE stock SET qty = (SELECT max(q) FROM limits) WHERE sku IN (SELECT sku FROM main.skus)",
        "UPDATE",
        read=("limits", "main.skus"),
        written=("stock",),
        actions=(act("update", "stock", has_where=True),),
    ),
    case(
        S,
        "UPDATE stock SET qty = 0",
        "UPDATE",
        written=("stock",),
        actions=(act("update", "stock", **NO_WHERE),),
    ),
    case(
        M,
        "UPDATE orders o JOIN customers c ON o.cid = c.id SET c.flag = 1",
        "UPDATE",
        read=("orders",),
        written=("customers",),
        actions=(act("update", "customers", **NO_WHERE),),
    ),
    case(
        M,
        "DELETE o FROM orders AS o JOIN archive AS a ON o.id = a.id WHERE a.done = 1",
        "DELETE",
        read=("archive",),
        written=("orders",),
        actions=(act("delete", "orders", has_where=True, where="a.done = 1"),),
    ),
    case(
        S,
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        "WITH",
        written=("t",),
        actions=(act("delete", "t", **NO_WHERE),),
    ),
    case(
        S,
        "WITH old AS (SELECT id FROM orders) DELETE FROM items WHERE oid IN (SELECT id FROM old)",
        "DELETE",
        read=("orders",),
        written=("items",),
        actions=(act("delete", "items", has_where=True),),
    ),
    case(
        S,
        "INSERT INTO archive (id) SELECT id FROM orders",
        "INSERT",
        read=("orders",),
        written=("archive",),
        actions=(act("insert", "archive"),),
    ),
    case(
        M,
        "REPLACE INTO stock (sku, qty) VALUES ('a', 1)",
        "REPLACE",
        written=("stock",),
        actions=(act("insert", "stock"),),
    ),
    case(S, "SELECT * FROM a JOIN b ON a.id = b.id", "SELECT", read=("a", "b")),
    # TRUNCATE, DROP
    case(
        M,
        "TRUNCATE TABLE orders",
        "TRUNCATE",
        written=("orders",),
        transactional=False,
        actions=(act("truncate", "orders", cascade=False),),
    ),
    case(
        M,
        "DROP TABLE IF EXISTS a, db.b CASCADE",
        "DROP TABLE",
        written=("a", "db.b"),
        transactional=False,
        actions=(act("drop", "a", object="table", cascade=True), act("drop", "db.b", object="table")),
    ),
    case(
        S,
        "DROP TABLE old_orders",
        "DROP TABLE",
        written=("old_orders",),
        actions=(act("drop", "old_orders", object="table", cascade=False, concurrently=False),),
    ),
    case(
        M,
        "DROP TEMPORARY TABLE scratch",
        "DROP TABLE",
        written=("scratch",),
        actions=(act("drop", "scratch"),),
    ),
    case(
        M,
        "DROP DATABASE shop",
        "DROP DATABASE",
        transactional=False,
        actions=(act("drop", "shop", object="database"),),
    ),
    case(
        M,
        "DROP INDEX idx ON orders",
        "DROP INDEX",
        written=("orders",),
        transactional=False,
        actions=(act("drop", "idx", object="index"),),
    ),
    case(S, "DROP VIEW v", "DROP VIEW", actions=(act("drop", "v", object="view"),)),
    # ALTER TABLE
    case(
        S,
        "ALTER TABLE stock DROP COLUMN note",
        "ALTER TABLE",
        written=("stock",),
        actions=(act("drop-column", "stock", "note"), act("alter-table", "stock")),
    ),
    case(
        S,
        "ALTER TABLE stock ADD COLUMN flag INTEGER NOT NULL",
        "ALTER TABLE",
        written=("stock",),
        actions=(
            act(
                "add-column",
                "stock",
                "flag",
                type="integer",
                not_null=True,
                has_default=False,
                default_volatile=False,
            ),
            act("alter-table", "stock"),
        ),
    ),
    case(
        M,
        "ALTER TABLE t ADD COLUMN c DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(
            act(
                "add-column",
                "t",
                "c",
                type="datetime",
                not_null=True,
                has_default=True,
                default_volatile=False,
            ),
            act("alter-table", "t", algorithm=None, lock=None),
        ),
    ),
    case(
        M,
        "ALTER TABLE t ADD COLUMN id VARCHAR(36) DEFAULT (UUID())",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(
            act(
                "add-column",
                "t",
                "id",
                type="varchar",
                not_null=False,
                has_default=True,
                default_volatile=True,
            ),
            act("alter-table", "t"),
        ),
    ),
    case(
        S,
        "ALTER TABLE stock RENAME COLUMN qty TO quantity",
        "ALTER TABLE",
        written=("stock",),
        actions=(act("rename-column", "stock", "qty", new_name="quantity"), act("alter-table", "stock")),
    ),
    case(
        S,
        "ALTER TABLE stock RENAME TO stock_old",
        "ALTER TABLE",
        written=("stock",),
        actions=(act("rename-table", "stock", new_name="stock_old"), act("alter-table", "stock")),
    ),
    case(
        M,
        "ALTER TABLE t MODIFY COLUMN qty BIGINT NOT NULL",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(
            act("alter-column-type", "t", "qty", type="bigint"),
            act("alter-table", "t", algorithm=None),
        ),
    ),
    case(
        M,
        "ALTER TABLE t CHANGE COLUMN qty quantity INT",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(
            act("alter-column-type", "t", "qty", type="int"),
            act("rename-column", "t", "qty", new_name="quantity"),
            act("alter-table", "t"),
        ),
    ),
    case(
        M,
        "ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INPLACE, LOCK=NONE",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(act("add-column", "t", "c"), act("alter-table", "t", algorithm="inplace", lock="none")),
    ),
    case(
        M,
        "ALTER TABLE t ADD INDEX i (a), ALGORITHM=INSTANT",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(
            act("create-index", "t", unique=False, algorithm="instant", lock=None),
            act("alter-table", "t", algorithm="instant", lock=None),
        ),
    ),
    case(
        M,
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (cid) REFERENCES customers(id)",
        "ALTER TABLE",
        read=("customers",),
        written=("orders",),
        transactional=False,
        actions=(
            act("add-constraint", "orders", constraint="foreign", not_valid=False, using_index=False),
            act("alter-table", "orders"),
        ),
    ),
    case(
        M,
        "ALTER TABLE t FORCE",
        "ALTER TABLE",
        written=("t",),
        transactional=False,
        actions=(act("vacuum", "t", full=True), act("alter-table", "t")),
    ),
    # CREATE
    case(
        S,
        "CREATE UNIQUE INDEX stock_sku ON stock (sku)",
        "CREATE INDEX",
        written=("stock",),
        actions=(act("create-index", "stock", concurrently=False, unique=True),),
    ),
    case(
        M,
        "CREATE INDEX i ON t (a) ALGORITHM=INPLACE LOCK=NONE",
        "CREATE INDEX",
        written=("t",),
        transactional=False,
        actions=(act("create-index", "t", unique=False, algorithm="inplace", lock="none"),),
    ),
    case(
        S,
        "CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, msg TEXT, oid INT REFERENCES orders(id))",
        "CREATE TABLE",
        read=("orders",),
        actions=(
            act(
                "create-table",
                "log",
                columns=(
                    ("id", "integer", True, True),
                    ("msg", "text", False, False),
                    ("oid", "integer", False, False),
                ),
            ),
        ),
    ),
    case(
        M,
        "CREATE TABLE t (id BIGINT AUTO_INCREMENT, PRIMARY KEY (id))",
        "CREATE TABLE",
        transactional=False,
        actions=(act("create-table", "t", columns=(("id", "bigint", True, True),)),),
    ),
    case(S, "CREATE VIEW v AS SELECT * FROM orders", "CREATE VIEW", read=("orders",)),
    case(
        S,
        "CREATE TRIGGER trg AFTER INSERT ON orders BEGIN DELETE FROM cache; END",
        "CREATE TRIGGER",
        read=("orders",),
    ),
    # maintenance, settings, transactions
    case(S, "VACUUM", "VACUUM", transactional=False, actions=(act("vacuum", None, full=False),)),
    case(
        M,
        "OPTIMIZE TABLE orders",
        "OPTIMIZE TABLE",
        written=("orders",),
        transactional=False,
        actions=(act("vacuum", "orders", full=True),),
    ),
    case(S, "ANALYZE orders", "ANALYZE", read=("orders",)),
    case(S, "REINDEX", "REINDEX", actions=(act("reindex", None, concurrently=False),)),
    case(S, "PRAGMA foreign_keys=OFF", "PRAGMA", actions=(act("pragma", name="foreign_keys", value="off"),)),
    case(
        S,
        "PRAGMA writable_schema = ON",
        "PRAGMA",
        actions=(act("pragma", name="writable_schema", value="on"),),
    ),
    case(
        S, "PRAGMA writable_schema = 1", "PRAGMA", actions=(act("pragma", name="writable_schema", value="1"),)
    ),
    case(S, "PRAGMA integrity_check", "PRAGMA", actions=(act("pragma", name="integrity_check", value=None),)),
    case(
        M,
        "SET FOREIGN_KEY_CHECKS=0",
        "SET",
        actions=(act("set", name="foreign_key_checks", value="0", local=False),),
    ),
    case(
        M,
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
        "SET",
        actions=(act("set", name="sql_mode", value="'STRICT_ALL_TABLES'", local=False),),
    ),
    case(S, "BEGIN", "BEGIN", actions=(act("transaction-control", command="BEGIN"),)),
    case(M, "START TRANSACTION", "BEGIN", actions=(act("transaction-control"),)),
    case(S, "COMMIT", "COMMIT", actions=(act("transaction-control", command="COMMIT"),)),
    case(S, "END TRANSACTION", "COMMIT", actions=(act("transaction-control", command="COMMIT"),)),
    case(M, "ROLLBACK", "ROLLBACK", actions=(act("transaction-control", command="ROLLBACK"),)),
    case(
        S,
        "SAVEPOINT before_fix",
        "SAVEPOINT",
        actions=(act("transaction-control", command="SAVEPOINT before_fix"),),
    ),
    case(
        S,
        "ROLLBACK TO SAVEPOINT before_fix",
        "ROLLBACK",
        actions=(act("transaction-control", command="ROLLBACK TO SAVEPOINT before_fix"),),
    ),
    # privileges and locks
    case(
        M,
        "GRANT SELECT, INSERT ON shop.orders TO 'app'@'%'",
        "GRANT",
        transactional=False,
        actions=(act("grant", to_public=False, privileges=["select", "insert"], objects=["shop.orders"]),),
    ),
    case(
        M,
        "GRANT SELECT ON orders TO PUBLIC",
        "GRANT",
        transactional=False,
        actions=(act("grant", to_public=True, privileges=["select"]),),
    ),
    case(
        M,
        "REVOKE ALL PRIVILEGES ON *.* FROM 'app'@'%'",
        "REVOKE",
        transactional=False,
        actions=(act("revoke", to_public=False, privileges=["all"], objects=["*.*"]),),
    ),
    case(
        M,
        "LOCK TABLES orders WRITE, customers AS c READ",
        "LOCK TABLES",
        read=("customers",),
        written=("orders",),
        transactional=False,
        actions=(act("lock-table", "orders", mode="WRITE"), act("lock-table", "customers", mode="READ")),
    ),
    case(M, "UNLOCK TABLES", "UNLOCK TABLES", transactional=False),
    case(
        M,
        "RENAME TABLE orders TO orders_old",
        "RENAME TABLE",
        written=("orders",),
        transactional=False,
        actions=(act("rename-table", "orders", new_name="orders_old"),),
    ),
]


def _facts(dialect: Dialect, sql: str) -> Facts | None:
    return classify(sqlglot.parse_one(sql, read=dialect.value), dialect)


def _summary(action: Action, keys: dict[str, Any]) -> tuple[Any, ...]:
    details = {}
    for key in keys:
        value = action.details[key]
        details[key] = value.sql() if isinstance(value, exp.Expression) else value
    return (action.kind, action.table, action.column, details)


@pytest.mark.parametrize(("dialect", "sql", "kind", "read", "written", "transactional", "actions"), CASES)
def test_classify(
    dialect: Dialect,
    sql: str,
    kind: str,
    read: tuple[str, ...],
    written: tuple[str, ...],
    transactional: bool,
    actions: tuple[tuple[Any, ...], ...],
) -> None:
    facts = _facts(dialect, sql)
    assert facts is not None, sql
    assert facts.kind == kind
    assert facts.tables_read == read
    assert facts.tables_written == written
    assert facts.transactional is transactional
    assert facts.lock is None
    got = [_summary(a, expected[3]) for a, expected in zip(facts.actions, actions, strict=False)]
    assert got == list(actions)
    assert len(facts.actions) == len(actions)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        (M, "CALL purge_everything()"),  # a procedure could do anything
        (M, "CREATE USER app IDENTIFIED BY 'x'"),
        (M, "ALTER TABLE t DISCARD TABLESPACE"),  # an ALTER sqlglot keeps as raw text
        (M, "FLUSH TABLES"),
        (M, "EXPLAIN ANALYZE SELECT * FROM orders"),
        (S, "FROBNICATE"),
    ],
)
def test_statements_not_understood_give_none(dialect: Dialect, sql: str) -> None:
    assert _facts(dialect, sql) is None


def test_an_unknown_command_gives_none() -> None:
    garbage = exp.Command(this="FROBNICATE", expression=exp.Literal.string("the widgets"))
    assert classify(garbage, S) is None
    assert classify(garbage, M) is None


def test_where_is_the_sqlglot_expression() -> None:
    facts = _facts(S, "DELETE FROM stock WHERE 1 = 1")
    assert facts is not None
    where = facts.actions[0].get("where")
    assert isinstance(where, exp.EQ)


def test_trigger_body_is_handed_back_as_nested_sql() -> None:
    sql = "CREATE TRIGGER trg AFTER DELETE ON orders BEGIN DELETE FROM items WHERE oid = old.id; END"
    facts = _facts(S, sql)
    assert facts is not None
    assert facts.nested_sql == (("trigger trg", "DELETE FROM items WHERE oid = old.id;", "sql"),)
