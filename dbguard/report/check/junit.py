"""JUnit XML for CI test dashboards: a test suite per file, a test case per top-level statement.

Each blocking finding is one <failure>, so `failures` counts blocking findings rather than failed test
cases. Findings that do not block (below the threshold, or waived) are listed in the case's <system-out>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dbguard.report.check.model import CheckReport, FileReport, Finding
from dbguard.report.printable import printable
from dbguard.rules import Severity
from dbguard.sql.model import Statement

SCRIPT_CASE = "script"  # findings tied to no statement, such as a waiver with nothing below it


def render(report: CheckReport) -> str:
    report = printable(report)  # XML 1.0 cannot hold most control characters, even escaped
    root = ET.Element("testsuites", name="dbguard")
    tests = failures = 0
    for file in report.files:
        suite = _suite(file, report.threshold)
        root.append(suite)
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(file: FileReport, threshold: Severity) -> ET.Element:
    by_case: dict[int | None, list[Finding]] = {}
    for finding in file.findings:
        index = finding.statement_index
        by_case.setdefault(None if index is None else file.script.top_of.get(index), []).append(finding)
    cases = [_case(file.path, _case_name(s), by_case.get(s.index, []), threshold)
             for s in file.script.statements if s.parent is None]  # fmt: skip
    if None in by_case:
        cases.append(_case(file.path, SCRIPT_CASE, by_case[None], threshold))
    failures = sum(len(case.findall("failure")) for case in cases)
    suite = ET.Element("testsuite", name=file.path, tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped="0")  # fmt: skip
    suite.extend(cases)
    return suite


def _case_name(statement: Statement) -> str:
    return f"statement {statement.index}: {statement.kind} (line {statement.span.line})"


def _case(path: str, name: str, findings: list[Finding], threshold: Severity) -> ET.Element:
    case = ET.Element("testcase", classname=f"dbguard.{path}", name=name)
    notes = []
    for finding in findings:
        if finding.blocks(threshold):
            failure = ET.SubElement(case, "failure", message=f"{finding.rule_id}: {finding.message}",
                                    type=finding.rule_id)  # fmt: skip
            failure.text = "\n".join([*_where(finding), finding.help])
        elif finding.waived:
            notes.append(f"waived {finding.rule_id} at {_location(finding)}: {finding.message} "
                         f"(reason: {finding.waived_reason})")  # fmt: skip
        else:
            notes.append(f"{finding.severity.value} {finding.rule_id} at {_location(finding)}: "
                         f"{finding.message}\n  {finding.help}")  # fmt: skip
    if notes:
        ET.SubElement(case, "system-out").text = "\n".join(notes)
    return case


def _where(finding: Finding) -> list[str]:
    origin = [f"in {finding.origin}"] if finding.origin else []
    return [_location(finding), *origin]


def _location(finding: Finding) -> str:
    if not finding.line:
        return finding.path
    return f"{finding.path}:{finding.line}:{finding.column}"
