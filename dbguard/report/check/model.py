"""The report model. `check` fills findings; later stages (dry-run, run) add their own sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from dbguard import __version__
from dbguard.dialects import Dialect
from dbguard.policy.policy import Policy
from dbguard.registry import Severity
from dbguard.sql.model import Script, Span

REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    help: str
    path: str
    span: Span | None
    statement_index: int | None
    origin: str | None  # "DO block", "body of f()": the finding is inside nested SQL
    waived_reason: str | None = None
    line: int = 0
    column: int = 0

    def __post_init__(self) -> None:
        if self.span is not None and not self.line:
            object.__setattr__(self, "line", self.span.line)
            object.__setattr__(self, "column", self.span.column)

    @property
    def waived(self) -> bool:
        return self.waived_reason is not None

    def blocks(self, fail_on: Severity) -> bool:
        return not self.waived and fail_on is not Severity.OFF and self.severity.rank >= fail_on.rank


@dataclass(frozen=True)
class FileReport:
    path: str
    dialect: Dialect
    script: Script
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class CheckReport:
    policy: Policy
    files: tuple[FileReport, ...]
    fail_on: Severity | None = None  # overrides the policy's fail_on (`--fail-on`)
    tool_version: str = field(default=__version__)

    @property
    def threshold(self) -> Severity:
        return self.fail_on or self.policy.fail_on

    @property
    def findings(self) -> list[Finding]:
        return [f for file in self.files for f in file.findings]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocks(self.threshold)]

    @property
    def statement_count(self) -> int:
        return sum(len(f.script.statements) for f in self.files)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)}
        for finding in self.findings:
            if not finding.waived:
                out[finding.severity.value] += 1
        out["waived"] = sum(1 for f in self.findings if f.waived)
        return out
