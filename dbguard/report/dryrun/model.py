"""The dry-run report: the static findings plus what the script did to a real copy of the data."""

from __future__ import annotations

from dataclasses import dataclass

from dbguard.guard.execute import ExecutionResult
from dbguard.report.check.model import CheckReport, Finding
from dbguard.targets.model import CheckResult, SchemaChange


@dataclass(frozen=True)
class TableDelta:
    table: str
    rows_before: int | None  # None: the table did not exist before the script
    rows_after: int | None  # None: the table does not exist after it
    hash_before: str | None
    hash_after: str | None

    @property
    def changed(self) -> bool:
        return (self.rows_before, self.hash_before) != (self.rows_after, self.hash_after)

    @property
    def delta(self) -> int:
        return (self.rows_after or 0) - (self.rows_before or 0)


@dataclass(frozen=True)
class GateResult:
    """An integrity check or invariant after the script; `pre_existing` if it failed before it ran too."""

    result: CheckResult
    pre_existing: bool = False

    @property
    def blocks(self) -> bool:
        return not self.result.passed and not self.result.skipped and not self.pre_existing


@dataclass(frozen=True)
class Estimate:
    statement: int
    sandbox_seconds: float
    scale: float  # production rows / sandbox rows of the largest table the statement touches
    production_seconds: float


@dataclass(frozen=True)
class DryRunReport:
    check: CheckReport
    target: str  # the target URL, password masked
    server_version: str
    sandbox: str  # what the sandbox was, e.g. "scratch database dbguard_sandbox_1a2b on 127.0.0.1:5432"
    provider: str
    scoped: bool
    tables_copied: tuple[str, ...]
    copy_seconds: float
    execution: ExecutionResult
    tables: tuple[TableDelta, ...]
    schema_changes: tuple[SchemaChange, ...]
    checks: tuple[GateResult, ...]
    findings: tuple[Finding, ...]  # from the dry-run itself: row thresholds
    estimates: tuple[Estimate, ...]
    notes: tuple[str, ...]  # side effects a rollback cannot undo, and the like
    target_read_only: bool = False  # every session on the target had default_transaction_read_only (SQLite: mode=ro)

    @property
    def blocking_reasons(self) -> list[str]:
        reasons = []
        static = self.check.blocking
        if static:
            reasons.append(f"{len(static)} blocking finding{'s' * (len(static) != 1)} from the policy check")
        failed = self.execution.failed
        if failed:
            reasons.append(f"statement {failed.index} (line {failed.error_line or failed.line}) failed: {failed.error}")
        for gate in self.checks:
            if gate.blocks:
                cause = gate.result.detail if len(gate.result.detail) <= 160 else gate.result.detail[:159] + "…"
                reasons.append(f"check failed: {gate.result.name}" + (f": {cause}" if cause else ""))
        for finding in self.findings:
            if finding.blocks(self.check.threshold):
                reasons.append(f"{finding.rule_id}: {finding.message}")
        return reasons

    @property
    def verdict(self) -> str:
        return "BLOCKED" if self.blocking_reasons else "SAFE"
