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


SQLITE_SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE warehouses (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT,
  unit_price NUMERIC CHECK (unit_price >= 0), discontinued INTEGER NOT NULL DEFAULT 0);
CREATE TABLE stock (warehouse_id INTEGER NOT NULL REFERENCES warehouses (id),
  product_id INTEGER NOT NULL REFERENCES products (id), qty INTEGER NOT NULL CHECK (qty >= 0),
  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= qty),
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (warehouse_id, product_id));
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'shipped', 'cancelled')),
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no INTEGER NOT NULL, product_id INTEGER NOT NULL REFERENCES products (id),
  warehouse_id INTEGER NOT NULL REFERENCES warehouses (id), qty INTEGER NOT NULL CHECK (qty > 0),
  PRIMARY KEY (order_id, line_no));
CREATE TABLE reservations (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id),
  warehouse_id INTEGER NOT NULL, product_id INTEGER NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
  expires_at TEXT NOT NULL,
  FOREIGN KEY (warehouse_id, product_id) REFERENCES stock (warehouse_id, product_id));
"""


def make_sqlite_warehouse(path: Path) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SQLITE_SCHEMA)
        conn.executemany(
            "INSERT INTO warehouses (code, name) VALUES (?, ?)", [(f"W{i}", f"Warehouse {i}") for i in range(1, 4)]
        )
        conn.executemany(
            "INSERT INTO products (sku, name, unit_price) VALUES (?, ?, ?)",
            [(f"SKU-{i}", f"Product {i}", i * 1.5) for i in range(1, 41)],
        )
        conn.executemany(
            "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (?, ?, ?)",
            [(w, p, 10 + (w * p) % 50) for w in range(1, 4) for p in range(1, 41)],
        )
        statuses = ["open", "shipped", "cancelled"]
        conn.executemany(
            "INSERT INTO orders (customer, status) VALUES (?, ?)",
            [(f"customer {i}", statuses[i % 3]) for i in range(1, 31)],
        )
        conn.executemany(
            "INSERT INTO order_lines (order_id, line_no, product_id, warehouse_id, qty) VALUES (?, ?, ?, ?, ?)",
            [(o, line, 1 + (o * line) % 40, 1 + o % 3, 1 + line) for o in range(1, 31) for line in (1, 2)],
        )
        conn.executemany(
            "INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at) VALUES (?, ?, ?, 1, ?)",
            [(o, 1 + o % 3, 1 + o % 40, f"2026-11-{1 + o % 28:02d}") for o in range(3, 31, 3)],
        )
        conn.commit()
    finally:
        conn.close()
    return path
