"""The demo warehouse's rows, generated deterministically, and loading them into SQLite or PostgreSQL.

The same `seed` and `scale` always give the same rows (a seeded `random.Random`, fixed dates). At scale 1:
6 warehouses, 2,500 products, about 10,000 stock rows, 8,000 orders with about 20,000 lines, and about
3,000 reservations: some 43,000 rows. Most orders are shipped; about 3% are picked and wait to be
shipped, and a few of those picked lines ask for more than the stock on hand (oversold): that is what
the demo's subtle script trips over.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dbguard.demo.schema import schema_sql
from dbguard.dialects import Dialect
from dbguard.errors import UsageError
from dbguard.targets.url import DatabaseUrl

SEED = 20240606  # the day of the Stockpocalypse
AS_OF = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # "today" in the data: orders before, reservations around it
OVERSOLD_LINES = 4  # picked lines whose stock on hand is short, at any scale
Row = tuple[Any, ...]

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "warehouses": ("id", "code", "name"),
    "products": ("id", "sku", "name", "unit_price", "discontinued"),
    "stock": ("warehouse_id", "product_id", "qty", "reserved", "updated_at"),
    "orders": ("id", "customer", "status", "created_at"),
    "order_lines": ("order_id", "line_no", "warehouse_id", "product_id", "qty"),
    "reservations": ("id", "order_id", "warehouse_id", "product_id", "qty", "expires_at"),
}
_IDENTITY_TABLES = ("warehouses", "products", "orders", "reservations")  # their ids come from a sequence later
_STATUS_WEIGHTS = {"shipped": 65, "open": 25, "cancelled": 7, "picked": 3}


@dataclass
class WarehouseData:
    """Rows per table, in TABLE_COLUMNS' column order (timestamps as aware datetimes, booleans as bool)."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    oversold: list[tuple[int, int]] = field(default_factory=list)  # (warehouse_id, product_id) left short

    @property
    def total_rows(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def generate(scale: float = 1.0, seed: int = SEED) -> WarehouseData:
    """The warehouse at `scale` (1.0: ~43,000 rows; the row counts grow linearly). UsageError if scale <= 0."""
    if not scale > 0:
        raise UsageError(f"--scale must be above 0, not {scale}")
    rng = random.Random(seed)
    data = WarehouseData()
    warehouses = 6
    data.rows["warehouses"] = [(w, f"W{w:02d}", f"Warehouse {w:02d}") for w in range(1, warehouses + 1)]
    product_count = max(50, round(2500 * scale))
    data.rows["products"] = [
        (p, f"SKU-{p:05d}", f"Product {p:05d}", Decimal(rng.randint(50, 50000)) / 100, rng.random() < 0.03)
        for p in range(1, product_count + 1)
    ]
    stock: dict[tuple[int, int], list[Any]] = {}
    for p in range(1, product_count + 1):
        for w in sorted(rng.sample(range(1, warehouses + 1), rng.randint(3, 5))):
            stock[w, p] = [w, p, rng.randint(20, 400), 0, AS_OF - timedelta(minutes=rng.randint(0, 60 * 24 * 30))]
    pairs = list(stock)
    orders: list[Row] = []
    lines: list[Row] = []
    reservations: list[Row] = []
    demand: dict[tuple[int, int], int] = {}  # picked quantities per stock row
    picked_lines: list[tuple[int, int]] = []
    statuses, weights = list(_STATUS_WEIGHTS), list(_STATUS_WEIGHTS.values())
    for o in range(1, max(200, round(8000 * scale)) + 1):
        status = rng.choices(statuses, weights)[0]
        orders.append((o, f"customer {rng.randint(1, 3000):04d}", status,
                       AS_OF - timedelta(minutes=rng.randint(0, 60 * 24 * 90))))  # fmt: skip
        for line_no, pair in enumerate(rng.sample(pairs, rng.randint(1, 4)), start=1):
            qty = rng.randint(1, 12)
            lines.append((o, line_no, *pair, qty))
            if status == "picked":
                demand[pair] = demand.get(pair, 0) + qty
                picked_lines.append(pair)
            elif status == "open" and rng.random() < 0.6:
                expires = AS_OF + timedelta(hours=rng.randint(-24 * 10, 24 * 20))
                reservations.append((len(reservations) + 1, o, *pair, qty, expires))
                stock[pair][3] += qty
    # A few picked lines are oversold: the stock count found less on the shelf than was picked.
    for pair in list(dict.fromkeys(picked_lines))[:OVERSOLD_LINES]:  # the first picked, in order
        stock[pair][2] = max(0, demand[pair] - rng.randint(1, 5))
        data.oversold.append(pair)
    data.rows["stock"] = [tuple(row) for row in stock.values()]
    data.rows["orders"] = orders
    data.rows["order_lines"] = lines
    data.rows["reservations"] = reservations
    return data


def load(url: DatabaseUrl, data: WarehouseData) -> None:
    """Create the schema and insert `data` into the empty database at `url` (a new SQLite file, or an
    empty PostgreSQL database), in one transaction."""
    if url.dialect is Dialect.SQLITE:
        _load_sqlite(url.sqlite_path, data)
    else:
        _load_postgres(url, data)


def _load_sqlite(path: Path, data: WarehouseData) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(schema_sql(Dialect.SQLITE))
        with conn:  # one transaction
            for table, columns in TABLE_COLUMNS.items():
                marks = ", ".join("?" * len(columns))
                conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                 [_sqlite_row(row) for row in data.rows[table]])  # fmt: skip


def _sqlite_row(row: Sequence[Any]) -> Row:
    def value(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.strftime("%Y-%m-%d %H:%M:%S")  # SQLite's CURRENT_TIMESTAMP format, UTC
        if isinstance(item, Decimal):
            return str(item)
        if isinstance(item, bool):
            return int(item)
        return item

    return tuple(value(item) for item in row)


def _load_postgres(url: DatabaseUrl, data: WarehouseData) -> None:
    with psycopg.connect(url.conninfo()) as conn:  # one transaction, committed on leaving
        conn.execute(schema_sql(Dialect.POSTGRES))
        for table, columns in TABLE_COLUMNS.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor().copy(statement) as copy:
                for row in data.rows[table]:
                    copy.write_row(row)
        for table in _IDENTITY_TABLES:  # the next id after the generated ones
            conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))").format(
                sql.Literal(table), sql.Identifier(table)))  # fmt: skip
        conn.execute("ANALYZE")
