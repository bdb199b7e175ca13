"""Dry-run beyond tables, on the database shaped like real ones (tests/realschema.py) and on real SQLite files:
ALTER DOMAIN and ALTER TYPE bring every table of the type into the copy; the schema changes show functions,
triggers, rules, views, domains, enum values, sequences and policies; every sequence the script moves is
reported from where it really stood, and one left below the keys it feeds is a finding."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from dbguard.inputs import Source
from dbguard.pipeline.dryrun import DryRunOptions, dry_run
from dbguard.policy.policy import load_policy
from dbguard.report.dryrun import html as dryrun_html
from dbguard.report.dryrun import json as dryrun_json
from dbguard.report.dryrun import markdown as dryrun_markdown
from dbguard.report.dryrun import text as dryrun_text
from dbguard.report.dryrun.model import DryRunReport
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl
from tests.realschema import PARTITIONS, load_real_schema

LOCK = "SET lock_timeout = '2s';\n"
WAIVE = '-- dbguard: allow {rules} reason="test of the dry-run"\n'
FALL_NR = '"Kundendienst"."Fall_Nr"'  # feeds "Kundendienst"."Fälle"."Nr", 1..30: the sequence stands at 30


@pytest.fixture
def shop(pg_url: str) -> str:
    load_real_schema(pg_url)
    return pg_url


def run(sql: str, url: str, said: list[str] | None = None) -> DryRunReport:
    """The dry-run's report; its progress messages go to `said`."""
    progress = said.append if said is not None else None
    return dry_run(Source("fix.sql", sql), DatabaseUrl.parse(url), load_policy(None), DryRunOptions(), progress)


def widened(said: list[str]) -> bool:
    """The first copy missed a table the script reached, and the script was rehearsed again."""
    return any("beyond the copy" in message for message in said)


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def changes(report: DryRunReport) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    return {(c.change, c.name): (c.before, c.after) for c in report.schema_changes}


def findings(report: DryRunReport, rule_id: str = "limit-sequence-below-max") -> list[str]:
    return [f.message for f in report.findings if f.rule_id == rule_id]


# -- ALTER DOMAIN / ALTER TYPE: the tables of the type are in the copy --


def test_validating_a_domain_constraint_fails_on_the_copied_rows(shop: str) -> None:
    """The issue's repro: customer.since holds 2000..2019, so VALIDATE fails, in the sandbox as in psql."""
    said: list[str] = []
    report = run(LOCK + "ALTER DOMAIN sales.year ADD CONSTRAINT c CHECK (VALUE >= 2010) NOT VALID;\n"
                 "ALTER DOMAIN sales.year VALIDATE CONSTRAINT c;\n", shop, said)  # fmt: skip
    assert report.scoped and "sales.customer" in report.tables_copied
    assert not widened(said)  # the first copy held the rows: the plan found them from the domain
    assert "audit.log" not in report.tables_copied  # still scoped
    failed = report.execution.failed
    assert failed is not None and failed.line == 3 and "violate" in str(failed.error), failed
    assert report.verdict == "BLOCKED"


def test_a_domain_over_the_domain_in_a_partitioned_table_is_copied(shop: str) -> None:
    """A column of a domain over the altered domain, in a partition of a table the script never names."""
    execute(shop, "CREATE DOMAIN audit.recent_year AS sales.year;"
                  "CREATE TABLE audit.visit (y audit.recent_year NOT NULL) PARTITION BY RANGE (y);"
                  "CREATE TABLE audit.visit_old PARTITION OF audit.visit FOR VALUES FROM (1901) TO (2000);"
                  "CREATE TABLE audit.visit_new PARTITION OF audit.visit FOR VALUES FROM (2000) TO (2100);"
                  "INSERT INTO audit.visit VALUES (1960), (2020);")  # fmt: skip
    said: list[str] = []
    report = run(LOCK + "ALTER DOMAIN sales.year ADD CONSTRAINT since_1990 CHECK (VALUE >= 1990);\n", shop, said)
    assert {"audit.visit", "audit.visit_old", "audit.visit_new", "sales.customer"} <= set(report.tables_copied)
    assert not widened(said)
    failed = report.execution.failed
    assert failed is not None and 'table "visit_old"' in str(failed.error), failed
    assert report.verdict == "BLOCKED"


