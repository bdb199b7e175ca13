"""The JSON report: a stable, documented schema with a version field (see README, "JSON report").

Compact (no indentation), as machine output usually is (`jq .` shows it indented): on a script of 10,000
statements the indented form took five times as long to write, in json's pure-Python encoder, and printable()
walked every statement of the report looking for a lone surrogate that one search of the output finds.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dbguard.report.check.model import REPORT_SCHEMA_VERSION, CheckReport, FileReport, Finding
from dbguard.report.printable import printable, without_surrogates
from dbguard.sql.model import Statement

# A lone surrogate as json writes it: a high one not followed by a low one, or a low one not after a high one.
# (A false match, such as a backslash the script wrote before "ud800", only takes the slower, exact path.)
_LONE_SURROGATE = re.compile(r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")


def render(report: CheckReport) -> str:
    """The report as one line of ASCII JSON, ending in a newline."""
    data = to_dict(report)
    text = json.dumps(data, separators=(",", ":"))
    if _LONE_SURROGATE.search(text):  # a file name that is not UTF-8: strict parsers reject a lone surrogate
        text = json.dumps(printable(data, without_surrogates), separators=(",", ":"))
    return text + "\n"


def to_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "dbguard", "version": report.tool_version},
        "policy": {"name": report.policy.name, "source": report.policy.source},
        "fail_on": report.threshold.value,
        "verdict": "blocked" if report.blocking else "passed",
        "summary": {
            **report.counts(),
            "blocking": len(report.blocking),
            "files": len(report.files),
            "statements": report.statement_count,
        },
        "files": [_file(f, report) for f in report.files],
    }


def _file(file: FileReport, report: CheckReport) -> dict[str, Any]:
    return {
        "path": file.path,
        "dialect": file.dialect.value,
        "statements": [_statement(s) for s in file.script.statements],
        "findings": [_finding(f, report) for f in file.findings],
    }


def _statement(statement: Statement) -> dict[str, Any]:
    facts = statement.facts
    return {
        "index": statement.index,
        "line": statement.span.line,
        "column": statement.span.column,
        "end_line": statement.span.end_line,
        "end_column": statement.span.end_column,
        "kind": statement.kind,
        "tables_read": list(facts.tables_read),
        "tables_written": list(facts.tables_written),
        "lock": facts.lock.label if facts.lock else None,
        "locks": [{"table": relation, "mode": mode.label} for relation, mode in facts.locks],
        "transactional": facts.transactional,
        "origin": statement.origin,
        "parent": statement.parent,
    }


def _finding(finding: Finding, report: CheckReport) -> dict[str, Any]:
    return {
        "rule": finding.rule_id,
        "severity": finding.severity.value,
        "blocking": finding.blocks(report.threshold),
        "message": finding.message,
        "help": finding.help,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.span.end_line if finding.span else finding.line,
        "end_column": finding.span.end_column if finding.span else finding.column,
        "statement": finding.statement_index,
        "origin": finding.origin,
        "waived": finding.waived,
        "waiver_reason": finding.waived_reason,
    }
