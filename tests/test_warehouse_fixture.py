"""The test databases themselves load (a broken fixture would make every integration test meaningless)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg


def test_postgres_warehouse_has_data(warehouse_pg: str) -> None:
    with psycopg.connect(warehouse_pg) as conn:
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("warehouses", "products", "stock", "orders", "order_lines", "reservations")
        }
    assert counts == {
        "warehouses": 3,
        "products": 40,
        "stock": 120,
        "orders": 30,
        "order_lines": 60,
        "reservations": 10,
    }


def test_sqlite_warehouse_has_data(warehouse_sqlite: Path) -> None:
    conn = sqlite3.connect(warehouse_sqlite)
    assert conn.execute("SELECT count(*) FROM stock").fetchone() == (120,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