def test_tables_using_a_type_follow_domains_arrays_composites_and_partitions(shop: str) -> None:
    execute(shop, "CREATE DOMAIN audit.recent_year AS sales.year;"
                  "CREATE TYPE audit.span AS (first audit.recent_year, last int);"
                  "CREATE TABLE audit.spans (s audit.span);"
                  "CREATE TABLE audit.years (ys sales.year[]);"
                  "CREATE TABLE audit.states (s sales.status[]);"
                  "CREATE TABLE audit.other (y int);")  # fmt: skip
    with open_target(DatabaseUrl.parse(shop)) as target:  # type: ignore[attr-defined]
        assert target.tables_using_types(["sales.year"]) == {"sales.customer", "audit.spans", "audit.years"}
        assert target.tables_using_types(["sales.status"]) == {"sales.pay", "sales.pay_2024", *PARTITIONS,
                                                               "audit.states"}  # fmt: skip
        assert target.tables_using_types(["year", "no_such.type"]) == set()  # `year` is not on the search_path


def test_adding_an_enum_value_copies_the_partition_tree_and_shows_the_values(shop: str) -> None:
    report = run(LOCK + "ALTER TYPE sales.status ADD VALUE 'refunded' AFTER 'paid';\n", shop)
    assert report.execution.failed is None, report.execution.failed
    assert {"sales.pay", *PARTITIONS} <= set(report.tables_copied)
    assert changes(report)[("enum changed", "sales.status")] == (
        "ENUM ('open', 'paid', 'void')",
        "ENUM ('open', 'paid', 'refunded', 'void')",
    )


# -- schema changes beyond tables --

SCHEMA_SCRIPT = (
    WAIVE.format(rules="ban-drop-table")
    + LOCK
    + """CREATE OR REPLACE FUNCTION audit.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit.log (tbl, op) VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP);
  RETURN NULL;
END $$;
CREATE FUNCTION sales.fiscal_year(d date) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT extract(year FROM d)::int $$;
DROP TRIGGER customer_audit ON sales.customer;
CREATE TRIGGER customer_audit AFTER UPDATE ON sales.customer FOR EACH ROW EXECUTE FUNCTION audit.note();
ALTER TABLE sales.store DISABLE RULE store_closed;
DROP RULE open_pay_void ON sales.open_pay;
CREATE OR REPLACE VIEW sales.open_pay AS SELECT id, cust_id, amt, d, store_id FROM sales.pay WHERE status = 'open';
CREATE MATERIALIZED VIEW sales.daily AS SELECT d, sum(amt) AS amt FROM sales.pay GROUP BY d;
ALTER DOMAIN sales.year SET DEFAULT 2024;
ALTER TYPE sales.status ADD VALUE 'refunded';
ALTER SEQUENCE "Kundendienst"."Fall_Nr" INCREMENT BY 10;
ALTER TABLE sales.customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY recent ON sales.customer FOR SELECT TO PUBLIC USING (since >= 2010);
"""
)


def test_schema_changes_show_every_kind_of_object(shop: str) -> None:
    report = run(SCHEMA_SCRIPT, shop)
    assert report.execution.failed is None, report.execution.failed
    found = changes(report)
    before, after = found[("function changed", "audit.note()")]
    assert "TG_TABLE_NAME, TG_OP" in str(before) and "TG_TABLE_SCHEMA" in str(after)
    assert "RETURNS integer" in str(found[("function added", "sales.fiscal_year(d date)")][1])
    before, after = found[("trigger changed", "sales.customer.customer_audit")]
    assert "INSERT OR DELETE OR UPDATE" in str(before) and "AFTER UPDATE ON" in str(after)
    before, after = found[("rule changed", "sales.store.store_closed")]
    assert str(after) == f"{before} (disabled)"
    assert "DO INSTEAD" in str(found[("rule dropped", "sales.open_pay.open_pay_void")][0])
    before, after = found[("view changed", "sales.open_pay")]
    assert "store_id" not in str(before) and "store_id" in str(after)
    assert "sum(pay.amt) AS amt" in str(found[("materialized view added", "sales.daily")][1])
    assert found[("domain changed", "sales.year")] == (
        "integer CONSTRAINT year_check CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))",
        "integer DEFAULT 2024 CONSTRAINT year_check CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))",
    )
    assert found[("enum changed", "sales.status")][1] == "ENUM ('open', 'paid', 'void', 'refunded')"
    before, after = found[("sequence changed", "Kundendienst.Fall_Nr")]
    assert "INCREMENT 1 " in str(before) and "INCREMENT 10 " in str(after)
    assert "OWNED BY Kundendienst.Fälle.Nr" in str(after)
    assert found[("policy added", "sales.customer.recent")] == (
        None,
        "AS PERMISSIVE FOR SELECT TO public USING (((since)::integer >= 2010))",
    )
    assert found[("row security added", "sales.customer")] == (None, "enabled")
    # amcheck, installed in the sandbox by the gate, is an extension: none of its functions is listed
    assert not [name for change, name in found if change == "function added" and "bt_index" in name]
    assert len(found) == 12, sorted(found)  # nothing else: no internal trigger, no view's _RETURN rule


