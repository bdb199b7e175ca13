"""`check --format gitlab`: GitLab Code Quality JSON, over reports made by the real engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import load_policy, parse_policy
from dbguard.report.check import gitlab
from dbguard.report.check.model import CheckReport
from dbguard.rules import Severity
from tests.test_renderers import FIX_STOCK, build_report

SEVERITIES = {"info", "minor", "major", "critical", "blocker"}  # GitLab's documented scale


def test_one_issue_per_finding_that_is_not_waived_with_the_documented_fields() -> None:
    report = build_report()
    issues = json.loads(gitlab.render(report))
    shown = [f for f in report.findings if not f.waived]
    assert len(issues) == len(shown) > 0
    for issue, finding in zip(issues, shown, strict=True):
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["check_name"] == finding.rule_id
        assert issue["description"].startswith(finding.message)
        assert finding.help in issue["description"]
        assert issue["severity"] in SEVERITIES
        assert issue["location"]["path"] == "scripts/fix_stock.sql"
        assert issue["location"]["lines"]["begin"] == (finding.line or 1) >= 1
        assert re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"]), issue["fingerprint"]
    assert "ban-truncate" not in {i["check_name"] for i in issues}, "the waived TRUNCATE is left out"
    delete = next(i for i in issues if i["check_name"] == "ban-delete-without-where")
    assert (delete["severity"], delete["location"]["lines"]["begin"]) == ("blocker", 2)


def test_a_finding_that_does_not_block_is_ranked_by_its_severity() -> None:
    lenient = build_report(parse_policy('[rules]\nban-delete-without-where = "warning"\n', "test policy"))
    issues = json.loads(gitlab.render(lenient))
    delete = next(i for i in issues if i["check_name"] == "ban-delete-without-where")
    assert delete["severity"] == "minor"
    off = CheckReport(policy=lenient.policy, files=lenient.files, fail_on=Severity.OFF)
    assert {i["severity"] for i in json.loads(gitlab.render(off))} <= {"major", "minor", "info"}


def test_fingerprints_survive_moved_lines_and_tell_identical_findings_apart() -> None:
    policy = load_policy(None)
    before = check_text("DELETE FROM stock;\nDELETE FROM stock;\n", Dialect.POSTGRES, policy, "./x.sql")
    after = check_text("-- moved down\n\nDELETE FROM stock;\nDELETE FROM stock;\n", Dialect.POSTGRES, policy, "x.sql")
    first = json.loads(gitlab.render(CheckReport(policy=policy, files=(before,))))
    second = json.loads(gitlab.render(CheckReport(policy=policy, files=(after,))))
    prints = [i["fingerprint"] for i in first]
    assert len(set(prints)) == len(prints) == 2, "two identical findings, two fingerprints"
    assert [i["fingerprint"] for i in second] == prints, "moved down two lines: the same issues"
    assert [i["location"]["lines"]["begin"] for i in second] == [3, 4]
    assert first[0]["location"]["path"] == "x.sql"


def test_no_findings_is_an_empty_array() -> None:
    policy = load_policy(None)
    clean = check_text("SELECT 1;\n", Dialect.POSTGRES, policy, "ok.sql")
    assert json.loads(gitlab.render(CheckReport(policy=policy, files=(clean,)))) == []


def test_a_name_that_is_not_utf8_becomes_valid_json_for_strict_parsers() -> None:
    policy = load_policy(None)
    script = check_text('DELETE FROM "st\udcffock";\n', Dialect.POSTGRES, policy, "evil-\udcfe.sql")
    output = gitlab.render(CheckReport(policy=policy, files=(script,)))
    assert "\\udc" not in output, "a lone surrogate escaped in JSON is rejected by strict parsers"
    issues = json.loads(output)
    assert issues and all(i["location"]["path"] == "evil-\ufffd.sql" for i in issues)


def test_the_command_writes_it_and_exits_1_on_blocking_findings(tmp_path: Path) -> None:
    script = tmp_path / "fix_stock.sql"
    script.write_text(FIX_STOCK)
    out = tmp_path / "gl-code-quality-report.json"
    result = CliRunner().invoke(app, ["check", str(script), "--format", "gitlab", "--output", str(out)])
    assert result.exit_code == 1, result.output
    issues = json.loads(out.read_text())
    assert {i["check_name"] for i in issues} >= {"ban-delete-without-where", "waiver-unknown-rule"}
