"""Which column type changes rewrite the table, decided by dbguard.sql.pg_types and checked against the
server (PostgreSQL 15): a rewrite gives the table a new relfilenode. And ban-column-type-change built on it:
offline a change that may be binary coercible is a warning; with the current type known, it decides."""

from __future__ import annotations

import psycopg
import pytest

from dbguard.dialects import Dialect
from dbguard.policy.policy import load_policy
from dbguard.registry import RuleContext
from dbguard.rules import RULES
from dbguard.sql.parse import parse_script
from dbguard.sql.pg_types import ColumnType, may_skip_rewrite, rewrites

# (old, new): from ALTER TABLE's "binary coercible" exception and the types' length/precision support functions
PAIRS = [
    ("varchar(20)", "text"), ("character varying(20)", "varchar(40)"), ("varchar(40)", "varchar(20)"),
    ("varchar(20)", "varchar"), ("varchar", "varchar(10)"), ("text", "varchar"), ("text", "varchar(10)"),
    ("numeric(10,2)", "numeric"), ("numeric(10,2)", "numeric(12,2)"), ("numeric(10,2)", "numeric(12,3)"),
    ("numeric", "numeric(10,2)"), ("cidr", "inet"), ("inet", "cidr"), ("xml", "text"), ("integer", "bigint"),
    ("bigint", "integer"), ("timestamp", "timestamptz"), ("timestamp(3)", "timestamp(6)"),
    ("timestamp(6)", "timestamp(3)"), ("char(5)", "text"), ("char(5)", "char(8)"), ("integer[]", "bigint[]"),
    ("varbit(8)", "varbit(16)"), ("text", "text"), ("smallint", "integer"),
]  # fmt: skip


def test_the_server_rewrites_exactly_when_pg_types_says_so(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'Europe/Berlin'")  # timestamp -> timestamptz skips the rewrite only in UTC
        wrong = []
        for number, (old, new) in enumerate(PAIRS):
            table = f"t{number}"
            conn.execute(f"CREATE TABLE {table} (c {old})")
            conn.execute(f"INSERT INTO {table} VALUES (NULL)")
            before = conn.execute(f"SELECT pg_relation_filenode('{table}')").fetchone()
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN c TYPE {new}")
            after = conn.execute(f"SELECT pg_relation_filenode('{table}')").fetchone()
            old_type, new_type = ColumnType.parse(old), ColumnType.parse(new)
            assert old_type is not None and new_type is not None
            if rewrites(old_type, new_type) != (before != after):
                wrong.append(f"{old} -> {new}: server {'rewrote' if before != after else 'kept'} the table")
        assert not wrong, wrong


@pytest.mark.parametrize(("new", "maybe"), [("text", True), ("varchar(40)", True), ("numeric", True),
                                            ("inet", True), ("bigint", False), ("uuid", False),
                                            ("integer[]", False)])  # fmt: skip
def test_offline_only_some_new_types_may_be_reached_without_a_rewrite(new: str, maybe: bool) -> None:
    new_type = ColumnType.parse(new)
    assert new_type is not None and may_skip_rewrite(new_type) is maybe


def test_a_type_that_does_not_parse_is_none() -> None:
    assert ColumnType.parse("not a type (((") is None
    assert str(ColumnType.parse("character varying(20)")) == "varchar(20)"


def _findings(sql: str, column_types: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
    script = parse_script(sql, Dialect.POSTGRES, "types.sql")
    context = RuleContext(script, load_policy(None), column_types)
    rule = RULES["ban-column-type-change"]
    assert rule.check is not None
    return [(v.severity(rule.severity).value, v.message) for s in script.statements for v in rule.check(s, context)]


@pytest.mark.parametrize(("sql", "severity"), [
    ("ALTER TABLE stock ALTER COLUMN sku TYPE text", "warning"),
    ("ALTER TABLE stock ALTER COLUMN sku TYPE varchar(40)", "warning"),
    ("ALTER TABLE stock ALTER COLUMN price TYPE numeric", "warning"),
    ("ALTER TABLE hosts ALTER COLUMN addr TYPE inet", "warning"),
    ("ALTER TABLE stock ALTER COLUMN qty TYPE bigint", "error"),
    ("ALTER TABLE stock ALTER COLUMN sku TYPE text USING upper(sku)", "error"),
])  # fmt: skip
def test_offline_a_change_that_may_be_binary_coercible_is_a_warning(sql: str, severity: str) -> None:
    ((found, message),) = _findings(sql, {})
    assert found == severity, message
    assert ("may rewrite" in message) is (severity == "warning")


@pytest.mark.parametrize(("current", "new", "rewrite"), [
    ("character varying(20)", "text", False), ("character varying(20)", "varchar(40)", False),
    ("numeric(10,2)", "numeric", False), ("cidr", "inet", False),
    ("character varying(40)", "varchar(20)", True), ("integer", "text", True), ("integer", "bigint", True),
])  # fmt: skip
def test_with_the_current_type_known_the_rule_decides(current: str, new: str, rewrite: bool) -> None:
    found = _findings(f"ALTER TABLE public.stock ALTER COLUMN c TYPE {new}", {("stock", "c"): current})
    assert [severity for severity, _ in found] == (["error"] if rewrite else [])
