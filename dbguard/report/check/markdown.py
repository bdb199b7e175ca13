"""Markdown for a pull-request comment: the verdict first, a summary table, then each file's findings."""

from __future__ import annotations

import re

from dbguard.registry import Severity
from dbguard.report.check.model import CheckReport, FileReport, Finding
from dbguard.report.check.text import plural
from dbguard.report.printable import printable
from dbguard.sql.model import Statement

MAX_SQL_LINES = 8


def render(report: CheckReport) -> str:
    report = printable(report)  # no control character or bidirectional override reaches the comment
    counts = report.counts()
    lines = [
        _verdict(report),
        "",
        f"Policy `{report.policy.name}` fails on `{report.threshold.value}`. "
        f"Checked {plural(len(report.files), 'file')}, {plural(report.statement_count, 'statement')}: "
        f"{plural(counts['error'], 'error')}, {plural(counts['warning'], 'warning')}, "
        f"{counts['info']} info, {counts['waived']} waived.",
        "",
        "| File | Statements | Errors | Warnings | Waived |",
        "|---|---:|---:|---:|---:|",
    ]
    for file in report.files:
        active = [f for f in file.findings if not f.waived]
        errors = sum(1 for f in active if f.severity is Severity.ERROR)
        warnings = sum(1 for f in active if f.severity is Severity.WARNING)
        waived = len(file.findings) - len(active)
        row = (_code(file.path), str(len(file.script.statements)), str(errors), str(warnings), str(waived))
        lines.append(_row(row))
    for file in report.files:
        if file.findings:
            lines += ["", *_file_section(report, file)]
    return "\n".join(lines) + "\n"


def _verdict(report: CheckReport) -> str:
    blocking = report.blocking
    if not blocking:
        return "## dbguard: PASSED"
    threshold = report.threshold
    files = sum(1 for file in report.files if any(f.blocks(threshold) for f in file.findings))
    return f"## dbguard: BLOCKED — {plural(len(blocking), 'blocking finding')} in {plural(files, 'file')}"


def _file_section(report: CheckReport, file: FileReport) -> list[str]:
    statements = {s.index: s for s in file.script.statements}
    active = [f for f in file.findings if not f.waived]
    waived = [f for f in file.findings if f.waived]
    lines = [f"### {_code(file.path)}"]
    if active:
        lines += ["", "| Location | Severity | Rule | Message |", "|---|---|---|---|"]
        for finding in active:
            severity = finding.severity.value + (" (blocking)" if finding.blocks(report.threshold) else "")
            lines.append(_row((_code(_location(finding)), severity, _code(finding.rule_id), _inline(finding.message))))
        for finding in active:
            lines += ["", *_details(finding, statements.get(finding.statement_index or 0))]
    if waived:
        lines += ["", "#### Waived", "", "| Location | Rule | Message | Reason |", "|---|---|---|---|"]
        for finding in waived:
            reason = _inline(finding.waived_reason or "")
            cells = (_code(_location(finding)), _code(finding.rule_id), _inline(finding.message), reason)
            lines.append(_row(cells))
    return lines


def _details(finding: Finding, statement: Statement | None) -> list[str]:
    origin = f" (in {_inline(finding.origin)})" if finding.origin else ""
    lines = [f"**{_code(_location(finding))}** {_code(finding.rule_id)}{origin}: {_inline(finding.help)}"]
    if statement is not None:
        sql = statement.text.splitlines()
        if len(sql) > MAX_SQL_LINES:
            hidden = len(sql) - MAX_SQL_LINES
            sql = [*sql[:MAX_SQL_LINES], f"-- … {plural(hidden, 'more line')}"]
        fence = "`" * max(3, _longest_backtick_run("\n".join(sql)) + 1)
        lines += ["", f"{fence}sql", *sql, fence]
    return lines


def _location(finding: Finding) -> str:
    if not finding.line:
        return finding.path
    return f"{finding.path}:{finding.line}:{finding.column}"


def _row(cells: tuple[str, ...]) -> str:
    # GFM splits a row on every `|`, even inside a code span, unless it is escaped.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _inline(text: str) -> str:
    """One line of Markdown; `<...>` outside code spans would be swallowed as an HTML tag."""
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;") for p in parts)


def _code(text: str) -> str:
    text = re.sub(r"[\r\n]+", " ", text)
    ticks = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if "`" in text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
