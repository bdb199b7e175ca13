"""The lock oracle: what `check` says each statement locks must be what the server really locks.

Each [[case]] of tests/fixtures/locks/statements.toml runs inside a transaction on the real PostgreSQL,
against tests/fixtures/locks/setup.sql (created once per module in a scratch database); this backend's
relation locks are then read from pg_locks, and the transaction is rolled back. For every relation, the
strongest mode the server holds on it must equal the mode in the statement's `Facts.locks`.

Which relations are compared (the rule, stated once):
- a relation that existed before the statement and that the statement names (its name is a whole word of
  the statement's text), or that `check` claims. A relation the server reaches only through the schema,
  not the script (a table's indexes, a partitioned table's partitions, a view's tables, the tables that
  use an altered domain, the table of a named index), is not compared: the script alone cannot tell it;
- a relation the statement creates is not compared: no other session can see it before the commit, so
  no one can wait for its lock. A name `check` claims that does not exist (DROP TABLE IF EXISTS) is not
  compared either;
- catalogs, TOAST tables and the oracle's own queries live in pg_catalog / pg_toast and are never user
  relations;
- a case may list `not_compared = {relation = "why"}`: the reason is in the fixture, next to the case.

[[outside]] statements refuse a transaction block (VACUUM, ... CONCURRENTLY): their documented lock,
with the page it comes from, must be what `check` claims.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbguard.dialects import Dialect
from dbguard.guard.execute import lock_label
from dbguard.sql.model import LockMode
from dbguard.sql.parse import parse_script
from tests.warehouse import scratch_database

FIXTURES = Path(__file__).parent / "fixtures" / "locks"
DATA = tomllib.loads((FIXTURES / "statements.toml").read_text())

_USER_RELATIONS = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
"""
_HELD = """
SELECT relation::oid, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


@pytest.fixture(scope="module")
def oracle() -> Iterator[psycopg.Connection[Any]]:
    with scratch_database("dbguard_locks") as url:
        with psycopg.connect(url, autocommit=True) as setup:
            setup.execute((FIXTURES / "setup.sql").read_text())
        with psycopg.connect(url) as conn:
            yield conn


def server_locks(conn: psycopg.Connection[Any], sql: str) -> tuple[dict[str, str], dict[str, str]]:
    """Run `sql` in a transaction and roll it back: (the strongest mode per relation that existed before, and
    that the statement names; the same for the relations it does not name), as lock mode labels."""
    try:
        before = dict(conn.execute(_USER_RELATIONS).fetchall())
        if sql.startswith("COPY"):
            with conn.cursor().copy(sql) as copy:
                for _ in copy if "TO STDOUT" in sql else ():
                    pass
        else:
            conn.execute(sql)
        held: dict[str, LockMode] = {}
        for oid, mode in conn.execute(_HELD).fetchall():
            if oid in before:
                name, lock = before[oid], LockMode[lock_label(mode).replace(" ", "_")]
                held[name] = max(lock, held.get(name, lock))
    finally:
        conn.rollback()
    named = {n: m.label for n, m in held.items() if re.search(rf"\b{re.escape(n)}\b", sql, re.IGNORECASE)}
    return named, {n: m.label for n, m in held.items() if n not in named}


def claimed(sql: str) -> dict[str, str]:
    """What `check` says: relation name (schema dropped: the fixture's names are unique) -> lock mode label."""
    (statement,) = [s for s in parse_script(sql, Dialect.POSTGRES).statements if s.parent is None]
    assert statement.facts.lock == max((m for _, m in statement.facts.locks), default=None)
    return {name.rsplit(".", 1)[-1]: mode.label for name, mode in statement.facts.locks}


def _params(key: str) -> list[Any]:
    return [pytest.param(case, id=case["sql"][:70]) for case in DATA[key]]


@pytest.mark.parametrize("case", _params("case"))
def test_check_claims_the_locks_the_server_takes(oracle: psycopg.Connection[Any], case: dict[str, Any]) -> None:
    sql = case["sql"]
    named, through_schema = server_locks(oracle, sql)
    existing = {name for (name,) in oracle.execute("SELECT relname FROM pg_class").fetchall()}
    oracle.rollback()
    skip = set(case.get("not_compared", {}))
    says = {n: m for n, m in claimed(sql).items() if n in existing and n not in skip}
    server = {n: m for n, m in named.items() if n not in skip}
    server |= {n: through_schema[n] for n in says if n in through_schema}
    assert says == server, f"{sql}\n  check says {says}\n  server holds {server} (through the schema: {through_schema})"


@pytest.mark.parametrize("case", _params("outside"))
def test_check_claims_the_documented_lock_outside_a_transaction(case: dict[str, Any]) -> None:
    assert claimed(case["sql"]) == case["locks"], case["source"]


def test_the_oracle_covers_every_kind_the_issue_names() -> None:
    """At least 80 statement kinds, and every form of "Explicit Locking" (13.3.1) in PostgreSQL 15."""
    cases = [c["sql"] for c in DATA["case"]] + [c["sql"] for c in DATA["outside"]]
    assert len(DATA["case"]) >= 80
    documented = [
        "SELECT * FROM", "FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE", "INSERT INTO",
        "UPDATE ", "DELETE FROM", "MERGE INTO", "VACUUM spare", "ANALYZE", "CREATE INDEX CONCURRENTLY",
        "CREATE STATISTICS", "COMMENT ON", "REINDEX TABLE CONCURRENTLY", "ALTER INDEX", "ALTER TABLE",
        "CREATE INDEX", "CREATE TRIGGER", "REFRESH MATERIALIZED VIEW CONCURRENTLY", "DROP TABLE", "TRUNCATE",
        "REINDEX TABLE", "CLUSTER", "VACUUM FULL", "REFRESH MATERIALIZED VIEW child_totals", "LOCK TABLE",
        "ATTACH PARTITION", "DETACH PARTITION", "PARTITION OF", "CREATE RULE", "DROP RULE", "DROP TRIGGER",
        "CREATE POLICY", "ALTER POLICY", "DROP POLICY", "ALTER DOMAIN", "ALTER SEQUENCE", "nextval", "setval",
        "COPY spare FROM", "REFERENCES", "CREATE OR REPLACE VIEW", "DROP VIEW", "DROP INDEX", "GRANT",
    ]  # fmt: skip
    missing = [form for form in documented if not any(form in sql for sql in cases)]
    assert not missing, missing
    for mode in LockMode:
        assert any(f"IN {mode.label} MODE" in sql for sql in cases) or mode is LockMode.ACCESS_EXCLUSIVE
