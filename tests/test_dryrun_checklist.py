"""The dry-run Markdown's reviewer's checklist, from a real dry-run on the realistic PostgreSQL schema and on
SQLite: every item is drawn from what the sandbox saw (rows, locks, sequences, the invariants' results)."""

from __future__ import annotations

import re
from pathlib import Path

from dbguard.inputs import Source
from dbguard.pipeline.dryrun import dry_run
from dbguard.policy.policy import parse_policy
from dbguard.report.dryrun import markdown
from dbguard.targets.url import DatabaseUrl
from tests.realschema import load_real_schema
from tests.warehouse import scratch_database

POLICY = """
name = "review"
[thresholds]
max_rows_affected = 20
max_delete_percent = 5.0
[[invariants]]
name = "customers keep a name"
kind = "not_null"
table = "sales.customer"
column = "name"
[[invariants]]
name = "no payment is negative"
kind = "sql"
sql = "SELECT id FROM sales.pay WHERE amt < 0"
"""
SQL = """\
SET lock_timeout = '2s';
UPDATE sales.customer SET name = name || ' (checked)' WHERE id <= 3;
UPDATE sales.pay SET amt = amt + 1 WHERE cust_id = 7;
INSERT INTO "Kundendienst"."Fälle" ("Kunde", "Größe") VALUES (1, 'Nachtrag');
"""


def checklist(rendered: str) -> list[str]:
    section = rendered.split("\n## Reviewer's checklist\n", 1)[1]
    return [line for line in section.splitlines() if line.startswith("- [ ] ")]


def test_the_checklist_of_a_real_postgres_dry_run() -> None:
    with scratch_database() as url:
        load_real_schema(url)
        policy = parse_policy(POLICY, "review.toml")
        report = dry_run(Source("scripts/fix customers.sql", SQL), DatabaseUrl.parse(url), policy)
        rendered = markdown.render(report)
    assert rendered.rstrip().endswith("dbguard approve 'scripts/fix customers.sql' --reviewer \"<your name>\"\n```")
    items = checklist(rendered)
    pay_rows = next(run.rows for run in report.execution.runs if run.index == 3)
    assert pay_rows and pay_rows > 20, pay_rows  # more than the policy's threshold: the checklist must say so
    # rows: each statement against the policy's threshold; the trigger's writes counted with the statement's
    assert ("- [ ] `#2` UPDATE, line 2: 3 rows (6 written in every table, triggers, rules and cascades included), "
            "within the 20 allowed: is that what you expect?") in items  # fmt: skip
    assert (f"- [ ] `#3` UPDATE, line 3: {pay_rows} rows, **more than the 20 allowed**: is that what you "
            "expect?") in items  # fmt: skip
    assert "- [ ] `audit.log`: 0 → 3 rows (+3)" in items
    assert "- [ ] `sales.customer`: 50 → 50 rows (same row count, other content)" in items
    # locks: each one, what it blocks, and the longest hold
    locks = [item for item in items if "` on `" in item and "held" in item]
    assert any(item.startswith("- [ ] `ROW EXCLUSIVE` on `sales.customer` from `#2`, held ") for item in locks), locks
    longest = next(item for item in items if item.startswith("- [ ] The longest hold: "))
    # the locks #2 takes (the table and the audit trigger's) are held longest: to the end of the script
    assert re.match(r"- \[ \] The longest hold: `ROW EXCLUSIVE` on `(sales\.customer|audit\.log)`, [\d.]+ m?s in the "
                    r"sandbox, from `#2`", longest), longest  # fmt: skip
    # what a rollback cannot undo: the sequence the INSERT advanced
    assert "- [ ] sequence Kundendienst.Fall_Nr moved from 30 to 31: a rollback does not undo it" in items
    # invariants and their results, told apart from the integrity checks
    assert "- [ ] PASS invariant `customers keep a name`: no row(s) of sales.customer with NULL in name" in items
    assert "- [ ] PASS invariant `no payment is negative`: no row(s) returned by the invariant's query" in items
    assert any(item.startswith("- [ ] PASS integrity check `foreign keys hold`") for item in items), items
    assert not any("declares no invariant" in item for item in items)
    assert "- [ ] The dry-run is **BLOCKED**: every reason at the top is resolved first." in items  # the 20-row limit


def test_the_checklist_of_a_sqlite_dry_run_names_the_database_lock_and_missing_invariants(
    warehouse_sqlite: Path,
) -> None:
    sql = "-- dbguard: dialect=sqlite\nUPDATE stock SET qty = qty + 1 WHERE product_id = 1;\n"
    report = dry_run(Source("fix.sql", sql), DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}"),
                     parse_policy("", "empty.toml"))  # fmt: skip
    items = checklist(markdown.render(report))
    assert report.verdict == "SAFE" and "- [ ] The dry-run is **BLOCKED**" not in "\n".join(items)
    assert any(item.startswith("- [ ] `#1` UPDATE, line 2: ") and "within the 10,000 allowed" in item
               for item in items), items  # fmt: skip
    assert any(item.startswith("- [ ] SQLite: the run holds the write lock on the whole database file")
               for item in items), items  # fmt: skip
    assert any("declares no invariant" in item for item in items)
    assert any(item.startswith("- [ ] Nothing found: no statement runs outside the transaction") for item in items)
