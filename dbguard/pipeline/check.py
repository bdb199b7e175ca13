"""The static half of the pipeline: parse a script, run the rules under a policy, apply waivers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from dbguard.dialects import Dialect
from dbguard.errors import UsageError
from dbguard.inputs import Source
from dbguard.policy.policy import Policy
from dbguard.policy.waivers import Waiver, find_waivers
from dbguard.report.check.model import CheckReport, FileReport, Finding
from dbguard.rules import RULES, RuleContext, Severity, Violation
from dbguard.sql.model import Script, Statement
from dbguard.sql.parse import parse_script

if TYPE_CHECKING:
    from dbguard.catalog.snapshot import Catalog


def check_text(
    sql: str, dialect: Dialect, policy: Policy, path: str = "<stdin>", catalog: Catalog | None = None
) -> FileReport:
    script = parse_script(sql, dialect, path)
    findings = tuple(check_script(script, policy, catalog))
    return FileReport(path=path, dialect=dialect, script=script, findings=findings)


def check_script(script: Script, policy: Policy, catalog: Catalog | None = None) -> list[Finding]:
    """Every active rule over every statement. With `catalog` (the database's tables: `check --db` or
    `--stats`), rules see real sizes, column types and indexes, and findings are sized (dbguard.catalog.sizing)."""
    if catalog is not None and catalog.dialect is not script.dialect:
        raise UsageError(f"{script.path} is checked as {script.dialect.value}, but the table statistics are of a "
                         f"{catalog.dialect.value} database ({catalog.source})")  # fmt: skip
    context = RuleContext(script, policy, catalog.column_types if catalog else {}, catalog)
    active = [
        (r.id, r.check, policy.severity_of(r.id))
        for r in RULES.values()
        if r.check is not None and script.dialect in r.dialects and policy.severity_of(r.id) is not Severity.OFF
    ]
    findings: list[Finding] = []
    for statement in script.statements:
        for rule_id, rule_check, severity in active:
            for violation in rule_check(statement, context):
                finding_severity, message = violation.severity(severity), violation.message
                if catalog is not None:
                    finding_severity, message = _sized(rule_id, severity, violation, statement, context)
                findings.append(
                    Finding(
                        rule_id,
                        finding_severity,
                        message,
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


def _sized(
    rule_id: str, severity: Severity, violation: Violation, statement: Statement, context: RuleContext
) -> tuple[Severity, str]:
    """The finding's severity and message given the size of the table it concerns, if the snapshot knows it."""
    from dbguard.catalog.sizing import SIZE_AWARE_RULES, by_size, concerned_table, size_note

    table = concerned_table(statement, context)
    if table is None:
        return violation.severity(severity), violation.message
    if rule_id in SIZE_AWARE_RULES and rule_id not in context.policy.severities:  # the policy's own word wins
        severity = by_size(severity, table, context.policy.thresholds)
    return violation.severity(severity), violation.message + size_note(table)


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
    catalog: Catalog | None = None,
) -> CheckReport:
    """`dialect` given (flag, environment or config) wins; else a script's own directive; else the dialect
    of the database `catalog` was read from; else PostgreSQL."""
    files = []
    fallback = catalog.dialect if catalog is not None else Dialect.POSTGRES
    for source in sources:
        if on_file:
            on_file(source.name)
        chosen = dialect or dialect_of(source.text) or fallback
        files.append(check_text(source.text, chosen, policy, source.name, catalog))
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
