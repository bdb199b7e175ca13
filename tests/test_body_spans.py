"""A finding inside a DO block, a function body or a trigger body points at the statement inside the body
(its own line and column), not at the DO or CREATE line; where the body cannot be read back from the
script, at the enclosing statement, never at a wrong line."""

from __future__ import annotations

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import load_policy
from dbguard.report.check import text as render_text
from dbguard.report.check.model import CheckReport
from dbguard.sql.parse import parse_script
from tests.conftest import findings_for

FUNCTION = """\
SET lock_timeout = '2s';
CREATE FUNCTION purge(days int DEFAULT 30) RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
  DELETE FROM audit_log;
  RETURN;
END $body$;
"""


def located(sql: str, rule_id: str, dialect: Dialect = Dialect.POSTGRES) -> tuple[int, int, str]:
    (finding,) = [f for f in findings_for(sql, dialect) if f.rule_id == rule_id and f.origin]  # in the body
    assert finding.span is not None
    line = sql.splitlines()[finding.line - 1]
    return finding.line, finding.column, line[finding.column - 1 :]


def test_a_finding_in_a_function_body_points_at_line_4_not_at_create() -> None:
    assert located(FUNCTION, "ban-delete-without-where") == (4, 3, "DELETE FROM audit_log;")


def test_a_multi_line_do_block_statement_keeps_its_own_lines() -> None:
    sql = (
        "SET lock_timeout = '2s';\n"
        "DO $$\n"
        "DECLARE n int;\n"
        "BEGIN\n"
        "  SELECT count(*) INTO n FROM stock;\n"
        "  IF n > 0 THEN\n"
        "    UPDATE stock\n"
        "       SET qty = 0\n"
        "     WHERE 1 = 1;\n"
        "  END IF;\n"
        "END $$;\n"
    )
    (finding,) = [f for f in findings_for(sql) if f.rule_id == "ban-tautological-where"]
    assert (finding.line, finding.column) == (7, 5)
    assert finding.span is not None and (finding.span.end_line, finding.span.end_column) == (9, 17)
    assert finding.origin == "DO block"


def test_the_code_frame_shows_the_statement_in_the_body() -> None:
    policy = load_policy(None)
    file = check_text(FUNCTION, Dialect.POSTGRES, policy, "purge.sql")
    output = render_text.render(CheckReport(policy=policy, files=(file,)))
    assert "purge.sql:4:3 error ban-delete-without-where (in body of purge())" in output
    assert ">    4 |   DELETE FROM audit_log;" in output
    assert ">    2 | CREATE FUNCTION" not in output


def test_identical_statements_in_one_body_each_get_their_own_line() -> None:
    sql = "DO $$\nBEGIN\n  DELETE FROM t;\n  PERFORM 1;\n  DELETE FROM t;\nEND $$;\n"
    lines = [f.line for f in findings_for(sql) if f.rule_id == "ban-delete-without-where"]
    assert sorted(lines) == [3, 5]


def test_nested_bodies_and_dynamic_sql_are_located() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n"
        "  DO $x$ BEGIN\n"
        "    DELETE FROM orders;\n"
        "  END $x$;\n"
        "  EXECUTE 'TRUNCATE ' || 'orders';\n"
        "END $body$;\n"
    )
    statements = {s.text: s.span for s in parse_script(sql, Dialect.POSTGRES).statements}
    assert (statements["DELETE FROM orders"].line, statements["DELETE FROM orders"].column) == (4, 5)
    execute = statements["EXECUTE 'TRUNCATE ' || 'orders'"]
    assert (execute.line, sql.splitlines()[5][execute.column - 1 :]) == (6, "'TRUNCATE ' || 'orders';")


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        # an SQL-language function: its body is verbatim in the script
        ("CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $$\n  SELECT 1;\n  DELETE FROM products;\n$$;\n", 3, 3),
        # BEGIN ATOMIC on one line
        ("CREATE FUNCTION h() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM products; END;\n", 1, 60),
    ],
)
def test_sql_function_bodies_are_located(sql: str, line: int, column: int) -> None:
    assert located(sql, "ban-delete-without-where")[:2] == (line, column)


def test_a_sqlite_trigger_body_is_located() -> None:
    sql = "CREATE TRIGGER purge AFTER DELETE ON orders\nBEGIN\n  DELETE FROM order_lines;\nEND;\n"
    assert located(sql, "ban-delete-without-where", Dialect.SQLITE) == (3, 3, "DELETE FROM order_lines;")


def test_a_body_with_quote_escapes_keeps_the_lines_of_its_statements() -> None:
    sql = "DO '\nBEGIN\n  RAISE NOTICE ''x'';\n  DELETE FROM t;\nEND';\n"
    assert located(sql, "ban-delete-without-where") == (4, 3, "DELETE FROM t;")


def test_a_body_that_cannot_be_read_back_points_at_the_enclosing_statement() -> None:
    # An E'' string's \n escapes are line breaks PL/pgSQL counts but the script does not have.
    sql = "SELECT 1;\nDO E'BEGIN\\n\\n\\n  DELETE FROM t;\\nEND';\n"
    assert located(sql, "ban-delete-without-where")[:2] == (2, 1)
