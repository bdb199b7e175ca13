"""The static half of the pipeline: parse a script, run the rules under a policy, apply waivers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace

from dbguard.dialects import Dialect
from dbguard.inputs import Source
from dbguard.policy.policy import Policy
from dbguard.policy.waivers import Waiver, find_waivers
from dbguard.report.check.model import CheckReport, FileReport, Finding
from dbguard.rules import RULES, RuleContext, Severity
from dbguard.sql.model import Script
from dbguard.sql.parse import parse_script


def check_text(sql: str, dialect: Dialect, policy: Policy, path: str = "<stdin>") -> FileReport:
    script = parse_script(sql, dialect, path)
    return FileReport(path=path, dialect=dialect, script=script, findings=tuple(check_script(script, policy)))


def check_script(script: Script, policy: Policy) -> list[Finding]:
    context = RuleContext(script, policy)
    active = [
        (r.id, r.check, policy.severity_of(r.id))
        for r in RULES.values()
        if r.check is not None and script.dialect in r.dialects and policy.severity_of(r.id) is not Severity.OFF
    ]
    findings: list[Finding] = []
    for statement in script.statements:
        for rule_id, rule_check, severity in active:
            for violation in rule_check(statement, context):
                findings.append(
                    Finding(
                        rule_id,
                        violation.severity(severity),
                        violation.message,
                        violation.help,
                        script.path,
                        statement.span,
                        statement.index,
                        statement.origin,
                    )
                )
    waivers = find_waivers(script)
    findings = _apply_waivers(findings, waivers, script)
    findings += _waiver_findings(waivers, policy, script.path)
    return sorted(findings, key=lambda f: (f.line, f.column, f.statement_index or 0, f.rule_id))


_DIALECT_DIRECTIVE = re.compile(r"--\s*dbguard:\s*dialect\s*=?\s*([A-Za-z]+)")


def dialect_of(text: str) -> Dialect | None:
    """The dialect a script names in its leading comments (`-- dbguard: dialect=sqlite`), if it does."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return None  # the directive counts only in the comments before the first statement
        match = _DIALECT_DIRECTIVE.match(stripped)
        if match:
            return Dialect.parse(match.group(1))
    return None


def check_sources(
    sources: Iterable[Source],
    dialect: Dialect | None,
    policy: Policy,
    on_file: Callable[[str], None] | None = None,
) -> CheckReport:
    """`dialect` given (flag, environment or config) wins; else a script's own directive; else PostgreSQL."""
    files = []
    for source in sources:
        if on_file:
            on_file(source.name)
        chosen = dialect or dialect_of(source.text) or Dialect.POSTGRES
        files.append(check_text(source.text, chosen, policy, source.name))
    return CheckReport(policy=policy, files=tuple(files))


def _apply_waivers(findings: list[Finding], waivers: list[Waiver], script: Script) -> list[Finding]:
    by_statement: dict[int, dict[str, str]] = {}
    for waiver in waivers:
        if waiver.statement is not None and waiver.reason:
            for rule_id in waiver.rule_ids:
                by_statement.setdefault(waiver.statement, {})[rule_id] = waiver.reason
    out = []
    for finding in findings:
        reason = by_statement.get(script.top_of.get(finding.statement_index or 0, 0), {}).get(finding.rule_id)
        out.append(replace(finding, waived_reason=reason) if reason else finding)
    return out


def _waiver_findings(waivers: list[Waiver], policy: Policy, path: str) -> list[Finding]:
    out = []
    for waiver in waivers:
        problems = []
        for rule_id in waiver.rule_ids:
            if rule_id not in RULES:
                problems.append(
                    (
                        "waiver-unknown-rule",
                        f"waiver names unknown rule {rule_id!r}",
                        "Name a rule from `dbguard rules list`; a mistyped waiver silently waives nothing.",
                    )
                )
        if waiver.reason is None:
            problems.append(
                (
                    "waiver-without-reason",
                    f"waiver for {', '.join(waiver.rule_ids)} gives no reason",
                    'Say why the hazard is acceptable here: -- dbguard: allow <rule-id> reason="..."',
                )
            )
        for rule_id, message, help_text in problems:
            severity = policy.severity_of(rule_id)
            if severity is not Severity.OFF:
                finding = Finding(
                    rule_id,
                    severity,
                    message,
                    help_text,
                    path,
                    None,
                    waiver.statement,
                    None,
                    line=waiver.line,
                    column=waiver.column,
                )
                out.append(finding)
    return out
