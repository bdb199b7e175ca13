"""Benchmark `dbguard check` against squawk on one large PostgreSQL maintenance script.

What it measures
  1. Generates a deterministic (``random.Random(42)``) script of N statements (default 10,000) for a
     warehouse database (warehouses, products, stock, orders, order_lines, reservations): about 70% DML
     (INSERT ... VALUES, UPDATE/DELETE with and without WHERE, SELECT with joins, INSERT ... SELECT,
     CTEs that UPDATE/DELETE, a few BEGIN/COMMIT groups), about 30% DDL (CREATE TABLE, ADD COLUMN with
     and without NOT NULL/DEFAULT, ALTER COLUMN TYPE, CREATE INDEX with and without CONCURRENTLY,
     DROP INDEX, FOREIGN KEY and CHECK constraints [NOT VALID], SET lock_timeout, VACUUM, COMMENT ON),
     plus a few DO blocks and function bodies. It is written to bench/out/bench_10k.sql.
  2. Checks the script is valid: pglast (libpg_query, the server's grammar) must parse it into exactly
     N statements, and `squawk --reporter json` must report no syntax-error.
  3. Times whole processes from the repository root, wall clock (time.perf_counter around spawn + exit),
     like for like: each tool's text report against the other's, each JSON report against the other's:
         dbguard check bench/out/bench_10k.sql --fail-on never                  (dbguard-text)
         squawk bench/out/bench_10k.sql                                          (squawk-text)
         dbguard check bench/out/bench_10k.sql --format json --fail-on never    (dbguard-json)
         squawk --reporter json bench/out/bench_10k.sql                         (squawk-json)
         dbguard check bench/out/one_statement.sql     (dbguard-1stmt: start-up, as in a pre-commit hook)
         squawk bench/out/one_statement.sql             (squawk-1stmt)
     Both text reports go to a file (no terminal, no colour) and show each finding with a code frame.
     One warm-up run of each (not counted), then --runs measured runs of each, interleaved (the tool
     that goes first rotates every round). Each tool is started by a tiny launcher process that reaps
     it with os.wait4: that rusage gives the tool's own peak RSS (ru_maxrss, KiB on Linux) and CPU time.
     (The launcher exists because Linux carries a parent's peak RSS over fork + exec into the child's
     ru_maxrss: spawned straight from this ~70 MiB process, squawk would read 70 MiB instead of 35.)
     dbguard parses a script of 1,000+ statements on two cores, in a forked child that it waits for: cpu s
     counts both processes, and peak RSS is the larger of the two, as rusage reports a reaped child.
     A dbguard exit other than 0, a squawk exit other than 0/1 (1 means violations found), or any
     squawk syntax-error or panic fails the bench (exit status 2).
  4. Prints a table: median/min/max wall seconds, median CPU seconds, median peak RSS, exit codes and
     the findings of each tool (dbguard: its JSON summary, error + warning + info; squawk: its
     "Found N issues" line, or the length of its JSON report), then the top rules of each, and last
     the ratios of median wall times against the targets: text <= 1.0, JSON <= 3.0 (stretch 1.0), and
     the one-statement check under 0.25 s.

How to run
    make bench                      # runs: .venv/bin/python bench/check_speed.py
    .venv/bin/python bench/check_speed.py --runs 5 --statements 10000
    .venv/bin/python bench/check_speed.py --dbguard PATH --squawk PATH

It takes about 2 minutes at the defaults. The tools default to the ones next to sys.executable (the
venv's bin/), falling back to PATH. DBGUARD_* environment variables are dropped for the measured runs.
Everything generated (the script, each tool's last output) goes to bench/out/, which is git-ignored.
Exit status: 0 when the measurement is complete (whether or not the target is met), 2 when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
SEED = 42
TARGET_TEXT = 1.0  # dbguard text / squawk text
TARGET_JSON = 3.0  # dbguard JSON / squawk JSON (stretch: 1.0)
TARGET_START_SECONDS = 0.25  # check of a one-statement file

# --------------------------------------------------------------------------------------------------
# Script generation
# --------------------------------------------------------------------------------------------------

BASE_TABLES: dict[str, str] = {
    "warehouses": """CREATE TABLE IF NOT EXISTS warehouses (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    city text NOT NULL,
    capacity integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);""",
    "products": """CREATE TABLE IF NOT EXISTS products (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    weight_kg numeric(8, 3),
    discontinued boolean NOT NULL DEFAULT false
);""",
    "stock": """CREATE TABLE IF NOT EXISTS stock (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    warehouse_id bigint NOT NULL REFERENCES warehouses (id),
    product_id bigint NOT NULL REFERENCES products (id),
    qty integer NOT NULL DEFAULT 0,
    reserved integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (warehouse_id, product_id)
);""",
    "orders": """CREATE TABLE IF NOT EXISTS orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    warehouse_id bigint REFERENCES warehouses (id),
    status text NOT NULL DEFAULT 'pending',
    total numeric(12, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);""",
    "order_lines": """CREATE TABLE IF NOT EXISTS order_lines (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    product_id bigint NOT NULL REFERENCES products (id),
    qty integer NOT NULL CHECK (qty > 0),
    unit_price numeric(10, 2) NOT NULL
);""",
    "reservations": """CREATE TABLE IF NOT EXISTS reservations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    stock_id bigint NOT NULL REFERENCES stock (id),
    qty integer NOT NULL,
    expires_at timestamptz NOT NULL
);""",
}
TABLES = tuple(BASE_TABLES)
# Columns an index, a COMMENT or an ALTER COLUMN TYPE can name, per table.
COLUMNS: dict[str, tuple[str, ...]] = {
    "warehouses": ("code", "name", "city", "capacity", "created_at"),
    "products": ("sku", "name", "unit_price", "weight_kg", "discontinued"),
    "stock": ("warehouse_id", "product_id", "qty", "reserved", "updated_at"),
    "orders": ("customer_id", "warehouse_id", "status", "total", "created_at"),
    "order_lines": ("order_id", "product_id", "qty", "unit_price"),
    "reservations": ("order_id", "stock_id", "qty", "expires_at"),
}
# (child table, column, parent table) foreign keys the DDL mix adds.
FOREIGN_KEYS = (
    ("stock", "warehouse_id", "warehouses"),
    ("stock", "product_id", "products"),
    ("orders", "warehouse_id", "warehouses"),
    ("order_lines", "order_id", "orders"),
    ("order_lines", "product_id", "products"),
    ("reservations", "order_id", "orders"),
    ("reservations", "stock_id", "stock"),
)
TYPE_CHANGES = (
    ("stock", "qty", "bigint"),
    ("stock", "reserved", "bigint"),
    ("orders", "total", "numeric(14, 2)"),
    ("orders", "status", "varchar(32)"),
    ("products", "unit_price", "numeric(12, 2)"),
    ("products", "name", "varchar(200)"),
    ("warehouses", "capacity", "bigint"),
    ("order_lines", "qty", "bigint"),
)
CITIES = ("Lyon", "Rotterdam", "Gdansk", "Leeds", "Porto", "Brno", "Tampere", "Bilbao", "Graz", "Cork")
WORDS = ("bolt", "hinge", "crate", "pallet", "valve", "gasket", "bracket", "spring", "clamp", "washer")
STATUSES = ("pending", "paid", "picking", "shipped", "delivered", "cancelled", "expired")
NEW_COLUMN_TYPES = (
    ("text", "'n/a'"),
    ("integer", "0"),
    ("boolean", "false"),
    ("timestamptz", "now()"),
    ("numeric(10, 2)", "0.00"),
    ("bigint", "1"),
    ("jsonb", "'{}'::jsonb"),
)


def block(sql: str) -> str:
    """A multi-line statement written as an indented triple-quoted string."""
    return textwrap.dedent(sql).strip()


@dataclass
class Composition:
    dml: int = 0
    ddl: int = 0
    procedural: int = 0  # DO blocks and CREATE FUNCTION bodies

    @property
    def total(self) -> int:
        return self.dml + self.ddl + self.procedural


@dataclass
class ScriptGenerator:
    """Emits statements one by one; every statement is complete PostgreSQL ending with `;`."""

    rng: random.Random
    serial: int = 0
    indexes: list[str] = field(default_factory=list)
    scratch_tables: list[str] = field(default_factory=list)
    added_columns: list[tuple[str, str]] = field(default_factory=list)
    unvalidated: list[tuple[str, str]] = field(default_factory=list)

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _id(self) -> int:
        return self.rng.randint(1, 2_000_000)

    def _table(self) -> str:
        return self.rng.choice(TABLES)

    def _days(self) -> str:
        return f"interval '{self.rng.randint(1, 365)} days'"

    def _name(self) -> str:
        base = f"{self.rng.choice(WORDS)} {self.rng.choice(WORDS)}"
        return "O''Brien " + base if self.rng.random() < 0.03 else base.title()

    # ---- DML ---------------------------------------------------------------------------------------

    def _row(self, table: str) -> tuple[str, str]:
        """(column list, one VALUES tuple) for an INSERT into `table`."""
        r = self.rng
        price = f"{r.randint(1, 99_999) / 100:.2f}"
        if table == "warehouses":
            n = r.randint(1, 99_999)
            city = r.choice(CITIES)
            return (
                "code, name, city, capacity",
                f"'WH-{n:05d}', '{city} depot {n}', '{city}', {r.randint(1, 9)}000",
            )
        if table == "products":
            sku = f"SKU-{r.randint(1, 999_999):06d}"
            return (
                "sku, name, unit_price, weight_kg",
                f"'{sku}', '{self._name()}', {price}, {r.random() * 40:.3f}",
            )
        if table == "stock":
            values = f"{r.randint(1, 400)}, {self._id()}, {r.randint(0, 5_000)}, {r.randint(0, 50)}"
            return "warehouse_id, product_id, qty, reserved", values
        if table == "orders":
            values = f"{self._id()}, {r.randint(1, 400)}, '{r.choice(STATUSES)}', {price}"
            return "customer_id, warehouse_id, status, total", values
        if table == "order_lines":
            return (
                "order_id, product_id, qty, unit_price",
                f"{self._id()}, {self._id()}, {r.randint(1, 40)}, {price}",
            )
        expires = f"now() + interval '{r.randint(5, 120)} minutes'"
        return (
            "order_id, stock_id, qty, expires_at",
            f"{self._id()}, {self._id()}, {r.randint(1, 12)}, {expires}",
        )

    def insert_values(self) -> str:
        table = self._table()
        rows = [self._row(table) for _ in range(self.rng.choice((1, 1, 1, 2, 3, 5)))]
        values = ",\n    ".join(f"({v})" for _, v in rows)
        tail = " ON CONFLICT DO NOTHING" if self.rng.random() < 0.15 else ""
        sep = "\n    " if len(rows) > 1 else " "
        return f"INSERT INTO {table} ({rows[0][0]}) VALUES{sep}{values}{tail};"

    def _set_clause(self, table: str) -> str:
        r = self.rng
        price = f"{r.randint(1, 99_999) / 100:.2f}"
        options = {
            "warehouses": (f"capacity = {r.randint(100, 90_000)}", f"city = '{r.choice(CITIES)}'"),
            "products": (f"unit_price = {price}", "discontinued = true", f"name = '{self._name()}'"),
            "stock": (
                f"qty = qty - {r.randint(1, 20)}, updated_at = now()",
                f"reserved = reserved + {r.randint(1, 5)}",
                f"qty = {r.randint(0, 900)}",
            ),
            "orders": (f"status = '{r.choice(STATUSES)}'", f"total = total + {price}"),
            "order_lines": (f"qty = {r.randint(1, 40)}", f"unit_price = {price}"),
            "reservations": (f"expires_at = now() + interval '{r.randint(5, 120)} minutes'", "qty = qty + 1"),
        }[table]
        return r.choice(options)

    def update_by_id(self) -> str:
        table = self._table()
        return f"UPDATE {table} SET {self._set_clause(table)} WHERE id = {self._id()};"

    def update_where(self) -> str:
        r = self.rng
        ids = f"{self._id()}, {self._id()}, {self._id()}"
        options = (
            "UPDATE stock SET reserved = 0 WHERE reserved < 0;",
            "UPDATE orders SET status = 'expired'\n"
            f"WHERE status = 'pending' AND created_at < now() - {self._days()};",
            f"UPDATE products SET discontinued = true WHERE sku LIKE 'SKU-{r.randint(0, 99):02d}%';",
            f"UPDATE stock SET qty = qty + {r.randint(1, 500)}, updated_at = now()\n"
            f"WHERE warehouse_id = {r.randint(1, 400)} AND product_id IN ({ids});",
            "UPDATE stock AS s SET reserved = s.reserved - 1 FROM reservations AS rv\n"
            f"WHERE rv.stock_id = s.id AND rv.order_id = {self._id()};",
        )
        return r.choice(options)

    def delete_where(self) -> str:
        r = self.rng
        cutoff = f"DATE '2024-{r.randint(1, 12):02d}-01'"
        options = (
            f"DELETE FROM reservations WHERE expires_at < now() - {self._days()};",
            f"DELETE FROM order_lines WHERE order_id = {self._id()};",
            f"DELETE FROM orders WHERE status = 'cancelled' AND created_at < {cutoff};",
            f"DELETE FROM stock WHERE qty = 0 AND reserved = 0 AND warehouse_id = {r.randint(1, 400)};",
            f"DELETE FROM products WHERE id = {self._id()} AND discontinued;",
            "DELETE FROM reservations AS rv USING orders AS o\n"
            f"WHERE o.id = rv.order_id AND o.status = '{r.choice(STATUSES)}';",
        )
        return r.choice(options)

    def write_without_where(self) -> str:
        options = (
            "DELETE FROM reservations;",
            "UPDATE stock SET reserved = 0;",
            "UPDATE products SET discontinued = false;",
            "DELETE FROM order_lines;",
        )
        return self.rng.choice(options)

    def select_join(self) -> str:
        r = self.rng
        options = (
            f"""
            SELECT w.name, p.sku, s.qty, s.reserved
            FROM stock AS s
            JOIN warehouses AS w ON w.id = s.warehouse_id
            JOIN products AS p ON p.id = s.product_id
            WHERE s.qty - s.reserved < {r.randint(0, 50)}
            ORDER BY s.qty LIMIT {r.randint(10, 500)};""",
            f"""
            SELECT o.id, o.status, sum(ol.qty * ol.unit_price) AS value
            FROM orders AS o
            JOIN order_lines AS ol ON ol.order_id = o.id
            WHERE o.created_at >= now() - {self._days()}
            GROUP BY o.id, o.status
            HAVING sum(ol.qty) > {r.randint(1, 100)};""",
            f"""
            SELECT rv.id, rv.qty, s.qty AS on_hand FROM reservations AS rv
            LEFT JOIN stock AS s ON s.id = rv.stock_id WHERE rv.order_id = {self._id()};""",
            f"""
            SELECT w.city, count(*) AS orders FROM orders AS o JOIN warehouses AS w ON w.id = o.warehouse_id
            WHERE o.status = '{r.choice(STATUSES)}' GROUP BY w.city ORDER BY orders DESC;""",
            f"""
            SELECT p.id, p.sku FROM products AS p
            WHERE NOT EXISTS (SELECT 1 FROM stock AS s WHERE s.product_id = p.id)
            LIMIT {r.randint(10, 100)};""",
        )
        return block(r.choice(options))

    def insert_select(self) -> str:
        r = self.rng
        options = (
            f"""
            INSERT INTO reservations (order_id, stock_id, qty, expires_at)
            SELECT ol.order_id, s.id, ol.qty, now() + interval '30 minutes'
            FROM order_lines AS ol
            JOIN orders AS o ON o.id = ol.order_id
            JOIN stock AS s ON s.product_id = ol.product_id AND s.warehouse_id = o.warehouse_id
            WHERE o.id = {self._id()};""",
            f"""
            INSERT INTO stock (warehouse_id, product_id, qty)
            SELECT {r.randint(1, 400)}, p.id, 0 FROM products AS p WHERE NOT p.discontinued
            ON CONFLICT (warehouse_id, product_id) DO NOTHING;""",
            f"""
            INSERT INTO order_lines (order_id, product_id, qty, unit_price)
            SELECT {self._id()}, p.id, 1, p.unit_price FROM products AS p
            WHERE p.sku = 'SKU-{r.randint(1, 999_999):06d}';""",
        )
        return block(r.choice(options))

    def cte_write(self) -> str:
        r = self.rng
        low = self._id()
        options = (
            f"""
            WITH moved AS (
                UPDATE stock SET qty = qty - {r.randint(1, 20)}
                WHERE id = {self._id()} AND qty >= {r.randint(1, 20)}
                RETURNING id, product_id, qty
            )
            INSERT INTO stock (warehouse_id, product_id, qty)
            SELECT {r.randint(1, 400)}, product_id, qty FROM moved
            ON CONFLICT (warehouse_id, product_id) DO UPDATE SET qty = stock.qty + EXCLUDED.qty;""",
            f"""
            WITH expired AS (
                DELETE FROM reservations WHERE expires_at < now() - {self._days()}
                RETURNING stock_id, qty
            )
            UPDATE stock AS s SET reserved = s.reserved - e.qty
            FROM expired AS e WHERE s.id = e.stock_id;""",
            f"""
            WITH totals AS (
                SELECT order_id, sum(qty * unit_price) AS total FROM order_lines
                WHERE order_id BETWEEN {low} AND {low + r.randint(10, 5_000)} GROUP BY order_id
            )
            UPDATE orders AS o SET total = t.total FROM totals AS t WHERE o.id = t.order_id;""",
        )
        return block(r.choice(options))

    # ---- DDL ---------------------------------------------------------------------------------------

    def create_table(self) -> str:
        n = self._next()
        kind = self.rng.choice(("stock_snapshot", "order_archive", "reservation_log"))
        name = f"{kind}_{n}"
        self.scratch_tables.append(name)
        columns = {
            "stock_snapshot": (
                "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                "stock_id bigint NOT NULL REFERENCES stock (id)",
                "qty integer NOT NULL",
                "taken_at timestamptz NOT NULL DEFAULT now()",
            ),
            "order_archive": (
                "LIKE orders INCLUDING DEFAULTS",
                "archived_at timestamptz NOT NULL DEFAULT now()",
            ),
            "reservation_log": (
                "id bigserial PRIMARY KEY",
                "reservation_id bigint",
                "event text NOT NULL CHECK (event IN ('created', 'released', 'expired'))",
                "payload jsonb",
            ),
        }[kind]
        exists = "IF NOT EXISTS " if self.rng.random() < 0.5 else ""
        body = ",\n".join(f"    {c}" for c in columns)
        return f"CREATE TABLE {exists}{name} (\n{body}\n);"

    def add_column(self) -> str:
        table = self._table()
        column = f"{self.rng.choice(('note', 'flag', 'source', 'batch', 'extra'))}_{self._next()}"
        self.added_columns.append((table, column))
        kind, default = self.rng.choice(NEW_COLUMN_TYPES)
        variant = self.rng.random()
        if variant < 0.4:
            suffix = ""
        elif variant < 0.65:
            suffix = f" DEFAULT {default}"
        elif variant < 0.85:
            suffix = f" NOT NULL DEFAULT {default}"
        else:
            suffix = " NOT NULL"
        exists = "IF NOT EXISTS " if self.rng.random() < 0.3 else ""
        return f"ALTER TABLE {table} ADD COLUMN {exists}{column} {kind}{suffix};"

    def alter_type(self) -> str:
        table, column, kind = self.rng.choice(TYPE_CHANGES)
        using = f" USING {column}::{kind.split('(')[0]}" if self.rng.random() < 0.3 else ""
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}{using};"

    def create_index(self) -> str:
        table = self._table()
        columns = self.rng.sample(COLUMNS[table], self.rng.choice((1, 1, 2)))
        name = f"{table}_{'_'.join(columns)}_idx_{self._next()}"
        self.indexes.append(name)
        unique = "UNIQUE " if self.rng.random() < 0.1 else ""
        concurrently = "CONCURRENTLY " if self.rng.random() < 0.5 else ""
        exists = "IF NOT EXISTS " if self.rng.random() < 0.4 else ""
        where = ""
        if table == "orders" and self.rng.random() < 0.5:
            where = f" WHERE status = '{self.rng.choice(STATUSES)}'"
        elif table == "stock" and self.rng.random() < 0.5:
            where = " WHERE qty > 0"
        return f"CREATE {unique}INDEX {concurrently}{exists}{name} ON {table} ({', '.join(columns)}){where};"

    def drop_index(self) -> str:
        if self.indexes:
            name = self.indexes.pop(self.rng.randrange(len(self.indexes)))
        else:
            name = f"stock_qty_idx_{self._next()}"
        concurrently = "CONCURRENTLY " if self.rng.random() < 0.5 else ""
        exists = "IF EXISTS " if self.rng.random() < 0.6 else ""
        return f"DROP INDEX {concurrently}{exists}{name};"

    def add_foreign_key(self) -> str:
        child, column, parent = self.rng.choice(FOREIGN_KEYS)
        name = f"{child}_{column}_fk_{self._next()}"
        on_delete = self.rng.choice(("", "", " ON DELETE RESTRICT", " ON DELETE CASCADE"))
        not_valid = self.rng.random() < 0.6
        if not_valid:
            self.unvalidated.append((child, name))
        suffix = " NOT VALID" if not_valid else ""
        return (
            f"ALTER TABLE {child} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {parent} (id){on_delete}{suffix};"
        )

    def add_check(self) -> str:
        table, check = self.rng.choice(
            (
                ("stock", "qty >= 0"),
                ("stock", "reserved <= qty"),
                ("products", "unit_price > 0"),
                ("order_lines", "qty BETWEEN 1 AND 1000"),
                ("orders", "total >= 0"),
            )
        )
        name = f"{table}_check_{self._next()}"
        if self.rng.random() < 0.7:
            self.unvalidated.append((table, name))
            return f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check}) NOT VALID;"
        return f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check});"

    def validate_constraint(self) -> str:
        if not self.unvalidated:
            return self.add_foreign_key()
        table, name = self.unvalidated.pop(0)
        return f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};"

    def set_timeout(self) -> str:
        r = self.rng
        return r.choice(
            (
                f"SET lock_timeout = '{r.choice((1, 2, 3, 5))}s';",
                f"SET statement_timeout = '{r.choice((30, 60, 300))}s';",
                "SET lock_timeout TO '2s';",
                "RESET lock_timeout;",
                f"SET idle_in_transaction_session_timeout = '{r.choice((1, 5))}min';",
            )
        )

    def vacuum(self) -> str:
        table = self._table()
        return self.rng.choice(
            (
                f"VACUUM {table};",
                f"VACUUM (ANALYZE) {table};",
                f"VACUUM (VERBOSE, ANALYZE) {table};",
                f"ANALYZE {table};",
                f"VACUUM FULL {table};" if self.rng.random() < 0.2 else f"VACUUM ANALYZE {table};",
            )
        )

    def comment_on(self) -> str:
        table = self._table()
        n = self._next()
        if self.indexes and self.rng.random() < 0.2:
            return f"COMMENT ON INDEX {self.rng.choice(self.indexes)} IS 'added by maintenance run {n}';"
        if self.rng.random() < 0.5:
            column = self.rng.choice(COLUMNS[table])
            return f"COMMENT ON COLUMN {table}.{column} IS 'reviewed in run {n}; see the stock runbook';"
        return f"COMMENT ON TABLE {table} IS 'Warehouse data; it''s owned by the logistics team ({n})';"

    def drop_scratch(self) -> str:
        if self.scratch_tables:
            return f"DROP TABLE IF EXISTS {self.scratch_tables.pop(0)};"
        if self.added_columns:
            table, column = self.added_columns.pop(0)
            return f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column};"
        return self.create_table()

    # ---- DO blocks and function bodies -------------------------------------------------------------

    def do_block(self) -> str:
        r = self.rng
        index = f"stock_qty_idx_{self._next()}"
        options = (
            """
            DO $$
            BEGIN
                UPDATE stock SET reserved = 0 WHERE reserved < 0;
            END
            $$;""",
            f"""
            DO $$
            DECLARE
                r record;
            BEGIN
                FOR r IN SELECT id FROM orders WHERE status = 'cancelled'
                    AND created_at < now() - {self._days()} LIMIT {r.randint(100, 1000)}
                LOOP
                    DELETE FROM order_lines WHERE order_id = r.id;
                    DELETE FROM orders WHERE id = r.id;
                END LOOP;
            END
            $$;""",
            f"""
            DO $do$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = '{index}') THEN
                    EXECUTE 'CREATE INDEX {index} ON stock (qty)';
                END IF;
            END
            $do$;""",
            """
            DO $$
            DECLARE
                n bigint;
            BEGIN
                SELECT count(*) INTO n FROM reservations WHERE expires_at < now();
                RAISE NOTICE 'expired reservations: %', n;
            END
            $$;""",
        )
        return block(r.choice(options))

    def function(self) -> str:
        n = self._next()
        options = (
            f"""
            CREATE OR REPLACE FUNCTION release_reservation_{n}(p_reservation bigint) RETURNS void
            LANGUAGE plpgsql AS $$
            DECLARE
                v_stock bigint;
                v_qty integer;
            BEGIN
                DELETE FROM reservations WHERE id = p_reservation
                RETURNING stock_id, qty INTO v_stock, v_qty;
                IF FOUND THEN
                    UPDATE stock SET reserved = reserved - v_qty WHERE id = v_stock;
                END IF;
            END;
            $$;""",
            f"""
            CREATE OR REPLACE FUNCTION available_qty_{n}(p_stock bigint) RETURNS integer
            LANGUAGE sql STABLE AS $$
                SELECT qty - reserved FROM stock WHERE id = p_stock
            $$;""",
            f"""
            CREATE OR REPLACE FUNCTION touch_stock_{n}() RETURNS trigger
            LANGUAGE plpgsql AS $fn$
            BEGIN
                NEW.updated_at := now();
                RETURN NEW;
            END;
            $fn$;""",
        )
        return block(self.rng.choice(options))


Generator = Callable[[ScriptGenerator], str]
DML_MIX: tuple[tuple[Generator, int], ...] = (
    (ScriptGenerator.insert_values, 22),
    (ScriptGenerator.update_by_id, 20),
    (ScriptGenerator.update_where, 6),
    (ScriptGenerator.delete_where, 11),
    (ScriptGenerator.write_without_where, 1),
    (ScriptGenerator.select_join, 16),
    (ScriptGenerator.insert_select, 6),
    (ScriptGenerator.cte_write, 6),
)
DDL_MIX: tuple[tuple[Generator, int], ...] = (
    (ScriptGenerator.create_table, 6),
    (ScriptGenerator.add_column, 16),
    (ScriptGenerator.alter_type, 5),
    (ScriptGenerator.create_index, 16),
    (ScriptGenerator.drop_index, 6),
    (ScriptGenerator.add_foreign_key, 8),
    (ScriptGenerator.add_check, 3),
    (ScriptGenerator.validate_constraint, 4),
    (ScriptGenerator.set_timeout, 14),
    (ScriptGenerator.vacuum, 7),
    (ScriptGenerator.comment_on, 8),
    (ScriptGenerator.drop_scratch, 2),
)
PROCEDURAL_SHARE = 0.008  # DO blocks and functions: "a few"
DDL_SHARE = 0.30
TRANSACTION_SHARE = 0.01  # share of DML slots that become a BEGIN; 2-4 DML; COMMIT; group


def _pick(rng: random.Random, mix: Sequence[tuple[Generator, int]]) -> Generator:
    return rng.choices([g for g, _ in mix], weights=[w for _, w in mix])[0]


def generate_script(statements: int, seed: int = SEED) -> tuple[str, Composition]:
    """Return a script of exactly `statements` top-level statements and its DML/DDL/procedural split."""
    rng = random.Random(seed)
    gen = ScriptGenerator(rng)
    comp = Composition()
    parts = [
        f"-- dbguard benchmark script: {statements} statements, generated by bench/check_speed.py "
        f"(random.Random({seed})).\n-- Warehouse maintenance: mixed DML and DDL. Do not run it.\n"
    ]

    def emit(sql: str, kind: str) -> None:
        if rng.random() < 0.04:
            parts.append(
                f"-- step {comp.total + 1}: {rng.choice(WORDS)} {rng.choice(('fix', 'cleanup', 'backfill'))}"
            )
        parts.append(sql)
        setattr(comp, kind, getattr(comp, kind) + 1)

    for sql in list(BASE_TABLES.values())[:statements]:
        emit(sql, "ddl")
    while comp.total < statements:
        left = statements - comp.total
        roll = rng.random()
        if roll < PROCEDURAL_SHARE:
            emit(gen.do_block() if rng.random() < 0.6 else gen.function(), "procedural")
        elif roll < PROCEDURAL_SHARE + DDL_SHARE:
            emit(_pick(rng, DDL_MIX)(gen), "ddl")
        elif rng.random() < TRANSACTION_SHARE and left >= 6:
            emit("BEGIN;", "dml")
            for _ in range(rng.randint(2, 4)):
                emit(_pick(rng, DML_MIX)(gen), "dml")
            emit("COMMIT;", "dml")
        else:
            emit(_pick(rng, DML_MIX)(gen), "dml")
    return "\n".join(parts) + "\n", comp


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


class BenchError(Exception):
    """The bench cannot produce a meaningful figure (invalid script, a tool crashed)."""


_PGLAST_COUNT = "import sys, pglast; print(len(pglast.parse_sql(open(sys.argv[1], encoding='utf-8').read())))"


def pglast_statement_count(script: Path, python_hint: Path | None) -> int:
    """Parse the script with pglast: in-process when importable, else with the python next to dbguard."""
    try:
        import pglast  # only for this sanity check; the bench itself is stdlib-only
    except ImportError:
        if python_hint is None or not python_hint.exists():
            raise BenchError("pglast is not importable and no venv python was found to run it") from None
        done = subprocess.run(
            [str(python_hint), "-c", _PGLAST_COUNT, str(script)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"pglast rejects the script:\n{done.stderr.strip()}") from None
        return int(done.stdout.strip())
    try:
        return len(pglast.parse_sql(script.read_text("utf-8")))
    except pglast.parser.ParseError as error:
        raise BenchError(f"pglast rejects the script: {error}") from None


def squawk_json_check(squawk: str, script_arg: str, env: dict[str, str]) -> Counter[str]:
    """Run squawk once with its JSON reporter (untimed): violations per rule; syntax errors fail."""
    out_path = OUT_DIR / "squawk_report.json"
    with out_path.open("wb") as out:
        done = subprocess.run(
            [squawk, "--reporter", "json", script_arg],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    if done.returncode not in (0, 1):
        raise BenchError(f"squawk --reporter json exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    try:
        violations = json.loads(out_path.read_text("utf-8") or "[]")
    except json.JSONDecodeError as error:
        raise BenchError(f"squawk --reporter json did not print JSON ({error}); see {out_path}") from None
    rules = Counter(str(v.get("rule_name")) for v in violations)
    if rules["syntax-error"]:
        first = next(v for v in violations if v.get("rule_name") == "syntax-error")
        raise BenchError(
            f"squawk reports {rules['syntax-error']} syntax error(s), first at line "
            f"{first.get('line')}: {first.get('message')}"
        )
    return rules


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------

# Each measured process is started by this small launcher, not by the bench itself: Linux carries a
# process's peak RSS across fork/vfork + exec, so a child spawned by the bench (which has generated the
# script and run pglast on it, ~70 MiB) would report at least the bench's own peak as its ru_maxrss.
# The launcher (python -I -S, stdlib only, ~10 MiB) times the tool with perf_counter around
# Popen + os.wait4 and prints "seconds cpu_seconds max_rss_kib exit_code" (cpu = user + system).
_LAUNCHER = """\
import os, subprocess, sys, time
out_path, err_path, *argv = sys.argv[1:]
with open(out_path, "wb") as out, open(err_path, "wb") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait again
print(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    max_rss_kib: int
    returncode: int


@dataclass
class Tool:
    name: str
    argv: list[str]
    ok_codes: tuple[int, ...]
    note: str = ""
    runs: list[Run] = field(default_factory=list)

    @property
    def stdout_path(self) -> Path:
        return OUT_DIR / f"{self.name}_stdout.txt"

    @property
    def stderr_path(self) -> Path:
        return OUT_DIR / f"{self.name}_stderr.txt"

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def median_rss_mib(self) -> float:
        return statistics.median(r.max_rss_kib for r in self.runs) / 1024


def launch(argv: list[str], stdout: Path, stderr: Path, env: dict[str, str]) -> Run:
    """Run argv from the repository root via the launcher: wall time, peak RSS and exit code."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(stdout), str(stderr), *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        seconds, cpu, rss, code = done.stdout.split()
        return Run(seconds=float(seconds), cpu_seconds=float(cpu), max_rss_kib=int(rss), returncode=int(code))
    except ValueError:
        raise BenchError(f"launcher failed for {' '.join(argv)}:\n{done.stderr.strip()}") from None


def run_once(tool: Tool, env: dict[str, str]) -> Run:
    """One timed run of the tool; a crash, an unexpected exit or a squawk syntax error fails the bench."""
    run = launch(tool.argv, tool.stdout_path, tool.stderr_path, env)
    if run.returncode not in tool.ok_codes:
        tail = tool.stderr_path.read_text("utf-8", errors="replace")[-2000:]
        raise BenchError(
            f"{tool.name} exited {run.returncode} (expected {tool.ok_codes}): {' '.join(tool.argv)}\n{tail}"
        )
    if tool.name.startswith("squawk"):
        output = tool.stdout_path.read_bytes() + tool.stderr_path.read_bytes()
        if b"syntax-error" in output or b"panicked" in output:
            raise BenchError(f"{tool.name} reported a parse error or crashed; see {tool.stdout_path}")
    return run


def rss_floor_kib(env: dict[str, str]) -> int | None:
    """Peak RSS the launcher reports for `true`: the floor under every figure in the table."""
    true = shutil.which("true")
    if true is None:
        return None
    return launch([true], OUT_DIR / "floor_stdout.txt", OUT_DIR / "floor_stderr.txt", env).max_rss_kib


def dbguard_summary(tool: Tool) -> tuple[dict[str, int], Counter[str], int]:
    """(JSON summary, findings per rule, statements it could not classify) of the last dbguard run."""
    try:
        report = json.loads(tool.stdout_path.read_text("utf-8"))
    except json.JSONDecodeError as error:
        raise BenchError(f"dbguard did not print a JSON report ({error}); see {tool.stdout_path}") from None
    rules: Counter[str] = Counter()
    unrecognized = 0
    for file in report.get("files", []):
        rules.update(str(f.get("rule")) for f in file.get("findings", []) if not f.get("waived"))
        unrecognized += sum(1 for s in file.get("statements", []) if s.get("kind") == "UNRECOGNIZED")
    return dict(report.get("summary", {})), rules, unrecognized


_ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\")


def squawk_tty_count(tool: Tool) -> int | None:
    """The N of squawk's closing "Found N issues in 1 file" line (tty reporter), if present."""
    text = _ANSI.sub("", tool.stdout_path.read_text("utf-8", errors="replace"))
    match = re.search(r"Found (\d+) issues? in", text)
    return int(match.group(1)) if match else None


def squawk_json_count(tool: Tool) -> int:
    try:
        return len(json.loads(tool.stdout_path.read_text("utf-8") or "[]"))
    except json.JSONDecodeError as error:
        raise BenchError(
            f"squawk --reporter json did not print JSON ({error}); see {tool.stdout_path}"
        ) from None


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def default_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name  # the venv's bin/ when run with .venv/bin/python
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    return found or name


def script_label(statements: int) -> str:
    return f"{statements // 1000}k" if statements >= 1000 and statements % 1000 == 0 else str(statements)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time dbguard check against squawk on a generated script.")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per tool (default 5)")
    parser.add_argument("--statements", type=int, default=10_000, help="script size (default 10000)")
    parser.add_argument("--dbguard", default=None, help="dbguard executable (default: the venv's)")
    parser.add_argument("--squawk", default=None, help="squawk executable (default: the venv's)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.statements < 1:
        parser.error("--runs and --statements must be at least 1")
    return args


def _top(rules: Counter[str], n: int = 4) -> str:
    return ", ".join(f"{rule} {count:,}" for rule, count in rules.most_common(n)) or "none"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [f"{row[0]:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True))]
        print("  ".join(cells))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dbguard = args.dbguard or default_tool("dbguard")
    squawk = args.squawk or default_tool("squawk")
    resolved = [shutil.which(exe) for exe in (dbguard, squawk)]
    if None in resolved:
        print(f"error: {dbguard if resolved[0] is None else squawk} is not an executable "
              "(use --dbguard / --squawk)", file=sys.stderr)  # fmt: skip
        return 2
    dbguard, squawk = (str(Path(exe).absolute()) for exe in resolved if exe is not None)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBGUARD_")}

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    script = OUT_DIR / f"bench_{script_label(args.statements)}.sql"
    script_arg = str(script.relative_to(REPO_ROOT))
    text, comp = generate_script(args.statements)
    script.write_text(text, "utf-8")

    one = OUT_DIR / "one_statement.sql"
    one.write_text("ALTER TABLE stock ADD COLUMN note text;\n", "utf-8")
    one_arg = str(one.relative_to(REPO_ROOT))
    tools = [  # like for like: each tool's text report, then each tool's JSON report, of the same script
        Tool("dbguard-text", [dbguard, "check", script_arg, "--fail-on", "never"], ok_codes=(0,)),
        Tool("squawk-text", [squawk, script_arg], ok_codes=(0, 1)),  # exit 1: violations found
        Tool("dbguard-json", [dbguard, "check", script_arg, "--format", "json", "--fail-on", "never"],
             ok_codes=(0,)),  # --fail-on never: exit 0 whatever it finds
        Tool("squawk-json", [squawk, "--reporter", "json", script_arg], ok_codes=(0, 1)),
        Tool("dbguard-1stmt", [dbguard, "check", one_arg], ok_codes=(0, 1),
             note="start-up: a one-statement file, as a pre-commit hook runs it"),
        Tool("squawk-1stmt", [squawk, one_arg], ok_codes=(0, 1)),
    ]  # fmt: skip
    by_name = {tool.name: tool for tool in tools}
    try:
        parsed = pglast_statement_count(script, Path(dbguard).parent / "python")
        if parsed != args.statements:
            raise BenchError(f"pglast parses {parsed} statements, expected {args.statements}")
        squawk_rules = squawk_json_check(squawk, script_arg, env)
        floor = rss_floor_kib(env)
        print(f"script   {script_arg}: {comp.total:,} statements (DML {comp.dml:,}, DDL {comp.ddl:,}, "
              f"DO/function {comp.procedural:,}), {len(text.encode()) / 2**20:.2f} MiB, "
              f"{text.count(chr(10)):,} lines")  # fmt: skip
        print(f"valid    pglast parses {parsed:,} statements; squawk reports no syntax-error")
        print(f"runs     {args.runs} measured per tool after 1 warm-up each, interleaved; cwd {REPO_ROOT}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")  # fmt: skip
        if floor is not None:
            print(f"         peak RSS is per process (os.wait4); launcher floor {floor / 1024:.1f} MiB")
        for tool in tools:
            shown = " ".join([Path(tool.argv[0]).name, *tool.argv[1:]])
            print(f"         {tool.name:<12} {shown}" + (f"   ({tool.note})" if tool.note else ""))
        print(flush=True)

        for tool in tools:  # warm-up: page cache, .pyc files
            run_once(tool, env)
        for i in range(args.runs):  # interleaved; the first tool of a round rotates
            for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:
                tool.runs.append(run_once(tool, env))
        summary, dbguard_rules, unrecognized = dbguard_summary(by_name["dbguard-json"])
        dbguard_findings = sum(summary.get(k, 0) for k in ("error", "warning", "info"))
        findings: dict[str, int | None] = {
            "dbguard-text": dbguard_findings,
            "squawk-text": squawk_tty_count(by_name["squawk-text"]),
            "dbguard-json": dbguard_findings,
            "squawk-json": squawk_json_count(by_name["squawk-json"]),
            "dbguard-1stmt": None,
            "squawk-1stmt": None,
        }
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2

    rows = [("tool", "median s", "min s", "max s", "cpu s", "peak RSS MiB", "exit", "findings")]
    for tool in tools:
        seconds = [r.seconds for r in tool.runs]
        count = findings[tool.name]
        rows.append((tool.name, f"{tool.median_seconds:.3f}", f"{min(seconds):.3f}", f"{max(seconds):.3f}",
                     f"{statistics.median(r.cpu_seconds for r in tool.runs):.3f}",
                     f"{tool.median_rss_mib:.1f}", "/".join(sorted({str(r.returncode) for r in tool.runs})),
                     "?" if count is None else f"{count:,}"))  # fmt: skip
    _print_table(rows)
    print()
    print(f"dbguard  {summary.get('statements', 0):,} statements checked (with nested ones): "
          f"{summary.get('error', 0):,} error, {summary.get('warning', 0):,} warning, "
          f"{summary.get('info', 0):,} info, "
          f"{summary.get('waived', 0):,} waived; {unrecognized} it could not classify")  # fmt: skip
    print(f"dbguard  top rules: {_top(dbguard_rules)}")
    print(f"squawk   top rules: {_top(squawk_rules)}")
    pairs = (("dbguard-text", "squawk-text", TARGET_TEXT), ("dbguard-json", "squawk-json", TARGET_JSON))
    for ours, theirs, target in pairs:
        ratio = by_name[ours].median_seconds / by_name[theirs].median_seconds
        verdict = "met" if ratio <= target else "not met"
        print(f"ratio {ours}/{theirs} (median wall time): {ratio:.2f}  target <= {target}: {verdict}")
    start = by_name["dbguard-1stmt"].median_seconds
    verdict = "met" if start < TARGET_START_SECONDS else "not met"
    squawk_start = by_name["squawk-1stmt"].median_seconds
    print(f"start-up dbguard check of one statement: {start:.3f} s (squawk {squawk_start:.3f} s)"
          f"  target < {TARGET_START_SECONDS} s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
