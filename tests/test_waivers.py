"""Inline waivers: on or above a statement, with a reason; waived findings stay in the report."""

from __future__ import annotations

from dbguard.dialects import Dialect
from tests.conftest import findings_for


def _by_rule(sql: str, dialect: Dialect = Dialect.POSTGRES) -> dict[str, list[bool]]:
    out: dict[str, list[bool]] = {}
    for finding in findings_for(sql, dialect):
        out.setdefault(finding.rule_id, []).append(finding.waived)
    return out


def test_waiver_above_covers_only_the_next_statement() -> None:
    sql = (
        "SET lock_timeout = '1s';\n"
        '-- dbguard: allow ban-truncate reason="staging, rebuilt nightly"\n'
        "TRUNCATE staging;\n"
        "TRUNCATE stock;\n"
    )
    assert _by_rule(sql)["ban-truncate"] == [True, False]


def test_trailing_waiver_on_the_same_line() -> None:
    sql = "SET lock_timeout = '1s';\nTRUNCATE staging; -- dbguard: allow ban-truncate reason=\"nightly\"\n"
    assert _by_rule(sql)["ban-truncate"] == [True]


def test_waived_finding_keeps_its_reason() -> None:
    sql = '-- dbguard: allow ban-delete-without-where reason="table is a queue, drained on purpose"\nDELETE FROM q;'
    (finding,) = [f for f in findings_for(sql) if f.rule_id == "ban-delete-without-where"]
    assert finding.waived_reason == "table is a queue, drained on purpose"


def test_waiver_without_reason_waives_nothing() -> None:
    rules = _by_rule("-- dbguard: allow ban-delete-without-where\nDELETE FROM q;")
    assert rules["ban-delete-without-where"] == [False]
    assert rules["waiver-without-reason"] == [False]


def test_waiver_covers_sql_nested_in_a_do_block() -> None:
    sql = '-- dbguard: allow ban-delete-without-where reason="queue drain"\nDO $$ BEGIN DELETE FROM q; END $$;'
    assert _by_rule(sql)["ban-delete-without-where"] == [True]


def test_waiver_names_several_rules() -> None:
    sql = '-- dbguard: allow ban-truncate, require-lock-timeout reason="empty staging table"\nTRUNCATE staging;'
    rules = _by_rule(sql)
    assert rules["ban-truncate"] == [True] and rules["require-lock-timeout"] == [True]


def test_waiver_inside_a_string_is_not_a_waiver() -> None:
    sql = "SELECT '-- dbguard: allow ban-delete-without-where reason=\"x\"';\nDELETE FROM q;"
    assert _by_rule(sql)["ban-delete-without-where"] == [False]


def test_waiver_covers_sql_nested_two_levels_down() -> None:
    sql = (
        '-- dbguard: allow ban-delete-without-where reason="queue drain, reviewed"\n'
        "DO $$ BEGIN CREATE FUNCTION drain() RETURNS void LANGUAGE sql AS 'DELETE FROM q'; END $$;"
    )
    assert _by_rule(sql)["ban-delete-without-where"] == [True]
