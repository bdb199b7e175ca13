"""Every report format stays valid whatever the script holds, and no terminal receives its escape sequences.

The hostile script below holds ESC sequences (colour, clear screen, a window title ended by BEL), a bare CR,
a bidirectional override (U+202E, "Trojan Source"), a NUL, a DEL and a C1 control; its path holds a byte
that is not UTF-8 (a lone surrogate, as Python keeps a file name it cannot decode).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Timeouts, load_policy
from dbguard.report.check import github as render_github
from dbguard.report.check import json as render_json
from dbguard.report.check import junit as render_junit
from dbguard.report.check import markdown as render_markdown
from dbguard.report.check import sarif as render_sarif
from dbguard.report.check import text as render_text
from dbguard.report.check.model import CheckReport
from dbguard.report.dryrun import html as dryrun_html
from dbguard.report.dryrun import json as dryrun_json
from dbguard.report.dryrun import markdown as dryrun_markdown
from dbguard.report.dryrun import text as dryrun_text
from dbguard.report.dryrun.model import DryRunReport
from dbguard.report.printable import printable, visible, without_surrogates
from dbguard.report.run import json as run_json
from dbguard.report.run import text as run_text
from dbguard.report.run.model import PlannedStatement, RunPlan, RunReport
from tests.test_dryrun_renderers import blocked_report

ESC_SEQUENCES = ["\x1b[31m", "\x1b[2J", "\x1b]0;owned\x07", "\x1b[0m"]
RAW = ["\x1b", "\x07", "\r", "\u202e", "\x00", "\x7f", "\x9b", "\u2028"]
HOSTILE = "".join(ESC_SEQUENCES) + "\u202egnp.exe\r\x7f\x9b\u2028"
SCRIPT = (
    f"-- {HOSTILE}\r\n"
    f'DELETE FROM "stock{HOSTILE}";\r\n'
    f"UPDATE stock SET qty = 0 WHERE note = '{HOSTILE}';\r\n"
    f'-- dbguard: allow ban-truncate reason="{HOSTILE}"\n'
    f'TRUNCATE "t{HOSTILE}";\n'
    f"DELETE FROM stock WHERE id = 1\x00;\n"
    f"SELEC '{HOSTILE}';\n"
)
PATH = "scripts/bad\udcff\x1b[7m.sql"


def report(dialect: Dialect) -> CheckReport:
    policy = load_policy(None)
    return CheckReport(policy=policy, files=(check_text(SCRIPT, dialect, policy, PATH),))


def assert_no_raw_controls(output: str) -> None:
    for char in RAW:
        assert char not in output, f"{char!r} reached the output"
    assert not re.search("[\ud800-\udfff]", output), "a lone surrogate reached the output"
    output.encode("utf-8")  # writable to any UTF-8 stream


def test_the_hostile_script_has_findings_that_quote_it() -> None:
    findings = report(Dialect.POSTGRES).findings
    assert {"ban-delete-without-where", "ban-truncate", "unrecognized-statement"} <= {f.rule_id for f in findings}
    assert any("\x1b[2J" in f.message for f in findings)
    assert any(f.waived_reason and "\u202e" in f.waived_reason for f in findings)


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("color", [False, True])
def test_text_sends_no_escape_sequence_of_the_script_to_the_terminal(dialect: Dialect, color: bool) -> None:
    output = render_text.render(report(dialect), color=color)
    if not color:
        assert_no_raw_controls(output)
    else:  # rich's own colour codes are there; none of the script's
        assert_no_raw_controls(re.sub(r"\x1b\[[0-9;]*m", "", output.replace("\x1b[2J", "!")))
        assert "\x1b[2J" not in output and "\x1b]" not in output
    assert "\\x1b[2J" in output and "\\u202e" in output  # shown, as visible escapes
    assert "scripts/bad\\xff\\x1b[7m.sql" in output  # the undecodable byte as the byte it was


@pytest.mark.parametrize("dialect", list(Dialect))
def test_json_is_valid_ascii_and_keeps_the_text(dialect: Dialect) -> None:
    output = render_json.render(report(dialect))
    assert output.isascii() and "\x1b" not in output
    data = json.loads(output)
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # no lone surrogate came back either
    messages = [f["message"] for f in data["files"][0]["findings"]]
    assert any("\x1b[2J" in m for m in messages)  # JSON escapes control characters: nothing is lost
    assert data["files"][0]["path"] == "scripts/bad\ufffd\x1b[7m.sql"


@pytest.mark.parametrize("dialect", list(Dialect))
def test_sarif_is_valid_json_with_the_path_percent_encoded_from_its_bytes(dialect: Dialect) -> None:
    output = render_sarif.render(report(dialect))
    assert_no_raw_controls(output)
    sarif = json.loads(output)
    results = sarif["runs"][0]["results"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {
        "scripts/bad%FF%1B%5B7m.sql"
    }


@pytest.mark.parametrize("dialect", list(Dialect))
def test_junit_is_well_formed_xml(dialect: Dialect) -> None:
    output = render_junit.render(report(dialect))
    assert_no_raw_controls(output)
    root = ET.fromstring(output.encode("utf-8"))
    assert int(root.get("failures", "0")) > 0


@pytest.mark.parametrize("dialect", list(Dialect))
def test_github_annotations_stay_one_line_each(dialect: Dialect) -> None:
    checked = report(dialect)
    output = render_github.render(checked)
    assert_no_raw_controls(output)
    assert output.count("\n") == sum(1 for f in checked.findings if not f.waived)
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in output.splitlines())


@pytest.mark.parametrize("dialect", list(Dialect))
def test_markdown_holds_no_control_character(dialect: Dialect) -> None:
    output = render_markdown.render(report(dialect))
    assert_no_raw_controls(output)
    assert "\\u202e" in output


def hostile_dry_run() -> DryRunReport:
    base = blocked_report()
    check = report(Dialect.POSTGRES)
    runs = tuple(
        replace(run, text=run.text + HOSTILE, notices=[HOSTILE], error=run.error and run.error + HOSTILE)
        for run in base.execution.runs
    )
    checks = tuple(
        replace(gate, result=replace(gate.result, detail=HOSTILE, sample=((HOSTILE, 1),) if gate.result.sample else ()))
        for gate in base.checks
    )
    tables = tuple(replace(delta, table=delta.table + HOSTILE) for delta in base.tables)
    return replace(base, check=check, execution=replace(base.execution, runs=runs), checks=checks, tables=tables,
                   target=base.target + HOSTILE, notes=(HOSTILE,))  # fmt: skip


@pytest.mark.parametrize("color", [False, True])
def test_dry_run_text(color: bool) -> None:
    output = dryrun_text.render(hostile_dry_run(), color=color)
    assert_no_raw_controls(re.sub(r"\x1b\[[0-9;]*m", "", output.replace("\x1b[2J", "!")) if color else output)
    assert "\x1b[2J" not in output and "\x1b]" not in output


def test_dry_run_markdown() -> None:
    assert_no_raw_controls(dryrun_markdown.render(hostile_dry_run()))


def test_dry_run_html() -> None:
    output = dryrun_html.render(hostile_dry_run())
    assert_no_raw_controls(output)
    assert "\\x1b[2J" in output


def test_dry_run_json() -> None:
    output = dryrun_json.render(hostile_dry_run())
    json.loads(output)
    assert output.isascii()


def hostile_run() -> RunReport:
    planned = PlannedStatement(1, 2, 1, "DELETE", f'DELETE FROM "[/x]{HOSTILE}";', "ROW EXCLUSIVE", 3)
    plan = RunPlan(target="sqlite:///w.db", statements=(planned,), steps=1, non_transactional_steps=(),
                   tables_written=(f"[bold]t{HOSTILE}",), backup_tables=(f"[/]{HOSTILE}",), timeouts=Timeouts(),
                   lock_retries=3, verification="restore test", dry_run=f"SAFE [/] {HOSTILE}")  # fmt: skip
    return RunReport(run_id="r1", script=PATH, target="sqlite:///w.db", check=report(Dialect.SQLITE), plan=plan,
                     verdict="BLOCKED", exit_code=1, reasons=[f"[/] {HOSTILE}"], notes=[HOSTILE])  # fmt: skip


@pytest.mark.parametrize("color", [False, True])
def test_run_text_takes_no_markup_or_escape_from_the_script(color: bool) -> None:
    run = hostile_run()
    assert run.plan is not None
    for output in (run_text.render_plan(run.plan, color=color), run_text.render(run, color=color)):
        assert_no_raw_controls(re.sub(r"\x1b\[[0-9;]*m", "", output.replace("\x1b[2J", "!")) if color else output)
        assert "\x1b[2J" not in output
    assert "[/]" in run_text.render(run) and "[bold]t" in run_text.render_plan(run.plan, width=200)


def test_run_json() -> None:
    output = run_json.render(hostile_run())
    assert output.isascii() and json.loads(output)["reasons"] == [f"[/] {HOSTILE}"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("line\r\nnext", "line\nnext"),
        ("bare\rcr", "bare\\x0dcr"),
        ("tab\tkept", "tab\tkept"),
        ("rtl\u202eltr\u2066", "rtl\\u202eltr\\u2066"),
        ("nul\x00del\x7fcsi\x9b", "nul\\x00del\\x7fcsi\\x9b"),
        ("byte\udcff", "byte\\xff"),
        ("surrogate\ud800", "surrogate\\ud800"),
        ("noncharacter\uffff", "noncharacter\\uffff"),
        ("plain ü — ✓", "plain ü — ✓"),
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_without_surrogates_touches_nothing_else() -> None:
    assert without_surrogates("a\udcff\x1b\u202e") == "a\ufffd\x1b\u202e"


def test_printable_copies_only_what_changes() -> None:
    clean = report(Dialect.SQLITE)
    assert printable(printable(clean)) == printable(clean)
    calm = check_text("DELETE FROM stock;", Dialect.SQLITE, load_policy(None))
    assert printable(calm) is calm