def test_every_renderer_shows_the_new_kinds(shop: str) -> None:
    report = run(LOCK + "ALTER TYPE sales.status ADD VALUE 'refunded';\n"
                 "CREATE POLICY recent ON sales.customer FOR SELECT USING (since >= 2010);\n", shop)  # fmt: skip
    for text in (dryrun_text.render(report, width=200), dryrun_markdown.render(report), dryrun_html.render(report)):
        for shown in ("enum changed", "sales.status", "'refunded'", "policy added", "sales.customer.recent"):
            assert shown in text.replace("&#x27;", "'").replace("&#39;", "'"), shown
    shown = json.loads(dryrun_json.render(report))["schema_changes"]
    assert {"change": "policy added", "name": "sales.customer.recent", "before": None,
            "after": "AS PERMISSIVE FOR SELECT TO public USING (((since)::integer >= 2010))"} in shown  # fmt: skip


# -- sequences: real values, and a finding when the next inserts collide --


def test_setval_below_the_largest_key_is_a_finding_with_the_real_values(shop: str) -> None:
    said: list[str] = []
    report = run(WAIVE.format(rules="ban-sequence-reset") + LOCK + f"SELECT setval('{FALL_NR}', 10);\n", shop, said)
    (move,) = report.execution.sequences_moved
    assert (move.sequence, str(move.before), str(move.after)) == ("Kundendienst.Fall_Nr", "30", "10")
    assert "sequence Kundendienst.Fall_Nr moved back from 30 to 10: a rollback does not undo it" in report.notes
    # the script names no table: the one the sequence feeds was copied once the rehearsal showed the move
    assert "Kundendienst.Fälle" in report.tables_copied and widened(said)
    assert findings(report) == ["sequence Kundendienst.Fall_Nr hands out 11 next, but max(Kundendienst.Fälle.Nr) is "
                                "30: the next inserts collide with existing keys"]  # fmt: skip
    (finding,) = [f for f in report.findings if f.rule_id == "limit-sequence-below-max"]
    assert finding.statement_index == 2 and finding.line == 3
    assert report.verdict == "BLOCKED"
    (shown,) = json.loads(dryrun_json.render(report))["execution"]["sequences_advanced"]
    assert shown == {"sequence": "Kundendienst.Fall_Nr", "before": 30, "after": 10, "next_before": 31,
                     "next_after": 11}  # fmt: skip


def test_a_never_used_sequence_is_reported_as_such_and_forward_moves_are_safe(shop: str) -> None:
    execute(shop, "CREATE SEQUENCE sales.ticket_seq")
    waive = WAIVE.format(rules="ban-sequence-reset")
    sql = LOCK + waive + "SELECT setval('sales.ticket_seq', 10);\n" + waive + f"SELECT setval('{FALL_NR}', 100);\n"
    report = run(sql, shop)
    assert set(report.notes) >= {
        "sequence sales.ticket_seq moved from not yet used (next value 1) to 10: a rollback does not undo it",
        "sequence Kundendienst.Fall_Nr moved from 30 to 100: a rollback does not undo it",
    }
    assert not findings(report)
    assert report.verdict == "SAFE", report.blocking_reasons
    shown = json.loads(dryrun_json.render(report))["execution"]["sequences_advanced"]
    assert {"sequence": "sales.ticket_seq", "before": None, "after": 10, "next_before": 1, "next_after": 11} in shown


