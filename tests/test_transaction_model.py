"""The one-transaction model the rules follow, shown on the real server (PostgreSQL 15): each claim a rule
makes about a recipe is run here, step by step, and `check` is asked about the same script.

- VALIDATE CONSTRAINT in the same transaction as its ADD ... NOT VALID runs under the ADD's ACCESS
  EXCLUSIVE lock (require-not-valid-check fires); in a later step, under SHARE UPDATE EXCLUSIVE alone.
- SET NOT NULL after a validated CHECK (col IS NOT NULL) does not scan the table (PostgreSQL 12+), so
  ban-set-not-null stays quiet, and dropping that CHECK afterwards is no ban-disabling-integrity.
- A partitioned table refuses CREATE INDEX CONCURRENTLY; the ON ONLY recipe check advises instead works.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from dbguard.catalog.read import read_catalog
from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import load_policy
from dbguard.registry import Severity
from dbguard.run.steps import split_steps
from dbguard.sql.parse import parse_script
from dbguard.targets.url import DatabaseUrl
from tests.conftest import findings_for, fired

ROWS = 20_000


def _table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE stock (id bigint PRIMARY KEY, sku text, qty integer)")
        conn.execute(f"INSERT INTO stock SELECT g, 'sku-' || g, g % 7 FROM generate_series(1, {ROWS}) g")


def _steps(sql: str) -> list[list[str]]:
    """The script's statements, step by step, as `run` cuts it."""
    script = parse_script(sql, Dialect.POSTGRES, "recipe.sql")
    return [[s.text for s in step.statements] for step in split_steps(script)]


def _seq_scans(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Sequential scans of stock, the ones this session has not reported yet included: a delta inside one
    transaction counts what the statements in between scanned."""
    row = conn.execute("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'stock'").fetchone()
    return int(str(row[0])) if row else 0


def _locks(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute("SELECT mode FROM pg_locks WHERE relation = 'stock'::regclass AND pid = pg_backend_pid()")
    return {str(mode) for (mode,) in rows.fetchall()}


ADD_THEN_VALIDATE = """SET lock_timeout = '2s';
ALTER TABLE stock ADD CONSTRAINT stock_qty_small CHECK (qty < 7) NOT VALID;
{cut}ALTER TABLE stock VALIDATE CONSTRAINT stock_qty_small;
"""


def test_validate_in_the_adds_transaction_holds_its_access_exclusive_lock(pg_url: str) -> None:
    _table(pg_url)
    same = ADD_THEN_VALIDATE.format(cut="")
    assert "require-not-valid-check" in fired(same)
    (only_step,) = _steps(same)
    with psycopg.connect(pg_url) as conn:  # one transaction, as run executes one step
        for statement in only_step:
            conn.execute(statement)
        assert "AccessExclusiveLock" in _locks(conn)  # held through the VALIDATE's scan, until COMMIT
        conn.rollback()

    later = ADD_THEN_VALIDATE.format(cut="-- dbguard: step\n")
    assert "require-not-valid-check" not in fired(later)
    first, second = _steps(later)
    with psycopg.connect(pg_url) as conn:
        for statement in first:
            conn.execute(statement)
        conn.commit()
        for statement in second:
            conn.execute(statement)
        assert _locks(conn) == {"ShareUpdateExclusiveLock"}
        conn.commit()


SET_NOT_NULL_RECIPE = """SET lock_timeout = '2s';
ALTER TABLE stock ADD CONSTRAINT stock_sku_not_null CHECK (sku IS NOT NULL) NOT VALID;
-- dbguard: step
ALTER TABLE stock VALIDATE CONSTRAINT stock_sku_not_null;
ALTER TABLE stock ALTER COLUMN sku SET NOT NULL;
ALTER TABLE stock DROP CONSTRAINT stock_sku_not_null;
"""


def test_set_not_null_after_a_validated_check_does_not_scan(pg_url: str) -> None:
    _table(pg_url)
    assert fired(SET_NOT_NULL_RECIPE) & {"ban-set-not-null", "ban-disabling-integrity"} == set()
    first, second = _steps(SET_NOT_NULL_RECIPE)
    notices: list[str] = []
    with psycopg.connect(pg_url) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append(str(diagnostic.message_primary)))
        for statement in first:
            conn.execute(statement)
        conn.commit()
        validate, set_not_null, drop_check = second
        conn.execute(validate)
        conn.execute("SET LOCAL client_min_messages = debug1")
        before = _seq_scans(conn)
        conn.execute(set_not_null)
        assert _seq_scans(conn) == before  # no scan: the validated CHECK proves it
        assert any(re.search(r"existing constraints on column .* are sufficient", n) for n in notices), notices
        conn.execute(drop_check)
        conn.commit()
        # the control: a column with no such CHECK is scanned
        before = _seq_scans(conn)
        conn.execute("ALTER TABLE stock ALTER COLUMN qty SET NOT NULL")
        assert _seq_scans(conn) == before + 1
        conn.rollback()
        assert conn.execute("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'stock'::regclass "
                            "AND attname = 'sku'").fetchone() == (True,)  # fmt: skip


PARTITIONED_INDEX_RECIPE = """SET lock_timeout = '2s';
CREATE INDEX orders_created_idx ON ONLY orders (created_at);
CREATE INDEX CONCURRENTLY orders_2024_created_idx ON orders_2024 (created_at);
ALTER INDEX orders_created_idx ATTACH PARTITION orders_2024_created_idx;
"""


def test_the_partitioned_index_recipe_passes_check_and_builds_a_valid_index(pg_url: str) -> None:
    """require-concurrent-index-creation's advice for a partitioned table: ON ONLY builds nothing (the
    partition has no index after it), CONCURRENTLY per partition, ATTACH makes the parent's index valid."""
    assert not [f for f in findings_for(PARTITIONED_INDEX_RECIPE) if f.severity.rank >= Severity.ERROR.rank]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint, created_at date) PARTITION BY RANGE (created_at)")
        conn.execute("CREATE TABLE orders_2024 PARTITION OF orders FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
        conn.execute("INSERT INTO orders SELECT g, date '2024-01-01' + g % 300 FROM generate_series(1, 1000) g")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="concurrently"):
            conn.execute("CREATE INDEX CONCURRENTLY orders_any_idx ON orders (created_at)")
        set_timeout, on_only, per_partition, attach = [s for step in _steps(PARTITIONED_INDEX_RECIPE) for s in step]
        for statement in (set_timeout, on_only):
            conn.execute(statement)
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_created_idx'::regclass"
        assert conn.execute(valid).fetchone() == (False,)
        assert conn.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'orders_2024'::regclass").fetchone() == (0,)
        conn.execute(per_partition)
        conn.execute(attach)
        assert conn.execute(valid).fetchone() == (True,)
    # With the database known (check --db), a partitioned table needs no ON ONLY to be recognised.
    catalog = read_catalog(DatabaseUrl.parse(pg_url))
    for sql, says in (("CREATE INDEX CONCURRENTLY orders_any_idx ON orders (created_at);", "refuses"),
                      ("CREATE INDEX orders_any_idx ON orders (created_at);", "every partition")):  # fmt: skip
        (finding,) = [f for f in check_text(sql, Dialect.POSTGRES, load_policy(None), catalog=catalog).findings
                      if f.rule_id == "require-concurrent-index-creation"]  # fmt: skip
        assert says in finding.message and "ON ONLY orders" in finding.help, finding
        assert "Use CREATE INDEX CONCURRENTLY" not in finding.help


