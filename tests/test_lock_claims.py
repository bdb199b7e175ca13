"""What rules say about locks on relations the script does not name, checked on the real PostgreSQL 15.

tests/test_lock_oracle.py compares the locks `check` computes on the relations a statement names. The rules
below also judge relations the statement reaches only through the schema, which the oracle leaves out:
- ALTER DOMAIN ... ADD CHECK and SET NOT NULL lock every table with a column of the domain SHARE (writes
  wait) to check its values; ADD CHECK ... NOT VALID locks none (require-not-valid-check, ban-set-not-null);
- DROP VIEW and CREATE OR REPLACE VIEW lock the view alone, never its tables ACCESS EXCLUSIVE, so only
  queries through the view queue behind them (require-lock-timeout: a warning); ALTER VIEW names a view
  for sure, since the server refuses it on a table.
Each statement runs in a transaction that is rolled back; the locks are read from pg_locks by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbguard.registry import Severity
from tests.conftest import findings_for
from tests.warehouse import scratch_database

SETUP = """
CREATE DOMAIN positive_qty AS integer;
CREATE TABLE stock (sku text PRIMARY KEY, qty positive_qty);
CREATE TABLE returns (id integer PRIMARY KEY, qty positive_qty);
CREATE TABLE orders (id integer PRIMARY KEY, status text);
CREATE VIEW open_orders AS SELECT id FROM orders WHERE status = 'open';
INSERT INTO stock VALUES ('A-1', 3);
"""
_HELD = "SELECT relation::oid, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'"


_STRENGTH = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
             "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]  # fmt: skip


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    with scratch_database("dbguard_lock_claims") as url:
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute(SETUP)
        with psycopg.connect(url) as connection:
            yield connection


def held(conn: psycopg.Connection[Any], sql: str, names: list[str]) -> dict[str, str]:
    """The strongest lock `sql` holds on each of `names` (looked up before it runs: DROP removes the name)."""
    oids = dict(conn.execute("SELECT oid, relname FROM pg_class WHERE relname = ANY(%s)", (names,)).fetchall())
    assert sorted(oids.values()) == sorted(names)
    try:
        conn.execute(sql)
        modes: dict[str, list[str]] = {}
        for oid, mode in conn.execute(_HELD).fetchall():
            if oid in oids:
                modes.setdefault(oids[oid], []).append(mode)
        return {name: max(found, key=_STRENGTH.index) for name, found in modes.items()}
    finally:
        conn.rollback()


def severities(sql: str, rule_id: str) -> set[Severity]:
    return {f.severity for f in findings_for(sql) if f.rule_id == rule_id}


def test_a_domain_check_locks_every_table_with_a_column_of_it_share(conn: psycopg.Connection[Any]) -> None:
    add = "ALTER DOMAIN positive_qty ADD CONSTRAINT positive_qty_check CHECK (VALUE > 0)"
    assert held(conn, add, ["stock", "returns", "orders"]) == {"stock": "ShareLock", "returns": "ShareLock"}
    assert severities(add, "require-not-valid-check") == {Severity.ERROR}
    not_valid = f"{add} NOT VALID"
    assert held(conn, not_valid, ["stock", "returns"]) == {}
    assert not severities(not_valid, "require-not-valid-check")
    not_null = "ALTER DOMAIN positive_qty SET NOT NULL"
    assert held(conn, not_null, ["stock", "returns"]) == {"stock": "ShareLock", "returns": "ShareLock"}
    assert severities(not_null, "ban-set-not-null") == {Severity.ERROR}


def test_a_view_is_locked_alone(conn: psycopg.Connection[Any]) -> None:
    for sql in ("DROP VIEW open_orders",
                "CREATE OR REPLACE VIEW open_orders AS SELECT id FROM orders WHERE status = 'open'"):  # fmt: skip
        locks = held(conn, sql, ["open_orders", "orders"])
        assert locks["open_orders"] == "AccessExclusiveLock" and locks.get("orders") in (None, "AccessShareLock")
        assert severities(sql, "require-lock-timeout") == {Severity.WARNING}


def test_alter_view_is_refused_on_a_table(conn: psycopg.Connection[Any]) -> None:
    for sql in ("ALTER VIEW orders RENAME TO orders_v1", "ALTER VIEW orders SET (security_barrier = true)"):
        with pytest.raises(psycopg.errors.WrongObjectType, match='"orders" is not a view'):
            held(conn, sql, ["orders"])
        assert severities(sql, "require-lock-timeout") == {Severity.WARNING}
