"""The JSON report: a stable, documented schema with a version field (see README, "JSON report")."""

from __future__ import annotations

import json
from typing import Any

from dbguard.report.check.model import REPORT_SCHEMA_VERSION, CheckReport, FileReport, Finding
from dbguard.report.printable import printable, without_surrogates
from dbguard.sql.model import Statement


def render(report: CheckReport) -> str:
    return json.dumps(printable(to_dict(report), without_surrogates), indent=2, sort_keys=False) + "\n"


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
