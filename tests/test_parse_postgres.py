"""The PostgreSQL parse layer: splitting as the server does, spans, and classification."""

from __future__ import annotations

import pytest

from dbguard.dialects import Dialect
from dbguard.sql.model import META_COMMAND, UNRECOGNIZED, LockMode
from dbguard.sql.parse import parse_script

L = LockMode


def parse(sql: str):  # type: ignore[no-untyped-def]
    return parse_script(sql, Dialect.POSTGRES).statements


def test_split_respects_strings_comments_and_dollar_quotes() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "UPDATE stock SET note = 'a;b' WHERE id = 1;\n"
        "SELECT E'it\\'s; fine';\n"
        "/* block; /* nested; */ still comment */ SELECT $tag$ ; $$ ; $tag$;\n"
        'SELECT ";" FROM "we;ird";\n'
    )
    statements = parse(sql)
    assert [s.kind for s in statements] == ["UPDATE", "SELECT", "SELECT", "SELECT"]
    assert statements[0].text == "UPDATE stock SET note = 'a;b' WHERE id = 1"
    assert statements[1].text == "SELECT E'it\\'s; fine'"
    assert statements[2].text == "SELECT $tag$ ; $$ ; $tag$"
    assert statements[3].facts.tables_read == ("we;ird",)


def test_spans_count_characters_not_bytes() -> None:
    statements = parse("SELECT 'é€';\n  UPDATE café SET a = 1 WHERE id = 2;")
    assert statements[1].span.line == 2 and statements[1].span.column == 3
    assert statements[1].text == "UPDATE café SET a = 1 WHERE id = 2"


def test_psql_meta_command_is_its_own_statement() -> None:
    statements = parse("\\set ON_ERROR_STOP on\nSELECT 1;\n\\i other.sql\nDELETE FROM t WHERE id = 1;")
    assert [s.kind for s in statements] == [META_COMMAND, "SELECT", META_COMMAND, "DELETE"]
    assert statements[2].span.line == 3


def test_one_broken_statement_does_not_hide_the_others() -> None:
    statements = parse("SELECT 1;\nDELETE FROM WHERE;\nTRUNCATE stock;")
    assert [s.kind for s in statements] == ["SELECT", UNRECOGNIZED, "TRUNCATE"]
    assert statements[1].parse_error and "syntax error" in statements[1].parse_error
    assert statements[1].span.line == 2


def test_unterminated_string_is_unrecognized() -> None:
    statements = parse("SELECT 1;\nUPDATE t SET a = 'oops WHERE id = 1;")
    assert statements[-1].kind == UNRECOGNIZED


def test_do_block_and_function_bodies_are_extracted() -> None:
    statements = parse(
        "DO $$ BEGIN DELETE FROM stock; EXECUTE 'DROP TABLE x'; END $$;\n"
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'TRUNCATE orders';\n"
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC UPDATE stock SET qty = 0; END;\n"
    )
    nested = [(s.kind, s.origin, s.parent) for s in statements if s.parent]
    assert ("DELETE", "DO block", 1) in nested
    assert ("EXECUTE", "DO block", 1) in nested
    assert ("TRUNCATE", "body of f()", 4) in nested
    assert any(kind == "UPDATE" and origin == "body of p()" for kind, origin, _ in nested)


def test_delete_inside_cte_is_a_write() -> None:
    (statement,) = parse("WITH d AS (DELETE FROM stock RETURNING *) SELECT * FROM d JOIN products p ON true")
    assert statement.facts.tables_written == ("stock",)
    assert statement.facts.tables_read == ("products",)
    assert [a.kind for a in statement.actions] == ["delete"]


def test_quoted_and_mixed_case_names() -> None:
    (statement,) = parse('UPDATE "Stock" SET qty = 1 WHERE id = 1; ')
    assert statement.facts.tables_written == ("Stock",)
    (statement,) = parse("update STOCK set qty = 1 where id = 1")
    assert statement.facts.tables_written == ("stock",)
    (statement,) = parse("DELETE FROM inventory.stock WHERE id = 1")
    assert statement.facts.tables_written == ("inventory.stock",)