def test_add_column_references_checks_the_rows_only_with_a_default(pg_url: str) -> None:
    """require-not-valid-foreign-key's claim for ADD COLUMN ... REFERENCES: the referenced table is locked
    SHARE ROW EXCLUSIVE as by ADD FOREIGN KEY; the rows are scanned only when the new column has a DEFAULT."""
    _table(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE warehouses (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO warehouses VALUES (1)")
        conn.commit()
        for default, scans in (("", 0), (" DEFAULT 1", 1)):
            sql = f"ALTER TABLE stock ADD COLUMN warehouse_id bigint{default} REFERENCES warehouses (id)"
            assert ("require-not-valid-foreign-key" in fired(f"SET lock_timeout = '2s'; {sql};")) is bool(scans)
            before = _seq_scans(conn)
            conn.execute(sql)
            assert _seq_scans(conn) - before == scans, sql
            locks = conn.execute("SELECT mode FROM pg_locks WHERE relation = 'warehouses'::regclass "
                                 "AND pid = pg_backend_pid()").fetchall()  # fmt: skip
            assert ("ShareRowExclusiveLock",) in locks
            conn.rollback()


def test_a_check_already_on_the_table_is_seen_with_the_database(pg_url: str) -> None:
    """Offline, a validated CHECK (sku IS NOT NULL) already on the table cannot be known: ban-set-not-null
    fires and says so. With `check --db` (the catalog read from the server) it is seen, SET NOT NULL is no
    finding, nor is dropping that CHECK after it; a NOT VALID one counts once the script validates it."""
    _table(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE stock ADD CONSTRAINT stock_sku_not_null CHECK (sku IS NOT NULL)")
        conn.execute("ALTER TABLE stock ADD CONSTRAINT stock_qty_not_null CHECK (qty IS NOT NULL) NOT VALID")
    catalog = read_catalog(DatabaseUrl.parse(pg_url))
    sku = ("SET lock_timeout = '2s';\nALTER TABLE stock ALTER COLUMN sku SET NOT NULL;\n"
           "ALTER TABLE stock DROP CONSTRAINT stock_sku_not_null;\n")  # fmt: skip
    offline = {f.rule_id: f.message for f in findings_for(sku)}
    assert "cannot see offline" in offline["ban-set-not-null"] and "ban-disabling-integrity" in offline
    with_db = {f.rule_id for f in check_text(sku, Dialect.POSTGRES, load_policy(None), catalog=catalog).findings}
    assert not with_db & {"ban-set-not-null", "ban-disabling-integrity"}, with_db

    qty = "SET lock_timeout = '2s';\nALTER TABLE stock ALTER COLUMN qty SET NOT NULL;\n"
    not_yet = {f.rule_id: f.message for f in check_text(qty, Dialect.POSTGRES, load_policy(None),
                                                         catalog=catalog).findings}  # fmt: skip
    assert "ban-set-not-null" in not_yet and "offline" not in not_yet["ban-set-not-null"]
    validated = qty.replace("ALTER TABLE stock ALTER", "ALTER TABLE stock VALIDATE CONSTRAINT stock_qty_not_null;\n"
                            "-- dbguard: step\nALTER TABLE stock ALTER")  # fmt: skip
    assert "ban-set-not-null" not in {f.rule_id for f in check_text(validated, Dialect.POSTGRES, load_policy(None),
                                                                    catalog=catalog).findings}  # fmt: skip
