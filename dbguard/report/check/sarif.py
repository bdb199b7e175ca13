"""SARIF 2.1.0 for code scanning: every registered rule with its docs, and one result per finding."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from dbguard.report.check.github import sentence
from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.printable import printable, without_surrogates
from dbguard.rules import RULES, Rule, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/dbguard/dbguard"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.OFF: "none"}

# Characters kept as they are in a file path turned into a URI reference; the rest are percent-encoded.
_URI_SAFE = "/:@!$&'()*+,;=~"


def render(report: CheckReport) -> str:
    rules = sorted(RULES.values(), key=lambda r: r.id)
    rule_index = {r.id: n for n, r in enumerate(rules)}
    driver = {
        "name": "dbguard",
        "version": report.tool_version,
        "informationUri": INFORMATION_URI,
        "rules": [_rule(r) for r in rules],
    }
    run = {
        "tool": {"driver": driver},
        "invocations": [{"executionSuccessful": True}],
        "results": [_result(f, rule_index) for f in report.findings],
    }
    sarif = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    # Code scanning shows messages to people: the script's control characters and overrides as escapes.
    return json.dumps(printable(sarif), indent=2, ensure_ascii=False) + "\n"


def _rule(rule: Rule) -> dict[str, Any]:
    doc = rule.doc or rule.summary
    first_paragraph = re.split(r"\n\s*\n", doc, maxsplit=1)[0]
    return {
        "id": rule.id,
        "name": "".join(word.capitalize() for word in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": " ".join(first_paragraph.split())},
        "help": {"text": doc, "markdown": _doc_markdown(doc)},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["dbguard"]},
    }


def _doc_markdown(doc: str) -> str:
    """The rule's docs with each indented example (`Bad:`, `Good:`) in its own ```sql fence."""
    out: list[str] = []
    example: list[str] = []

    def flush() -> None:
        if example:
            out.extend(["", "```sql", *example, "```", ""])
            example.clear()

    for line in doc.splitlines():
        if line[:1] in (" ", "\t"):
            example.append(line[4:] if line.startswith("    ") else line.lstrip())
        elif not line.strip():
            flush()
            out.append("")
        else:
            flush()
            heading = re.fullmatch(r"(\w[\w ]*):", line.strip())
            out.append(f"**{heading.group(1)}:**" if heading else line)
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def _result(finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.rule_id}
    if finding.rule_id in rule_index:
        result["ruleIndex"] = rule_index[finding.rule_id]
    result["level"] = LEVELS[finding.severity]
    result["message"] = {"text": " ".join(t for t in (sentence(finding.message), finding.help) if t)}
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.path)}}
    region = _region(finding)
    if region:
        physical["region"] = region
    result["locations"] = [{"physicalLocation": physical}]
    if finding.waived:
        result["suppressions"] = [{"kind": "inSource", "justification": finding.waived_reason}]
    if finding.origin:
        result["properties"] = {"origin": finding.origin}
    return result


def _uri(path: str) -> str:
    """A path as a URI reference, percent-encoded from its bytes: a name that is not UTF-8 keeps its bytes."""
    path = path.replace("\\", "/")
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte can have come from
        raw = without_surrogates(path).encode("utf-8")
    return quote(raw, _URI_SAFE)


def _region(finding: Finding) -> dict[str, int]:
    span = finding.span
    if span is not None:
        return {"startLine": span.line, "startColumn": span.column,
                "endLine": span.end_line, "endColumn": span.end_column}  # fmt: skip
    if not finding.line:
        return {}
    return {"startLine": finding.line, "startColumn": finding.column or 1}
