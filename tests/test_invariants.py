"""Invariants, on the real SQLite warehouse and the real PostgreSQL warehouse alike."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dbguard.dialects import Dialect
from dbguard.guard.invariants import evaluate, quote_identifier, quote_table, sql_literal
from dbguard.policy.policy import Invariant, parse_policy
from dbguard.targets import postgres, sqlite
from dbguard.targets.model import CheckResult, Target
from dbguard.targets.url import DatabaseUrl


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The connected warehouse: a SQLite file, or a PostgreSQL database of this test's own."""
    opened: Target
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("warehouse_sqlite")
        opened = sqlite.connect(DatabaseUrl.parse(f"sqlite:///{path}"))
    else:
        opened = postgres.connect(DatabaseUrl.parse(request.getfixturevalue("warehouse_pg")))
    yield opened
    opened.close()


def execute(target: Target, statement: str) -> None:
    """Change data on the target's own connection, as a script does inside dbguard's transaction."""
    assert isinstance(target, sqlite.SqliteTarget | postgres.PostgresTarget)
    target.conn.execute(statement)


def check(target: Target, invariant: Invariant) -> CheckResult:
    (result,) = evaluate([invariant], target, {}, {})
    assert result.name == invariant.name
    return result


# -- sql --


def test_sql_passes_when_the_query_returns_no_rows(target: Target) -> None:
    result = check(target, Invariant("reserved within qty", "sql", sql="SELECT * FROM stock WHERE reserved > qty;"))
    assert result.passed and not result.skipped and result.sample == ()


def test_sql_fails_with_the_rows_it_returned(target: Target) -> None:
    result = check(target, Invariant("few orders", "sql", sql="SELECT id FROM orders WHERE id <= 3 ORDER BY id"))
    assert not result.passed
    assert result.sample == ((1,), (2,), (3,))
    assert result.detail.startswith("3 row(s)")


def test_a_failing_sample_is_limited_to_ten_rows(target: Target) -> None:
    result = check(target, Invariant("no stock", "sql", sql="SELECT warehouse_id, product_id FROM stock"))
    assert not result.passed
    assert len(result.sample) == 10
    assert result.detail.startswith("more than 10 row(s)")


@pytest.mark.parametrize(("sql", "error"), [
    ("SELEC 1", "syntax error"),
    ("SELECT * FROM no_such_table", "no_such_table"),
    ("SELECT no_such_column FROM stock", "no_such_column"),
    ("DELETE FROM stock", "syntax error"),  # not a query: it could never "return no rows"
    ("SELECT 1; SELECT 2", ""),
])  # fmt: skip
def test_sql_that_cannot_run_fails_closed(target: Target, sql: str, error: str) -> None:
    result = check(target, Invariant("broken", "sql", sql=sql))
    assert not result.passed and not result.skipped
    assert result.detail.startswith("could not be checked: ")
    assert error in result.detail
    assert target.query("SELECT count(*) FROM stock") == [(120,)]


def test_a_failed_invariant_does_not_stop_the_next_ones(target: Target) -> None:
    invariants = [Invariant("broken", "sql", sql="SELECT * FROM nope"),
                  Invariant("fine", "sql", sql="SELECT * FROM stock WHERE qty < 0"),
                  Invariant("names", "not_null", table="products", columns=("name",))]  # fmt: skip
    results = evaluate(invariants, target, {}, {})
    assert [(r.name, r.passed) for r in results] == [("broken", False), ("fine", True), ("names", True)]


# -- not_null --


def test_not_null(target: Target) -> None:
    invariant = Invariant("product names", "not_null", table="products", columns=("name", "unit_price"))
    assert check(target, invariant).passed
    execute(target, "UPDATE products SET name = NULL WHERE id IN (2, 5)")
    result = check(target, invariant)
    assert not result.passed
    assert sorted(row[0] for row in result.sample) == [2, 5]
    assert result.detail == "2 row(s) of products with NULL in name, unit_price"


@pytest.mark.parametrize("kind", ["not_null", "unique", "accepted_values"])
def test_a_missing_table_or_column_fails_closed(target: Target, kind: str) -> None:
    missing_table = check(target, Invariant("t", kind, table="nope", columns=("name",), values=("a",)))
    assert not missing_table.passed and missing_table.detail == "table 'nope' does not exist"
    # SQLite reads a bare "nope" that is no column as the string 'nope': that must not pass
    missing_column = check(target, Invariant("c", kind, table="products", columns=("nope",), values=("a",)))
    assert not missing_column.passed and not missing_column.skipped
    assert missing_column.detail.startswith("could not be checked: ") and "nope" in missing_column.detail


