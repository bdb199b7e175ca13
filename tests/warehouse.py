"""The small warehouse database the integration tests run against, on real PostgreSQL and real SQLite.

Each test gets its own database (PostgreSQL) or file (SQLite), dropped afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SCHEMA = Path(__file__).parent.parent / "scripts" / "schema" / "warehouse.sql"
ADMIN_URL = os.environ.get("DBGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Deterministic data: 3 warehouses, 40 products, a stock row for each pair, 30 orders with lines,
# and reservations for the open orders.
DATA_SQL = """
INSERT INTO warehouses (code, name) SELECT 'W' || i, 'Warehouse ' || i FROM generate_series(1, 3) i;
INSERT INTO products (sku, name, unit_price) SELECT 'SKU-' || i, 'Product ' || i, i * 1.5
  FROM generate_series(1, 40) i;
INSERT INTO stock (warehouse_id, product_id, qty, reserved)
  SELECT w, p, 10 + (w * p) % 50, 0 FROM generate_series(1, 3) w, generate_series(1, 40) p;
INSERT INTO orders (customer, status)
  SELECT 'customer ' || i, (ARRAY['open', 'shipped', 'cancelled'])[1 + i % 3] FROM generate_series(1, 30) i;
INSERT INTO order_lines (order_id, line_no, product_id, warehouse_id, qty)
  SELECT o, l, 1 + (o * l) % 40, 1 + o % 3, 1 + l FROM generate_series(1, 30) o, generate_series(1, 2) l;
INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at)
  SELECT o, 1 + o % 3, 1 + o % 40, 1, now() + (o - 15) * interval '1 day'
  FROM generate_series(1, 30) o WHERE o % 3 = 0;
UPDATE stock s SET reserved = r.total FROM (
  SELECT warehouse_id, product_id, sum(qty) AS total FROM reservations GROUP BY 1, 2) r
  WHERE s.warehouse_id = r.warehouse_id AND s.product_id = r.product_id;
"""


def admin_url(database: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def scratch_database(prefix: str = "dbguard_test") -> Iterator[str]:
    """A new empty PostgreSQL database; its URL is yielded and it is dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_warehouse(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        conn.execute(DATA_SQL)


SQLITE_SCHEMA = SCHEMA.with_name("warehouse_sqlite.sql")


def make_sqlite_warehouse(path: Path) -> Path:
    """The same warehouse in a SQLite file, from scripts/schema/warehouse_sqlite.sql (the README's examples use it)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SQLITE_SCHEMA.read_text())
        conn.commit()
    finally:
        conn.close()
    return path
