"""Dry-run renderers: snapshots of each format over hand-built reports, and checks of structure that can fail.

The reports are built from the dataclasses, not by a real dry-run: this tests what the renderers make of a
report, so it needs no database. `DBGUARD_UPDATE_SNAPSHOTS=1` rewrites the snapshots instead of comparing.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from dbguard.dialects import Dialect
from dbguard.guard.execute import ExecutionResult, LockHeld, SequenceMove, SequenceState, StatementRun, TableActivity
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Invariant, load_policy
from dbguard.registry import Severity
from dbguard.report.check import json as render_json
from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.dryrun import html as dryrun_html
from dbguard.report.dryrun import json as dryrun_json
from dbguard.report.dryrun import markdown as dryrun_markdown
from dbguard.report.dryrun import text as dryrun_text
from dbguard.report.dryrun.model import DryRunReport, Estimate, GateResult, TableDelta
from dbguard.targets.model import CheckResult, SchemaChange
from tests.test_renderers import TOOL_VERSION, assert_snapshot

PATH = "scripts/fix_stock.sql"
BLOCKED_SQL = """\
-- Repair stock after the failed supplier import.
SET lock_timeout = '2s';
DELETE FROM reservations WHERE expires_at < now() + interval '10 years';
ALTER TABLE stock ADD COLUMN reserved_qty integer NOT NULL DEFAULT 0;
UPDATE stock SET qty = qty - 1
WHERE sku IN (SELECT sku FROM import_errors);
VACUUM ANALYZE stock;
INSERT INTO stock_audit (sku, note)
SELECT sku, 'recount' FROM stock WHERE qty < 0
  AND sku NOT IN (SELECT sku FROM stock_audit)
  AND sku NOT IN (SELECT sku FROM import_errors)