# -- unique --


def test_unique(target: Target) -> None:
    assert check(target, Invariant("sku", "unique", table="products", columns=("sku",))).passed
    assert check(target, Invariant("stock key", "unique", table="stock", columns=("warehouse_id", "product_id"))).passed
    execute(target, "UPDATE products SET name = 'Product 1' WHERE id = 2")
    result = check(target, Invariant("names", "unique", table="products", columns=("name",)))
    assert not result.passed
    assert result.sample == (("Product 1", 2),)


def test_unique_duplicate_groups_are_sampled(target: Target) -> None:
    result = check(target, Invariant("one warehouse per product", "unique", table="stock", columns=("product_id",)))
    assert not result.passed
    assert len(result.sample) == 10 and all(count == 3 for _, count in result.sample)


def test_unique_treats_nulls_as_distinct(target: Target) -> None:
    execute(target, "UPDATE warehouses SET code = NULL")
    assert check(target, Invariant("codes", "unique", table="warehouses", columns=("code",))).passed


# -- accepted_values --


def test_accepted_values(target: Target) -> None:
    statuses = Invariant("status", "accepted_values", table="orders", columns=("status",),
                         values=("open", "shipped", "cancelled"))  # fmt: skip
    assert check(target, statuses).passed
    result = check(target, Invariant("no cancelled", "accepted_values", table="orders", columns=("status",),
                                     values=("open", "shipped")))  # fmt: skip
    assert not result.passed
    assert result.detail == "10 row(s) of orders with status not accepted"
    assert {row[2] for row in result.sample} == {"cancelled"}


def test_accepted_values_with_null_in_the_list_still_catches_other_values(target: Target) -> None:
    result = check(target, Invariant("status", "accepted_values", table="orders", columns=("status",),
                                     values=("open", "shipped", None)))  # fmt: skip
    assert not result.passed


def test_accepted_values_ignores_null_rows(target: Target) -> None:
    execute(target, "UPDATE warehouses SET code = NULL WHERE id = 1")
    assert check(target, Invariant("codes", "accepted_values", table="warehouses", columns=("code",),
                                   values=("W2", "W3"))).passed  # fmt: skip


def test_accepted_values_quotes_strings_safely(target: Target) -> None:
    execute(target, "UPDATE orders SET customer = 'O''Brien \\ Sons' WHERE id = 1")
    others = tuple(f"customer {i}" for i in range(2, 31))
    assert check(target, Invariant("c", "accepted_values", table="orders", columns=("customer",),
                                   values=("O'Brien \\ Sons", *others))).passed  # fmt: skip
    injected = check(target, Invariant("c", "accepted_values", table="orders", columns=("customer",),
                                       values=("x') OR ('1' = '1", *others)))  # fmt: skip
    assert not injected.passed and injected.sample[0][0] == 1 and len(injected.sample) == 1


def test_accepted_values_booleans_and_numbers(target: Target) -> None:
    def discontinued(*values: Any) -> CheckResult:
        return check(target, Invariant("d", "accepted_values", table="products", columns=("discontinued",),
                                       values=values))  # fmt: skip

    assert discontinued(False).passed
    assert not discontinued(True).passed
    prices = tuple(i * 1.5 for i in range(1, 41))
    assert check(target, Invariant("p", "accepted_values", table="products", columns=("unit_price",),
                                   values=prices)).passed  # fmt: skip
    result = check(target, Invariant("p", "accepted_values", table="products", columns=("unit_price",),
                                     values=prices[:-1]))  # fmt: skip
    assert not result.passed and [row[0] for row in result.sample] == [40]


def test_literals_round_trip_through_the_database(target: Target) -> None:
    values = ["it's", "back\\slash", "\\'", "''", "", "naïve 🚚", -3, 2**40, 0.1, -1.5e-7]
    listed = ", ".join(sql_literal(value, target.dialect) for value in values)
    (row,) = target.query(f"SELECT {listed}")
    assert [float(v) if isinstance(v, Decimal) else v for v in row] == values


