"""Report renderers: snapshots of each format over a report made by the real engine, and checks of structure.

The rules that fire on the script below change as rules are added or reworded, so the snapshots are meant
to be refreshed: `DBGUARD_UPDATE_SNAPSHOTS=1 pytest tests/test_renderers.py` rewrites them instead of
comparing, and the diff of `tests/snapshots/` is then reviewed like code.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Policy, load_policy, parse_policy
from dbguard.report.check import github as render_github
from dbguard.report.check import junit as render_junit
from dbguard.report.check import markdown as render_markdown
from dbguard.report.check import sarif as render_sarif
from dbguard.report.check.model import CheckReport, FileReport
from dbguard.rules import RULES, Severity

SNAPSHOTS = Path(__file__).parent / "snapshots"
TOOL_VERSION = "0.1.0"  # pinned, so that a release does not change every snapshot

FIX_STOCK = """\
-- Repair stock after the failed supplier import.
DELETE FROM reservations;
UPDATE stock SET qty = 0 WHERE 1=1;
-- dbguard: allow ban-truncate reason="staging table, rebuilt nightly"
TRUNCATE staging_import;
-- dbguard: allow ban-drop-table
DROP TABLE old_stock;
CREATE INDEX stock_qty_idx ON stock (qty);
DO $$
BEGIN
  DELETE FROM audit_log;