ORDER BY sku;
UPDATE stock SET qty = 0 WHERE 1=1;
"""
SAFE_SQL = """\
SET lock_timeout = '2s';
UPDATE stock SET qty = 0 WHERE sku = 'A-100' AND qty < 0;
DELETE FROM reservations WHERE expires_at < now() - interval '30 days';
"""
MARKUP = "<b>x</b>"  # a value that must come out as text in every format, never as markup
TARGET = "postgresql://app:***@db.internal:5432/warehouse"
INDEX = "public.stock_sku_idx"
LONG_CONDITION = "WHERE (discontinued_at IS NULL AND warehouse_id IS NOT NULL)"  # makes a sample line too long
SANDBOX = "scratch database dbguard_sandbox_1a2b on 127.0.0.1:5432"


def check_report(sql: str) -> CheckReport:
    # the invariants whose results the reports below hold, declared as a real dry-run's policy would have them
    policy = replace(load_policy(None), invariants=(
        Invariant("stock is never negative", "sql", sql="SELECT * FROM stock WHERE qty < 0"),
        Invariant("reservations shrink by at most 10%", "row_count", table="reservations", max_delete_percent=10.0),
    ))  # fmt: skip
    file_report = check_text(sql, Dialect.POSTGRES, policy, PATH)
    return CheckReport(policy=policy, files=(file_report,), tool_version=TOOL_VERSION)


def blocked_report() -> DryRunReport:
    check = check_report(BLOCKED_SQL)
    delete = next(s for s in check.files[0].script.statements if s.kind == "DELETE")
    runs = [
        StatementRun(1, 2, "SET", "SET lock_timeout = '2s';", (), executed=True, started=0.0, seconds=0.0004),
        StatementRun(
            2,
            3,
            "DELETE",
            "DELETE FROM reservations WHERE expires_at < now() + interval '10 years';",
            ("reservations",),
            executed=True,
            rows=1840,
            started=0.0011,
            seconds=0.0423,
            locks=(LockHeld("public.reservations", "ROW EXCLUSIVE"),),
            activity=(TableActivity("public.reservations", 1, 0, 0, 1840),),
        ),
        StatementRun(
            3,
            4,
            "ALTER TABLE",
            "ALTER TABLE stock ADD COLUMN reserved_qty integer NOT NULL DEFAULT 0;",
            ("stock",),
            executed=True,
            started=0.0441,
            seconds=0.0087,
            locks=(LockHeld("public.stock", "ACCESS EXCLUSIVE"),),
        ),
        StatementRun(
            4,
            5,
            "UPDATE",
            "UPDATE stock SET qty = qty - 1",
            ("stock",),
            executed=True,
            rows=312,
            started=0.0535,
            seconds=0.0311,
            locks=(LockHeld("public.import_errors", "ACCESS SHARE"),),
            notices=["NOTICE: trigger stock_sync queued 312 rows for the shop"],
            activity=(
                TableActivity("public.import_errors", 1, 0, 0, 0),
                TableActivity("public.stock", 1, 0, 312, 0),
                TableActivity("shop.sync_queue", 0, 312, 0, 0),
            ),
            sql="UPDATE stock SET qty = qty - 1\nWHERE sku IN (SELECT sku FROM import_errors);",
        ),
        StatementRun(
            5,
            7,
            "VACUUM",
            "VACUUM ANALYZE stock;",
            ("stock",),
            separate_step=True,
            executed=True,
            started=0.0912,
            seconds=0.1534,
        ),
        StatementRun(
            6,
            8,
            "INSERT",
            "INSERT INTO stock_audit (sku, note)",
            ("stock_audit",),
            started=0.2461,
            seconds=0.0032,
            error='insert or update on table "stock_audit" violates foreign key constraint "stock_audit_sku_fkey"',
            error_line=9,
            error_detail=f'Key (sku)=({MARKUP}) is not present in table "stock".',
            sql=BLOCKED_SQL.split("\n", 7)[7].split(";")[0] + ";",
        ),
        StatementRun(7, 13, "UPDATE", "UPDATE stock SET qty = 0 WHERE 1=1;", ("stock",)),
    ]
    audit_ids = SequenceMove("public.stock_audit_id_seq", SequenceState(1041, True), SequenceState(1353, True))
    execution = ExecutionResult(runs, 0.2497, [audit_ids], committed_steps=1)
    never_negative = tuple((f"B-{n:03d}", Decimal(-n) / 2, datetime(2024, 5, 1, 12, n)) for n in range(1, 11))
    checks = (
        GateResult(CheckResult("constraints valid", True, "every constraint of 4 table(s) is validated")),
        GateResult(
            CheckResult(
                "foreign keys hold",
                False,
                "reservations_sku_fkey: 2 row(s) of public.reservations "
                f"reference a missing public.stock row, e.g. sku = '{MARKUP}'",
                ((41, MARKUP, None), (57, "A-7", None)),
                columns=("id", "sku", "note"),
            )
        ),
        GateResult(
            CheckResult(
                "indexes valid",
                False,
                f"1 index(es) INVALID: {INDEX}",
                ((INDEX, f"CREATE UNIQUE INDEX stock_sku_idx ON public.stock USING btree (sku) {LONG_CONDITION}"),),
                columns=("index", "definition"),
            ),
            pre_existing=True,
        ),
        GateResult(
            CheckResult(
                "amcheck",
                False,
                'amcheck could not be installed: permission denied to create extension "amcheck"',
                skipped=True,
            )
        ),
        GateResult(
            CheckResult(
                "stock is never negative",
                False,
                "10 row(s) returned by the invariant's query",
                never_negative,
                columns=("sku", "qty", "counted_at"),
            )
        ),
        GateResult(
            CheckResult(
                "reservations shrink by at most 10%",
                False,
                "public.reservations: 2000 -> 160 row(s), net change -1840; 92.0% removed, more than 10%",
            )
        ),
    )
    finding = Finding(
        "limit-delete-percent",
        Severity.ERROR,
        "DELETE removed 1840 of 2000 rows of public.reservations (92.0%); the policy allows 10%",
        "Check the WHERE clause against the data; if this share must go, raise "
        "thresholds.max_delete_percent in the policy.",
        PATH,
        delete.span,
        delete.index,
        None,
    )
    return DryRunReport(
        check=check,
        target=TARGET,
        target_read_only=True,
        server_version="15.19",
        sandbox=SANDBOX,
        provider="server",
        scoped=True,
        tables_copied=("public.import_errors", "public.reservations", "public.stock", "public.stock_audit"),
        copy_seconds=0.4172,
        execution=execution,
        tables=(
            TableDelta("public.import_errors", 312, 312, "a1:b1", "a1:b1"),
            TableDelta("public.reservations", 2000, 160, "c2:d2", "c3:d3"),
            TableDelta("public.stock", 5000, 5000, "e4:f4", "e5:f5"),
            TableDelta("public.stock_recount", None, 0, None, "0:0"),
        ),
        schema_changes=(
            SchemaChange("column added", "public.stock.reserved_qty", after="integer NOT NULL DEFAULT 0"),
            SchemaChange("constraint added", "public.stock.stock_note_check", after=f"CHECK (note <> '{MARKUP}')"),
            SchemaChange("index validity changed", "public.stock_sku_idx", "valid", "not valid"),
        ),
        checks=checks,
        findings=(finding,),
        estimates=(
            Estimate(1, 0.0004, 1.0, 0.0004),
            Estimate(2, 0.0423, 1.0, 0.0423),
            Estimate(3, 0.0087, 1.0, 0.0087),
            Estimate(4, 0.0311, 240.0, 7.464),
            Estimate(5, 0.1534, 240.0, 36.816),
        ),
        notes=(
            "sequence public.stock_audit_id_seq advanced from 1041 to 1353: a rollback does not undo sequence advances",
            "1 transaction(s) committed before a statement that must run on its own: work before "
            "it cannot be rolled back with the rest",
        ),
    )


def safe_report() -> DryRunReport:
    runs = [
        StatementRun(1, 1, "SET", "SET lock_timeout = '2s';", (), executed=True, started=0.0, seconds=0.0003),
        StatementRun(
            2,
            2,
            "UPDATE",
            "UPDATE stock SET qty = 0 WHERE sku = 'A-100' AND qty < 0;",
            ("stock",),
            executed=True,
            rows=1,
            started=0.0008,
            seconds=0.0021,
            locks=(LockHeld("public.stock", "ROW EXCLUSIVE"),),
        ),
        StatementRun(
            3,
            3,
            "DELETE",
            "DELETE FROM reservations WHERE expires_at < now() - interval '30 days';",
            ("reservations",),
            executed=True,
            rows=37,
            started=0.0031,
            seconds=0.0065,
            locks=(LockHeld("public.reservations", "ROW EXCLUSIVE"),),
        ),
    ]
    checks = tuple(
        GateResult(CheckResult(name, True, detail))
        for name, detail in (
            ("constraints valid", "every constraint of 3 table(s) is validated"),
            ("foreign keys hold", "4 foreign key(s) checked"),
            ("indexes valid", "every index of 3 table(s) is valid"),
            ("amcheck", "bt_index_check passed on 5 btree index(es)"),
            ("stock is never negative", "no row(s) returned by the invariant's query"),
        )
    )
    return DryRunReport(
        check=check_report(SAFE_SQL),
        target=TARGET,
        target_read_only=True,
        server_version="15.19",
        sandbox=SANDBOX,
        provider="server",
        scoped=True,
        tables_copied=("public.products", "public.reservations", "public.stock"),
        copy_seconds=0.2881,
        execution=ExecutionResult(runs, 0.0097),
        tables=(
            TableDelta("public.reservations", 2000, 1963, "c2:d2", "c3:d3"),
            TableDelta("public.stock", 5000, 5000, "e4:f4", "e5:f5"),
        ),
        schema_changes=(),
        checks=checks,
        findings=(),
        estimates=(
            Estimate(1, 0.0003, 1.0, 0.0003),
            Estimate(2, 0.0021, 1.0, 0.0021),
            Estimate(3, 0.0065, 1.0, 0.0065),
        ),
        notes=(),
    )


REPORTS = {"safe": safe_report, "blocked": blocked_report}
FORMATS = {
    "txt": dryrun_text.render,
    "md": dryrun_markdown.render,
    "json": dryrun_json.render,
    "html": dryrun_html.render,
}


def test_the_blocked_report_covers_what_the_renderers_must_show() -> None:
    report = blocked_report()
    assert report.verdict == "BLOCKED" and safe_report().verdict == "SAFE"
    reasons = report.blocking_reasons
    assert reasons[0] == "1 blocking finding from the policy check"  # VACUUM ANALYZE is an online step: info
    assert {f.rule_id for f in report.check.findings if f not in report.check.blocking} == {"require-separate-step"}
    assert any(r.startswith("statement 6 (line 9) failed") for r in reasons)
    assert "check failed: indexes valid" not in reasons and "check failed: amcheck" not in reasons
    assert any(r.startswith("limit-delete-percent: ") for r in reasons)


@pytest.mark.parametrize("extension", FORMATS)
@pytest.mark.parametrize("name", REPORTS)
def test_snapshot(name: str, extension: str) -> None:
    assert_snapshot(f"dryrun.{name}.{extension}", FORMATS[extension](REPORTS[name]()))


@pytest.mark.parametrize("extension", FORMATS)
def test_renderers_are_deterministic(extension: str) -> None:
    assert FORMATS[extension](blocked_report()) == FORMATS[extension](blocked_report())


def test_text_starts_with_the_verdict_and_lists_every_reason() -> None:
    report = blocked_report()
    lines = dryrun_text.render(report, width=200).splitlines()
    assert lines[0] == f"BLOCKED: dry-run of {PATH}, {len(report.blocking_reasons)} reasons"
    assert lines[1 : 1 + len(report.blocking_reasons)] == [f"  - {r}" for r in report.blocking_reasons]
    assert dryrun_text.render(safe_report()).splitlines()[0] == f"SAFE: dry-run of {PATH}, nothing blocks it"


def test_text_shows_locks_steps_samples_and_static_blocking_findings() -> None:
    report = blocked_report()
    output = dryrun_text.render(report, width=400)
    assert "ACCESS EXCLUSIVE public.stock" in output and "own step (autocommit)" in output
    assert "FAIL (pre-existing)" in output and "SKIPPED" in output
    assert "sku=B-010, qty=-5, counted_at=2024-05-01 12:10:00" in output and "id=41, sku=<b>x</b>, note=NULL" in output
    for finding in report.check.blocking:
        assert f"{finding.path}:{finding.line} {finding.rule_id} {finding.message}" in output
    assert "\x1b[" not in output and "\x1b[" in dryrun_text.render(report, color=True)


MERMAID_TASK = re.compile(r"^    (?P<label>[^:#;\n]+) :(?P<crit>crit, )?(?P<start>\d+), (?P<end>\d+)$")
MERMAID_KEYWORDS = (
    "gantt",
    "    title ",
    "    dateFormat x",
    "    axisFormat %S.%L s",
    "    todayMarker off",
    "    section ",
)


def mermaid_tasks(markdown: str) -> list[re.Match[str]]:
    """The task lines of the one mermaid block; fails on any line that is neither a task nor a known keyword."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    tasks = []
    for line in blocks[0].splitlines():
        if line.startswith(MERMAID_KEYWORDS):
            assert "#" not in line and ";" not in line, line
            continue
        match = MERMAID_TASK.match(line)
        assert match, f"not a valid gantt task line: {line!r}"
        assert int(match["end"]) > int(match["start"]) >= 0
        tasks.append(match)
    return tasks


