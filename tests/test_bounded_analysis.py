"""Analysis stays near-linear in the size of a statement, and nesting too deep to analyse fails closed.

Each case once took minutes (a DELETE whose WHERE is a sum of 16,000 terms: 245 s) or crashed with a
RecursionError (exit 70). The time limits are hang guards, ten times what the linear code needs on a busy
machine, not speed measurements: those live in bench/.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import load_policy
from dbguard.report.check.model import FileReport
from dbguard.sql.parse import MAX_BODY_DEPTH

GUARD_SECONDS = 30
POLICY = load_policy(None)


def checked(sql: str, dialect: Dialect) -> FileReport:
    started = time.monotonic()
    report = check_text(sql, dialect, POLICY)
    elapsed = time.monotonic() - started
    assert elapsed < GUARD_SECONDS, f"{elapsed:.0f} s for {len(sql):,} characters"
    return report


def rules(report: FileReport) -> set[str]:
    return {f.rule_id for f in report.findings}


def terms(n: int, term: Callable[[int], str], joiner: str) -> str:
    return joiner.join(term(i) for i in range(n))


@pytest.mark.parametrize("dialect", list(Dialect))
def test_a_flat_sum_of_16000_terms_is_analysed(dialect: Dialect) -> None:
    report = checked(f"DELETE FROM stock WHERE {terms(16_000, lambda i: f'c{i}', ' + ')} > 0;", dialect)
    assert rules(report) == set()


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("joiner", [" OR ", " AND "])
def test_long_and_or_chains_are_analysed(dialect: Dialect, joiner: str) -> None:
    report = checked(f"DELETE FROM stock WHERE {terms(4_000, lambda i: f'c{i} = {i}', joiner)};", dialect)
    assert rules(report) == set()


@pytest.mark.parametrize("dialect", list(Dialect))
def test_a_tautology_at_the_end_of_a_long_chain_is_found(dialect: Dialect) -> None:
    report = checked(f"DELETE FROM stock WHERE {terms(4_000, lambda i: f'c{i} = {i}', ' OR ')} OR 1 = 1;", dialect)
    assert rules(report) == {"ban-tautological-where"}
    (finding,) = report.findings
    assert len(finding.message) < 300  # the WHERE is shown cut short, not as 100 kB of SQL


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM stock WHERE " + "(" * 5_000 + "qty = 1" + ")" * 5_000 + ";",
        "DELETE FROM stock WHERE " + "NOT " * 5_000 + "qty;",
        "SELECT " + "abs(" * 5_000 + "1" + ")" * 5_000 + ";",
        "SELECT " + "(SELECT " * 2_000 + "1" + ")" * 2_000 + ";",
        "DELETE FROM stock WHERE qty > " + "".join(f"c{i} {'+-*/'[i % 4]} " for i in range(5_000)) + "1;",
    ],
    ids=["parentheses", "not", "functions", "subqueries", "mixed-arithmetic"],
)
def test_deep_nesting_is_analysed_or_fails_closed(dialect: Dialect, sql: str) -> None:
    report = checked(sql, dialect)
    unrecognized = [f for f in report.findings if f.rule_id == "unrecognized-statement"]
    assert len(report.script.statements) == 1
    if not report.script.statements[0].recognized:
        assert len(unrecognized) == 1, report.findings


def test_too_deep_for_the_parser_says_so() -> None:
    report = checked("DELETE FROM stock WHERE " + "(" * 5_000 + "qty = 1" + ")" * 5_000 + ";", Dialect.SQLITE)
    (finding,) = report.findings
    assert finding.rule_id == "unrecognized-statement"
    assert "nested too deeply for dbguard to analyse" in finding.message


def test_deparsing_a_deep_expression_fails_closed() -> None:
    """pglast parses a 2,000-term sum, but writing it back as SQL recurses once per term."""
    report = checked(f"SELECT set_config('a', {terms(2_000, str, ' + ')}::text, false);", Dialect.POSTGRES)
    assert "unrecognized-statement" in rules(report)


def nested_do_blocks(depth: int) -> str:
    sql = "DELETE FROM stock"
    for level in range(depth, 0, -1):
        sql = f"DO $d{level}$ BEGIN {sql}; END $d{level}$"
    return sql + ";"


def test_bodies_nested_up_to_the_limit_are_checked() -> None:
    assert rules(checked(nested_do_blocks(MAX_BODY_DEPTH), Dialect.POSTGRES)) == {"ban-delete-without-where"}


def test_bodies_nested_deeper_fail_closed() -> None:
    report = checked(nested_do_blocks(MAX_BODY_DEPTH + 1), Dialect.POSTGRES)
    (finding,) = report.findings
    assert finding.rule_id == "unrecognized-statement"
    assert f"bodies nested more than {MAX_BODY_DEPTH} deep" in finding.message


def test_mysql_create_index_with_trailing_garbage_is_unrecognized() -> None:
    report = checked("CREATE INDEX i ON t (c) garbage;", Dialect.MYSQL)
    assert rules(report) == {"unrecognized-statement"}


def test_mysql_create_index_with_online_options_and_garbage_is_unrecognized() -> None:
    report = checked("CREATE INDEX i ON t (c) ALGORITHM=INPLACE garbage;", Dialect.MYSQL)
    assert rules(report) == {"unrecognized-statement"}


def test_twenty_thousand_waived_statements() -> None:
    """Each waiver finds its statement by bisection: a scan per waiver took 81 s here."""
    sql = terms(20_000, lambda i: f'-- dbguard: allow ban-truncate reason="r{i}"\nTRUNCATE t{i};\n', "")
    report = checked(sql, Dialect.SQLITE)
    assert len(report.findings) == 20_000
    assert all(f.waived_reason == f"r{n}" for n, f in enumerate(report.findings))


def test_twenty_thousand_settings_before_a_strong_lock() -> None:
    """The settings before each statement are a view of one history: a copy per statement took 19 s here."""
    sql = "SET lock_timeout = '1s';\n" + terms(20_000, lambda i: f"SET x.a{i} = {i};\n", "")
    assert "require-lock-timeout" not in rules(checked(sql + "ALTER TABLE t ADD c int;", Dialect.POSTGRES))


@pytest.mark.parametrize(
    ("settings", "timeout_set"),
    [
        ("SET lock_timeout = '1s'; RESET ALL;", False),
        ("RESET ALL; SET lock_timeout = '1s';", True),
        ("SET lock_timeout = '1s'; SET lock_timeout TO DEFAULT;", False),
        ("SET lock_timeout = '1s'; RESET lock_timeout; SET lock_timeout = '2s';", True),
        ("SET lock_timeout = '1s'; SET lock_timeout = 0;", False),
    ],
)
def test_settings_as_they_stand_before_a_statement(settings: str, timeout_set: bool) -> None:
    report = checked(f"{settings}\nALTER TABLE t ADD c int;", Dialect.POSTGRES)
    assert ("require-lock-timeout" not in rules(report)) is timeout_set
