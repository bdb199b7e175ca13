"""PostgreSQL's `SELECT ... INTO new_table` creates a table (the server's SELECT reference page: "SELECT
INTO creates a new table and fills it with data computed by a query"); PL/pgSQL's `SELECT ... INTO
variable` assigns a variable and creates nothing. What the classifier says about each, and the table the
server really creates."""

from __future__ import annotations

import psycopg

from dbguard.dialects import Dialect
from dbguard.sql.parse import parse_script

SELECT_INTO = "SELECT id, qty INTO stock_copy FROM stock WHERE qty < 0;"
PLPGSQL_INTO = "DO $$ DECLARE stock_copy bigint; BEGIN SELECT count(*) INTO stock_copy FROM stock; END $$;"


def test_select_into_a_table_is_classified_as_creating_it() -> None:
    (statement,) = parse_script(SELECT_INTO, Dialect.POSTGRES, "into.sql").statements
    assert statement.kind == "SELECT INTO"
    assert [(a.kind, a.table) for a in statement.actions] == [("create-table", "stock_copy")]
    assert statement.facts.tables_read == ("stock",)  # the new table is not read


def test_plpgsql_select_into_a_variable_creates_nothing() -> None:
    statements = parse_script(PLPGSQL_INTO, Dialect.POSTGRES, "into.sql").statements
    assert [s.kind for s in statements] == ["DO", "SELECT"]
    assert not [a for s in statements for a in s.actions if a.kind == "create-table"]


def test_the_server_creates_the_table_and_not_for_a_variable(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE stock (id bigint, qty integer)")
        conn.execute("INSERT INTO stock VALUES (1, -2), (2, 5)")
        conn.execute(PLPGSQL_INTO)
        assert conn.execute("SELECT to_regclass('stock_copy')").fetchone() == (None,)
        conn.execute(SELECT_INTO)
        assert conn.execute("SELECT id, qty FROM stock_copy").fetchall() == [(1, -2)]
