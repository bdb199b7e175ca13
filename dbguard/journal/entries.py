"""What `run` journals: the payload of each record kind.

A run writes, in order: one `Intent` before its first write, one `Attempt` per transaction attempt
(a lock timeout that is retried is an attempt of its own), and one `Outcome` at the end, after
COMMIT or ROLLBACK, or once `pg_xact_status` has told what happened to a commit whose connection was
lost. `Repair` is written by `dbguard journal repair`, never by a run. `Drill` is written by `dbguard
drill`: one record, a run id of its own. `SignOff` is written by `dbguard approve --journal`: one record, a
run id of its own.

Every string is passed through `mask` before it is written: a password never reaches the journal,
whatever a caller puts in a message.
"""

from __future__ import annotations

import functools
import getpass
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from dbguard import __version__
from dbguard.guard.execute import StatementRun
from dbguard.journal.record import Kind
from dbguard.registry import Severity
from dbguard.report.check.model import Finding
from dbguard.report.drill.model import DrillReport
from dbguard.report.dryrun.model import DryRunReport
from dbguard.review.approvals import Approval
from dbguard.targets.url import DatabaseUrl, mask


class Transaction(StrEnum):
    """What became of the run's writes, as the outcome states it."""

    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    PARTLY_COMMITTED = "partly committed"  # some steps committed, a later one rolled back
    UNKNOWN = "unknown"  # pg_xact_status could not tell: exit 7, a person is needed
    NOT_EXECUTED = "not executed"  # stopped after the intent, before the first statement