def test_markdown_gantt_has_a_bar_per_statement_and_lock() -> None:
    report = blocked_report()
    output = dryrun_markdown.render(report)
    assert output.startswith("## dbguard dry-run: BLOCKED\n")
    tasks = mermaid_tasks(output)
    labels = [t["label"].strip() for t in tasks]
    ran = [r for r in report.execution.runs if r.executed or (r.error and r.seconds)]
    locks = [lock for r in report.execution.runs for lock in r.locks]
    assert len(tasks) == len(ran) + len(locks)
    assert "stmt 1 SET" in labels  # 0.4 ms rounds to 0: it still gets a 1 ms bar
    assert [t["crit"] is not None for t in tasks] == ["ACCESS EXCLUSIVE" in label for label in labels]
    until_vacuum = next(t for t in tasks if "on public.stock" in t["label"])
    assert (int(until_vacuum["start"]), int(until_vacuum["end"])) == (44, 91)  # released by the COMMIT before #5
    assert dryrun_markdown.render(safe_report()).startswith("## dbguard dry-run: SAFE\n")


def test_markdown_gantt_labels_are_sanitized() -> None:
    report = blocked_report()
    odd = replace(
        report.execution.runs[2],
        kind="ALTER TABLE #1: x; y",
        locks=(LockHeld('public."odd:name#1;%%"', "ACCESS EXCLUSIVE"),),
    )
    runs = [odd if run.index == odd.index else run for run in report.execution.runs]
    output = dryrun_markdown.render(replace(report, execution=replace(report.execution, runs=runs)))
    labels = [t["label"] for t in mermaid_tasks(output)]
    assert any(label.startswith("ACCESS EXCLUSIVE on public") and "odd" in label for label in labels)