# -- row_count --


def row_count_results(target: Target, invariants: list[Invariant]) -> list[CheckResult]:
    (lines,) = target.resolve(["order_lines"]).values()
    before = target.table_stats([lines])
    execute(target, "DELETE FROM order_lines WHERE order_id <= 3")  # 6 of 60 rows: 10%
    after = target.table_stats([lines])
    assert (before[lines].rows, after[lines].rows) == (60, 54)
    return evaluate(invariants, target, before, after)


def test_row_count_bounds(target: Target) -> None:
    def bounded(**bounds: Any) -> Invariant:
        return Invariant(f"bounds {bounds}", "row_count", table="order_lines", **bounds)

    cases = [
        (bounded(max_delete_percent=20), True),
        (bounded(max_delete_percent=10), True),
        (bounded(max_delete_percent=5), False),
        (bounded(min_delta=-6), True),
        (bounded(min_delta=-5), False),
        (bounded(max_delta=0), True),
        (bounded(max_delta=-7), False),
        (bounded(min_delta=1), False),
        (bounded(), True),
    ]
    results = row_count_results(target, [invariant for invariant, _ in cases])
    assert [r.passed for r in results] == [passed for _, passed in cases]
    assert "60 -> 54 row(s), net change -6" in results[0].detail
    assert results[2].detail.endswith("10.0% removed, more than 5%")
    assert results[4].detail.endswith("below the minimum change -5")


def test_row_count_without_stats_fails_closed(target: Target) -> None:
    (result,) = row_count_results(target, [Invariant("orders", "row_count", table="orders", max_delta=0)])
    assert not result.skipped and not result.passed
    assert "no row counts for orders before and after" in result.detail


def test_row_count_of_a_dropped_table_fails(target: Target) -> None:
    (lines,) = target.resolve(["order_lines"]).values()
    before = target.table_stats([lines])
    execute(target, "DROP TABLE order_lines")
    (result,) = evaluate([Invariant("lines", "row_count", table="order_lines", max_delete_percent=10)], target,
                         before, {})  # fmt: skip
    assert not result.passed and not result.skipped
    assert result.detail == "order_lines had 60 row(s) before the script and no longer exists"


# -- a policy's invariants, end to end --


def test_invariants_from_a_policy_file(target: Target) -> None:
    policy = parse_policy("""
[[invariants]]
name = "stock never negative"
sql = "SELECT * FROM stock WHERE qty < 0"

[[invariants]]
kind = "accepted_values"
table = "orders"
column = "status"
values = ["open", "shipped"]
""", "test")  # fmt: skip
    results = evaluate(policy.invariants, target, {}, {})
    assert [(r.name, r.passed) for r in results] == [("stock never negative", True), ("accepted_values #2", False)]


# -- quoting, without a database --


@pytest.mark.parametrize(("value", "dialect", "literal"), [
    ("it's", Dialect.SQLITE, "'it''s'"),
    ("it's", Dialect.POSTGRES, "'it''s'"),
    ("a\\b'c", Dialect.POSTGRES, "E'a\\\\b''c'"),
    ("a\\b", Dialect.SQLITE, "'a\\b'"),
    ("a\\b", Dialect.MYSQL, "'a\\\\b'"),
    (True, Dialect.POSTGRES, "TRUE"),
    (False, Dialect.POSTGRES, "FALSE"),
    (True, Dialect.SQLITE, "1"),
    (False, Dialect.SQLITE, "0"),
    (None, Dialect.SQLITE, "NULL"),
    (42, Dialect.POSTGRES, "42"),
    (-1.5, Dialect.SQLITE, "-1.5"),
    (Decimal("12.50"), Dialect.POSTGRES, "12.50"),
])  # fmt: skip
def test_sql_literal(value: Any, dialect: Dialect, literal: str) -> None:
    assert sql_literal(value, dialect) == literal


@pytest.mark.parametrize("value", [math.nan, math.inf, "nul\0byte", object(), [1]])
def test_values_with_no_literal_are_refused(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        sql_literal(value, Dialect.POSTGRES)


def test_identifier_quoting() -> None:
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_table("public.stock", Dialect.POSTGRES) == '"public"."stock"'
    assert quote_table("a.b", Dialect.SQLITE) == '"a.b"'