@pytest.mark.parametrize(
    ("sql", "kind", "lock", "transactional"),
    [
        ("SELECT * FROM stock", "SELECT", L.ACCESS_SHARE, True),
        ("SELECT * FROM stock FOR UPDATE", "SELECT", L.ROW_SHARE, True),
        ("INSERT INTO stock VALUES (1, 1, 1)", "INSERT", L.ROW_EXCLUSIVE, True),
        ("UPDATE stock SET qty = 1 WHERE id = 1", "UPDATE", L.ROW_EXCLUSIVE, True),
        ("DELETE FROM stock WHERE id = 1", "DELETE", L.ROW_EXCLUSIVE, True),
        ("MERGE INTO stock s USING x ON s.id = x.id WHEN MATCHED THEN DELETE", "MERGE", L.ROW_EXCLUSIVE, True),
        ("VACUUM stock", "VACUUM", L.SHARE_UPDATE_EXCLUSIVE, False),
        ("VACUUM FULL stock", "VACUUM", L.ACCESS_EXCLUSIVE, False),
        ("ANALYZE stock", "ANALYZE", L.SHARE_UPDATE_EXCLUSIVE, True),
        ("CREATE INDEX i ON stock (qty)", "CREATE INDEX", L.SHARE, True),
        ("CREATE INDEX CONCURRENTLY i ON stock (qty)", "CREATE INDEX", L.SHARE_UPDATE_EXCLUSIVE, False),
        ("DROP INDEX i", "DROP INDEX", L.ACCESS_EXCLUSIVE, True),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX", L.SHARE_UPDATE_EXCLUSIVE, False),
        ("REINDEX TABLE stock", "REINDEX", L.SHARE, True),
        ("VACUUM (FULL false) stock", "VACUUM", L.SHARE_UPDATE_EXCLUSIVE, False),
        ("VACUUM (FULL true, ANALYZE) stock", "VACUUM", L.ACCESS_EXCLUSIVE, False),
        ("REINDEX TABLE CONCURRENTLY stock", "REINDEX", L.SHARE_UPDATE_EXCLUSIVE, False),
        ("CLUSTER stock USING stock_pkey", "CLUSTER", L.ACCESS_EXCLUSIVE, True),
        ("LOCK TABLE stock IN SHARE MODE", "LOCK TABLE", L.SHARE, True),
        ("LOCK TABLE stock", "LOCK TABLE", L.ACCESS_EXCLUSIVE, True),
        ("TRUNCATE stock", "TRUNCATE", L.ACCESS_EXCLUSIVE, True),
        ("DROP TABLE stock", "DROP TABLE", L.ACCESS_EXCLUSIVE, True),
        ("ALTER TABLE stock ADD COLUMN note text", "ALTER TABLE", L.ACCESS_EXCLUSIVE, True),
        ("ALTER TABLE stock VALIDATE CONSTRAINT c", "ALTER TABLE", L.SHARE_UPDATE_EXCLUSIVE, True),
        ("ALTER TABLE stock DISABLE TRIGGER ALL", "ALTER TABLE", L.SHARE_ROW_EXCLUSIVE, True),
        (
            "ALTER TABLE stock ADD FOREIGN KEY (p) REFERENCES products (id) NOT VALID",
            "ALTER TABLE",
            L.SHARE_ROW_EXCLUSIVE,
            True,
        ),
        ("ALTER TABLE stock RENAME COLUMN qty TO quantity", "ALTER TABLE", L.ACCESS_EXCLUSIVE, True),
        (
            "CREATE TRIGGER t AFTER INSERT ON stock FOR EACH ROW EXECUTE FUNCTION f()",
            "CREATE TRIGGER",
            L.SHARE_ROW_EXCLUSIVE,
            True,
        ),
        ("REFRESH MATERIALIZED VIEW m", "REFRESH MATERIALIZED VIEW", L.ACCESS_EXCLUSIVE, True),
        ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM", None, False),
        ("CREATE DATABASE x", "CREATE DATABASE", None, False),
        ("BEGIN", "BEGIN", None, True),
        ("SET lock_timeout = '2s'", "SET", None, True),
        ("ALTER TYPE status ADD VALUE 'lost'", "ALTER TYPE", None, True),
        ("ALTER SEQUENCE s RESTART WITH 1", "ALTER SEQUENCE", L.SHARE_ROW_EXCLUSIVE, True),
    ],
)
def test_kind_lock_and_transaction_rule(sql: str, kind: str, lock: LockMode | None, transactional: bool) -> None:
    (statement,) = parse(sql)
    assert (statement.kind, statement.facts.lock, statement.facts.transactional) == (kind, lock, transactional)


def test_foreign_key_locks_the_referenced_table_too() -> None:
    (statement,) = parse("ALTER TABLE stock ADD CONSTRAINT f FOREIGN KEY (product_id) REFERENCES products (id)")
    assert set(statement.facts.tables_written) == {"stock", "products"}


def test_update_from_reads_other_tables() -> None:
    (statement,) = parse("UPDATE stock s SET qty = x.qty FROM staging x WHERE s.id = x.id")
    assert statement.facts.tables_written == ("stock",)
    assert statement.facts.tables_read == ("staging",)


def test_alter_table_takes_the_strongest_lock_of_its_subcommands() -> None:
    (fk_only,) = parse("ALTER TABLE stock ADD FOREIGN KEY (p) REFERENCES products (id)")
    assert fk_only.facts.lock is L.SHARE_ROW_EXCLUSIVE
    (mixed,) = parse("ALTER TABLE stock ADD COLUMN note text, ADD FOREIGN KEY (p) REFERENCES products (id)")
    assert mixed.facts.lock is L.ACCESS_EXCLUSIVE
    (check,) = parse("ALTER TABLE stock ADD CONSTRAINT c CHECK (qty >= 0) NOT VALID")
    assert check.facts.lock is L.ACCESS_EXCLUSIVE