def test_markdown_shows_samples_collapsed_and_escapes_markup() -> None:
    output = dryrun_markdown.render(blocked_report())
    assert "<details><summary>stock is never negative: first 10 offending rows</summary>" in output
    assert "\nsku=B-010, qty=-5, counted_at=2024-05-01 12:10:00\n" in output
    prose = re.sub(r"^(`{3,}).*?^\1$", "", output, flags=re.MULTILINE | re.DOTALL)  # fenced blocks are literal
    prose = re.sub(r"`[^`\n]*`", "", prose)  # and so are code spans
    assert MARKUP not in prose and "&lt;b&gt;x&lt;/b&gt;" in prose
    # On GitHub, "#6" outside code links to issue 6, and "<tag>" outside code vanishes.
    assert not re.search(r"(?<![\w&#])#\d", prose), re.findall(r".*(?<![\w&#])#\d.*", prose)
    assert not re.search(r"<(?!/?(details|summary)>)", prose)


def test_json_round_trips_with_a_stable_schema() -> None:
    report = blocked_report()
    data = json.loads(dryrun_json.render(report))
    assert (data["schema_version"], data["kind"], data["verdict"]) == (2, "dry-run", "blocked")
    assert data["reasons"] == report.blocking_reasons
    assert len(data["statements"]) == len(report.execution.runs)
    assert data["statements"][2]["locks"] == [{"table": "public.stock", "mode": "ACCESS EXCLUSIVE"}]
    assert data["check"] == json.loads(json.dumps(render_json.to_dict(report.check)))
    never_negative = next(c for c in data["checks"] if c["name"] == "stock is never negative")
    assert never_negative["columns"] == ["sku", "qty", "counted_at"]
    assert never_negative["sample"][0] == {"sku": "B-001", "qty": "-0.5", "counted_at": "2024-05-01 12:01:00"}
    assert [c["status"] for c in data["checks"]] == ["pass", "fail", "pre-existing", "skipped", "fail", "fail"]
    assert data["findings"][0]["rule"] == "limit-delete-percent" and data["findings"][0]["blocking"]
    assert json.loads(dryrun_json.render(safe_report()))["reasons"] == []


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escapes_every_value() -> None:
    output = dryrun_html.render(blocked_report())
    parser = _Tags()
    parser.feed(output)
    assert "b" not in parser.tags, "a value was rendered as markup"
    assert parser.tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "section",
        "h1",
        "h2",
        "p",
        "ul",
        "li",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
        "pre",
        "span",
        "details",
        "summary",
    }
    assert "&lt;b&gt;x&lt;/b&gt;" in output and MARKUP in "".join(parser.text)
    assert "<script" not in output.lower() and " src=" not in output and "<link" not in output
    assert "BLOCKED" in output.split("<section", 1)[0]