END
$$;
SELECT 1;
-- dbguard: allow ban-trunate reason="a mistyped rule id, with nothing below it"
"""
CLEAN = "SELECT id, qty FROM stock WHERE qty < 0;\n"

Renderer = Callable[[CheckReport], str]
FORMATS: list[tuple[str, str]] = [
    ("markdown", "md"), ("sarif", "sarif"), ("junit", "xml"),
    ("github", "txt"), ("text", "txt"), ("json", "json"),
]  # fmt: skip


def build_report(policy: Policy | None = None, fix_stock: str = FIX_STOCK) -> CheckReport:
    policy = policy or load_policy(None)
    files = (
        check_text(fix_stock, Dialect.POSTGRES, policy, "scripts/fix_stock.sql"),
        check_text(CLEAN, Dialect.POSTGRES, policy, "scripts/negative_stock.sql"),
    )
    return CheckReport(policy=policy, files=files, tool_version=TOOL_VERSION)


@pytest.fixture(scope="module")
def report() -> CheckReport:
    return build_report()


@pytest.fixture(scope="module")
def lenient_report() -> CheckReport:
    """The same script where a DELETE without WHERE is only a warning: it no longer blocks."""
    return build_report(parse_policy('[rules]\nban-delete-without-where = "warning"\n', "test policy"))


def renderer(name: str) -> ModuleType:
    return importlib.import_module(f"dbguard.report.check.{name}")


def assert_snapshot(file_name: str, actual: str) -> None:
    path = SNAPSHOTS / file_name
    if os.environ.get("DBGUARD_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}: create it with DBGUARD_UPDATE_SNAPSHOTS=1", pytrace=False)
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    f"tests/snapshots/{file_name}", "rendered")  # fmt: skip
        pytest.fail(
            f"{file_name} differs from its snapshot. If the change is intended, rerun with "
            f"DBGUARD_UPDATE_SNAPSHOTS=1 and review the diff.\n{''.join(diff)}",
            pytrace=False,
        )


def test_the_report_covers_what_the_renderers_must_show(report: CheckReport) -> None:
    fix_stock = report.files[0]
    assert report.blocking, "the script must have blocking findings"
    assert [f.waived_reason for f in fix_stock.findings if f.waived] == ["staging table, rebuilt nightly"]
    assert any(f.rule_id == "waiver-without-reason" for f in fix_stock.findings)
    assert any(f.statement_index is None for f in fix_stock.findings), "a finding tied to no statement"
    assert any(f.origin == "DO block" for f in fix_stock.findings), "a finding inside nested SQL"
    assert report.files[1].findings == ()


@pytest.mark.parametrize(("name", "extension"), FORMATS)
def test_snapshot(name: str, extension: str, report: CheckReport) -> None:
    rendered = renderer(name).render(report)
    if name == "json":  # one line of ASCII; the snapshot keeps it indented, for a diff a reviewer can read
        assert rendered.count("\n") == 1 and rendered.endswith("\n") and rendered.isascii()
        rendered = json.dumps(json.loads(rendered), indent=2) + "\n"
    assert_snapshot(f"{name}.{extension}", rendered)


@pytest.mark.parametrize(("name", "extension"), FORMATS)
def test_output_does_not_depend_on_the_working_directory(
    name: str, extension: str, report: CheckReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render: Renderer = renderer(name).render
    here, cwd = render(report), os.getcwd()
    monkeypatch.chdir(tmp_path)
    assert render(report) == here
    assert cwd not in here and str(tmp_path) not in here


def test_sarif_is_structurally_valid(report: CheckReport) -> None:
    sarif = json.loads(render_sarif.render(report))
    assert sarif["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    assert run["invocations"] == [{"executionSuccessful": True}]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("dbguard", TOOL_VERSION)
    assert driver["informationUri"] == "https://github.com/dbguard/dbguard"
    rules = driver["rules"]
    delete_rule = rules[[r["id"] for r in rules].index("ban-delete-without-where")]
    assert delete_rule["name"] == "BanDeleteWithoutWhere"
    assert sorted(r["id"] for r in rules) == sorted(RULES)
    for entry in rules:
        for key in ("shortDescription", "fullDescription", "help", "defaultConfiguration"):
            assert entry[key], f"{entry['id']} lacks {key}"
        assert entry["properties"]["tags"] == ["dbguard"]
        for example in RULES[entry["id"]].examples("Bad"):
            assert f"```sql\n{example}\n```" in entry["help"]["markdown"]
            assert all(line.strip() in entry["help"]["text"] for line in example.splitlines())
    assert "Bad:\n    DELETE FROM reservations;" in delete_rule["help"]["text"]
    assert "**Bad:**\n\n```sql\nDELETE FROM reservations;\n```" in delete_rule["help"]["markdown"]

    results = run["results"]
    assert len(results) == len(report.findings) > 0
    for result, finding in zip(results, report.findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule_id
        assert result["level"] in ("error", "warning", "note", "none")
        assert result["message"]["text"].startswith(finding.message)
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "scripts/fix_stock.sql"
        assert location["region"]["startLine"] == finding.line >= 1
    suppressed = [r for r in results if "suppressions" in r]
    assert [r["suppressions"] for r in suppressed] == [
        [{"kind": "inSource", "justification": "staging table, rebuilt nightly"}]
    ]


def test_junit_has_one_failure_per_blocking_finding(report: CheckReport) -> None:
    root = ET.fromstring(render_junit.render(report))
    assert root.tag == "testsuites"
    assert len(root.findall(".//failure")) == int(root.get("failures", "-1")) == len(report.blocking) > 0
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["scripts/fix_stock.sql", "scripts/negative_stock.sql"]
    cases = {c.get("name", ""): c for c in suites[0].findall("testcase")}
    top_level = [s for s in report.files[0].script.statements if s.parent is None]
    assert len(cases) == len(top_level) + 1  # plus the "script" case for the trailing waiver
    assert "statement 1: DELETE (line 2)" in cases
    do_block = next(c for n, c in cases.items() if ": DO " in n)
    assert any("audit_log" in f.get("message", "") for f in do_block.findall("failure"))
    assert [f.get("type") for f in cases["script"].findall("failure")] == ["waiver-unknown-rule"]
    truncate = next(c for n, c in cases.items() if "TRUNCATE" in n)
    assert "ban-truncate" not in [f.get("type") for f in truncate.findall("failure")]
    assert "staging table, rebuilt nightly" in (truncate.findtext("system-out") or "")
    assert [c.get("classname") for c in suites[1]] == ["dbguard.scripts/negative_stock.sql"]


def test_junit_puts_findings_that_do_not_block_in_system_out(lenient_report: CheckReport) -> None:
    root = ET.fromstring(render_junit.render(lenient_report))
    assert len(root.findall(".//failure")) == len(lenient_report.blocking) > 0
    delete = next(c for c in root.iter("testcase") if c.get("name", "").startswith("statement 1: DELETE"))
    assert delete.findall("failure") == []
    assert "warning ban-delete-without-where at scripts/fix_stock.sql:2:1" in (
        delete.findtext("system-out") or ""
    )


def test_github_has_one_line_per_finding_that_is_not_waived(
    report: CheckReport, lenient_report: CheckReport
) -> None:
    lines = render_github.render(report).splitlines()
    assert len(lines) == sum(1 for f in report.findings if not f.waived) > 0
    assert all(line.startswith("::error file=scripts/fix_stock.sql,") for line in lines)
    assert not any("ban-truncate" in line for line in lines)
    delete = (
        "::error file=scripts/fix_stock.sql,line=2,col=1,endLine=2,endColumn=25,"
        "title=ban-delete-without-where::"
    )
    assert any(line.startswith(delete + "DELETE FROM reservations has no WHERE clause") for line in lines)
    lenient = render_github.render(lenient_report).splitlines()
    assert sum(1 for line in lenient if line.startswith("::warning ")) == 2  # both DELETEs without WHERE


def test_github_escapes_data_and_properties(report: CheckReport) -> None:
    finding = next(f for f in report.findings if f.rule_id == "ban-delete-without-where")
    odd = replace(finding, path="scripts/a,b:c.sql", message="first line\r\nsecond, with 100%")
    file = FileReport(odd.path, Dialect.POSTGRES, report.files[0].script, (odd,))
    output = render_github.render(CheckReport(policy=report.policy, files=(file,)))
    assert output.count("\n") == 1
    assert output.startswith("::error file=scripts/a%2Cb%3Ac.sql,line=2,")
    assert "::first line%0D%0Asecond, with 100%25. Add a WHERE clause" in output


def test_github_is_empty_without_findings(report: CheckReport) -> None:
    assert render_github.render(CheckReport(policy=report.policy, files=report.files[1:])) == ""


def test_markdown_verdict_and_tables(report: CheckReport) -> None:
    output = render_markdown.render(report)
    count = len(report.blocking)
    assert output.startswith(f"## dbguard: BLOCKED — {count} blocking findings in 1 file\n")
    assert "| `scripts/negative_stock.sql` | 1 | 0 | 0 | 0 |" in output
    waived = output[output.index("#### Waived") :]
    assert "staging table, rebuilt nightly" in waived and "`ban-truncate`" in waived
    assert "```sql\nDELETE FROM reservations\n```" in output
    assert "&lt;rule-id&gt;" in output  # a bare <rule-id> would vanish as an HTML tag on GitHub
    clean = CheckReport(policy=report.policy, files=report.files[1:])
    assert render_markdown.render(clean).startswith("## dbguard: PASSED\n")


def test_markdown_escapes_pipes_in_table_cells(report: CheckReport) -> None:
    finding = next(f for f in report.findings if f.rule_id == "ban-delete-without-where")
    odd = replace(finding, message="a | b")
    file = replace(report.files[0], findings=(odd,))
    output = render_markdown.render(replace(report, files=(file,)))
    rows = [line for line in output.splitlines() if "| a" in line]
    assert rows == [
        "| `scripts/fix_stock.sql:2:1` | error (blocking) | `ban-delete-without-where` | a \\| b |"
    ]


def test_markdown_truncates_long_statements(report: CheckReport) -> None:
    long_delete = "DELETE FROM stock\n" + "".join(f"-- line {n}\n" for n in range(10)) + ";\n"
    output = render_markdown.render(build_report(report.policy, long_delete))
    fenced = output[output.index("```sql\n") :].split("```")[1]
    assert fenced.splitlines()[1:] == ["DELETE FROM stock", *[f"-- line {n}" for n in range(7)],
                                       "-- … 3 more lines"]  # fmt: skip


def test_renderers_show_warnings_as_warnings(lenient_report: CheckReport) -> None:
    assert lenient_report.threshold is Severity.ERROR
    output = render_markdown.render(lenient_report)
    assert "| `scripts/fix_stock.sql:2:1` | warning | `ban-delete-without-where` |" in output
    sarif = json.loads(render_sarif.render(lenient_report))
    levels = {r["ruleId"]: r["level"] for r in sarif["runs"][0]["results"]}
    assert levels["ban-delete-without-where"] == "warning"