def test_a_sequence_moved_back_above_the_largest_key_is_still_a_finding(shop: str) -> None:
    sql = (WAIVE.format(rules="ban-sequence-reset") + LOCK + 'DELETE FROM "Kundendienst"."Fälle" WHERE "Nr" > 27;\n'
           + f"SELECT setval('{FALL_NR}', 28);\n")  # fmt: skip
    report = run(sql, shop)
    assert findings(report) == ["sequence Kundendienst.Fall_Nr moved back from 30 to 28: it hands out again values "
                                "it already handed out"]  # fmt: skip


def test_a_new_identity_below_the_existing_keys_is_a_finding(shop: str) -> None:
    report = run(LOCK + "ALTER TABLE sales.store ALTER id ADD GENERATED BY DEFAULT AS IDENTITY;\n", shop)
    assert report.execution.failed is None, report.execution.failed
    (move,) = report.execution.sequences_moved
    assert move.before is None and str(move.after) == "not yet used (next value 1)"
    assert findings(report) == [f"sequence {move.sequence} hands out 1 next, but max(sales.store.id) is 3: the next "
                                "inserts collide with existing keys"]  # fmt: skip
    (finding,) = [f for f in report.findings if f.rule_id == "limit-sequence-below-max"]
    assert finding.line == 2  # the ALTER TABLE, not the SET before it


def test_inserts_advance_sequences_without_a_finding(shop: str) -> None:
    report = run(LOCK + 'INSERT INTO "Kundendienst"."Fälle" ("Kunde", "Größe") VALUES (1, \'neu\'), (2, \'neu\');\n',
                 shop)  # fmt: skip
    assert [str(m) for m in report.execution.sequences_moved] == ["sequence Kundendienst.Fall_Nr moved from 30 to 32"]
    assert not findings(report)
    assert report.verdict == "SAFE", report.blocking_reasons


# -- SQLite: views, triggers, AUTOINCREMENT counters --


@pytest.fixture
def notes_db(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE note (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
            CREATE TABLE note_log (note_id INTEGER, at TEXT);
            CREATE VIEW short_note AS SELECT id, body FROM note WHERE length(body) < 10;
            CREATE TRIGGER note_logged AFTER INSERT ON note BEGIN INSERT INTO note_log VALUES (new.id, 'now'); END;
            INSERT INTO note (body) VALUES ('a'), ('b'), ('c');
        """)
    conn.close()
    return path


def test_sqlite_views_and_triggers_are_schema_changes(notes_db: Path) -> None:
    sql = ("DROP VIEW short_note;\nCREATE VIEW short_note AS SELECT id, body FROM note WHERE length(body) < 20;\n"
           "DROP TRIGGER note_logged;\n"
           "CREATE TRIGGER note_deleted AFTER DELETE ON note\n"
           "  BEGIN DELETE FROM note_log WHERE note_id = old.id; END;\n")  # fmt: skip
    report = run(sql, f"sqlite:///{notes_db}")
    assert report.execution.failed is None, report.execution.failed
    found = changes(report)
    before, after = found[("view changed", "short_note")]
    assert "< 10" in str(before) and "< 20" in str(after)
    assert "AFTER INSERT ON note" in str(found[("trigger dropped", "note_logged")][0])
    assert "AFTER DELETE ON note" in str(found[("trigger added", "note_deleted")][1])


def test_sqlite_autoincrement_counters_are_reported_and_moving_one_back_is_a_finding(notes_db: Path) -> None:
    url = f"sqlite:///{notes_db}"
    report = run("INSERT INTO note (body) VALUES ('d');\n", url)
    assert report.notes == ("sequence note moved from 3 to 4: a rollback does not undo it",)
    assert not findings(report)
    report = run("UPDATE sqlite_sequence SET seq = 1 WHERE name = 'note';\n", url)
    assert findings(report) == ["sequence note moved back from 3 to 1: it hands out again values it already handed "
                                "out"]  # fmt: skip