class AttemptResult(StrEnum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"  # a statement or the integrity gate failed
    LOCK_TIMEOUT = "lock timeout"  # rolled back; the step is retried unless retries are used up
    CONNECTION_LOST = "connection lost"  # during COMMIT: the outcome says what pg_xact_status found


@dataclass(frozen=True, kw_only=True)
class FindingEntry:
    rule: str
    severity: str
    line: int
    statement: int | None
    message: str
    blocking: bool
    waived: bool
    waiver_reason: str | None

    @classmethod
    def from_finding(cls, finding: Finding, fail_on: Severity) -> FindingEntry:
        return cls(rule=finding.rule_id, severity=finding.severity.value, line=finding.line,
                   statement=finding.statement_index, message=finding.message,
                   blocking=finding.blocks(fail_on), waived=finding.waived,
                   waiver_reason=finding.waived_reason)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class StatementEntry:
    """One top-level statement of the script: rows it changed (None: not executed) and seconds."""

    index: int
    line: int
    kind: str
    rows: int | None
    seconds: float
    error: str | None = None

    @classmethod
    def from_run(cls, run: StatementRun) -> StatementEntry:
        return cls(index=run.index, line=run.line, kind=run.kind, rows=run.rows if run.executed else None,
                   seconds=round(run.seconds, 4), error=run.error)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LockWait:
    """A wait for a table lock: how long, and which sessions held it (pids, as pg_blocking_pids gives)."""

    statement: int
    seconds: float
    blocking_pids: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DryRunSummary:
    verdict: str  # "SAFE" or "BLOCKED"
    sandbox: str
    scoped: bool
    statements: tuple[StatementEntry, ...]
    blocking_reasons: tuple[str, ...]
    seconds: float  # copy plus execution

    @classmethod
    def from_report(cls, report: DryRunReport) -> DryRunSummary:
        return cls(verdict=report.verdict, sandbox=report.sandbox, scoped=report.scoped,
                   statements=tuple(StatementEntry.from_run(run) for run in report.execution.runs),
                   blocking_reasons=tuple(report.blocking_reasons),
                   seconds=round(report.copy_seconds + report.execution.seconds, 3))  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ApprovalEntry:
    """A reviewer's sign-off that counted for the run (see dbguard/review/approvals.py)."""

    reviewer: str
    approved_at: str  # UTC ISO-8601
    recorded_by: str  # the OS user who ran `dbguard approve`
    note: str = ""

    @classmethod
    def from_approval(cls, approval: Approval) -> ApprovalEntry:
        return cls(reviewer=approval.reviewer, approved_at=approval.approved_at, recorded_by=approval.recorded_by,
                   note=approval.note)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Subject:
    """Who ran what, where: in both the intent and the outcome (as top-level fields of the record), so
    each reads on its own."""

    user: str  # the OS user (from the process's uid, not from $USER)
    host: str
    target: str  # the database URL, password masked
    script_path: str
    script_sha256: str
    policy_name: str
    policy_sha256: str  # of the policy file's text (a built-in policy's too)

    @staticmethod
    def operator() -> dict[str, str]:
        """{"user": ..., "host": ...} for the current process."""
        try:
            import pwd

            user = pwd.getpwuid(os.getuid()).pw_name
        except (ImportError, KeyError):  # a uid with no passwd entry (containers)
            user = getpass.getuser()
        return {"user": user, "host": socket.gethostname()}

    @classmethod
    def for_run(cls, target: DatabaseUrl, script_path: str, script_sha256: str, policy_name: str,
                policy_sha256: str) -> Subject:  # fmt: skip
        return cls(**cls.operator(), target=str(target), script_path=script_path, script_sha256=script_sha256,
                   policy_name=policy_name, policy_sha256=policy_sha256)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Intent:
    kind: ClassVar[Kind] = Kind.INTENT

    subject: Subject
    dialect: str
    findings: tuple[FindingEntry, ...]  # every finding, waived ones with their reason
    dry_run: DryRunSummary | None  # None with --skip-dry-run
    skip_dry_run: bool = False
    approvals: tuple[ApprovalEntry, ...] = ()  # the sign-offs that met the policy's require_approvals
    backup_id: str | None = None
    command: str = ""  # the command line, passwords masked; `current_command()` gives it
    dbguard_version: str = __version__


@dataclass(frozen=True, kw_only=True)
class Attempt:
    kind: ClassVar[Kind] = Kind.ATTEMPT

    step: int  # 1-based; a script without `-- dbguard: step` lines is one step
    attempt: int  # 1-based, per step
    result: AttemptResult
    statements: tuple[StatementEntry, ...]
    lock_waits: tuple[LockWait, ...] = ()
    txid: int | None = None  # txid_current() of the attempt's transaction (PostgreSQL)
    backup_id: str | None = None  # the backup taken inside this attempt's transaction
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Outcome:
    kind: ClassVar[Kind] = Kind.OUTCOME

    subject: Subject
    transaction: Transaction
    verdict: str  # as the run printed it
    exit_code: int
    statements: tuple[StatementEntry, ...]  # rows per statement, as committed (or as run, if rolled back)
    backup_id: str | None = None
    attempts: int = 1
    retries: int = 0  # attempts that ended in a lock timeout and were retried
    lock_wait_seconds: float = 0.0
    txid: int | None = None
    resolved_by: str | None = None  # e.g. "pg_xact_status(7281) = 'committed', on a new connection"
    timings: dict[str, float] | None = None  # seconds per phase: check, dry_run, backup, execute, gate, commit, total
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Repair:
    kind: ClassVar[Kind] = Kind.REPAIR

    user: str
    host: str
    reason: str
    removed_bytes: int
    removed_sha256: str
    saved_to: str  # where the removed bytes were kept


@dataclass(frozen=True, kw_only=True)
class DrillCheck:
    """An invariant evaluated on a drill's restored data."""

    name: str
    passed: bool
    skipped: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Drill:
    """A restore drill's result (see dbguard/report/drill/model.py for RTO and RPO)."""

    kind: ClassVar[Kind] = Kind.DRILL

    user: str
    host: str
    target: str  # the backed-up database, password masked
    backup_id: str
    verdict: str  # "PASSED" or "FAILED"
    exit_code: int
    taken_at: str  # UTC, when the backup's data was read
    drilled_at: str  # UTC, when the drill began
    backup_age_seconds: float  # RPO at drill time
    restore_seconds: float | None  # RTO: restore start to verified data; None: the restore failed
    invariants_seconds: float
    tables: int  # tables in the backup
    rows: int  # rows in the backup, as its manifest says
    mismatched: tuple[str, ...]  # tables whose restored count or hash differ from the manifest's
    invariants: tuple[DrillCheck, ...]
    failure: str | None = None  # why the restore failed
    sandbox: str = ""
    policy_name: str = ""
    command: str = ""  # the command line, passwords masked
    dbguard_version: str = __version__

    @classmethod
    def from_report(cls, report: DrillReport, exit_code: int, command: str = "") -> Drill:
        checks = tuple(DrillCheck(name=c.name, passed=c.passed, skipped=c.skipped, detail=c.detail)
                       for c in report.invariants)  # fmt: skip
        return cls(**Subject.operator(), target=report.source, backup_id=report.backup_id, verdict=report.verdict,
                   exit_code=exit_code, taken_at=report.taken_at, drilled_at=report.drilled_at,
                   backup_age_seconds=round(report.backup_age_seconds, 3),
                   restore_seconds=None if report.restore_seconds is None else round(report.restore_seconds, 3),
                   invariants_seconds=round(report.invariants_seconds, 3), tables=len(report.tables),
                   rows=sum(t.expected_rows for t in report.tables),
                   mismatched=tuple(t.table for t in report.tables if not t.matches), invariants=checks,
                   failure=report.failure, sandbox=report.sandbox, policy_name=report.policy,
                   command=command)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SignOff:
    """A reviewer's sign-off of a script's exact bytes, as `dbguard approve` recorded it beside the script."""

    kind: ClassVar[Kind] = Kind.APPROVAL

    user: str  # the OS user who recorded it
    host: str
    reviewer: str
    approved_at: str  # UTC ISO-8601, as in the approvals file
    script_path: str
    script_sha256: str
    note: str = ""
    approvals_file: str = ""
    dbguard_version: str = __version__

    @classmethod
    def from_approval(cls, approval: Approval, script_path: str, approvals_file: str) -> SignOff:
        return cls(**Subject.operator(), reviewer=approval.reviewer, approved_at=approval.approved_at,
                   script_path=script_path, script_sha256=approval.script_sha256, note=approval.note,
                   approvals_file=approvals_file)  # fmt: skip


Entry = Intent | Attempt | Outcome | Repair | Drill | SignOff


def payload(entry: Entry) -> dict[str, Any]:
    """The entry's fields as JSON-ready values, every string masked; a subject's fields are top-level."""
    fields = asdict(entry)
    fields.update(fields.pop("subject", {}))
    return _masked(fields)


@functools.cache
def display_orders() -> dict[str, tuple[str, ...]]:
    """Payload field names in declaration order, per record kind and per nested field ("statements"...)."""
    subject = tuple(f.name for f in fields(Subject))
    shapes: dict[str, Any] = {Kind.INTENT: Intent, Kind.ATTEMPT: Attempt, Kind.OUTCOME: Outcome, Kind.REPAIR: Repair,
                              Kind.DRILL: Drill, Kind.APPROVAL: SignOff, "findings": FindingEntry,
                              "statements": StatementEntry, "lock_waits": LockWait, "dry_run": DryRunSummary,
                              "invariants": DrillCheck, "approvals": ApprovalEntry}  # fmt: skip
    orders = {}
    for key, shape in shapes.items():
        names = tuple(f.name for f in fields(shape))
        orders[str(key)] = (subject if "subject" in names else ()) + names
    return orders


def current_command() -> str:
    """This process's command line, passwords masked: for `Intent.command`."""
    return mask(shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value
