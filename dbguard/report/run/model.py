"""What `run` plans, does and reports: plain data, rendered by dbguard/report/run/text.py and json.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from dbguard.guard.execute import ExecutionResult
from dbguard.journal.entries import LockWait, Transaction
from dbguard.policy.policy import Timeouts
from dbguard.report.check.model import CheckReport
from dbguard.report.dryrun.model import DryRunReport, GateResult
from dbguard.targets.model import CheckResult


@dataclass(frozen=True)
class PlannedStatement:
    index: int
    line: int
    step: int
    kind: str
    text: str  # first line
    lock: str | None  # strongest table lock, as the parser knows it
    expected_rows: int | None  # rows in the dry-run; None: not known (skipped dry-run, or DDL)


@dataclass(frozen=True)
class RunPlan:
    """What will happen, shown before the confirmation."""

    target: str  # masked URL
    statements: tuple[PlannedStatement, ...]
    steps: int
    non_transactional_steps: tuple[int, ...]  # steps run in autocommit (CREATE INDEX CONCURRENTLY, ...)
    tables_written: tuple[str, ...]  # by the script, its triggers and rules (dry-run counters) or as parsed
    backup_tables: tuple[str, ...]  # what the backup holds, and what is locked EXCLUSIVE while it is taken
    timeouts: Timeouts
    lock_retries: int
    verification: str  # "restore test" or "quick (sha256, pg_restore --list)"
    dry_run: str  # "SAFE ...", or "skipped (allowed by the policy)"


@dataclass
class StepResult:
    number: int
    first_line: int
    transactional: bool
    transaction: Transaction
    attempts: int = 0
    execution: ExecutionResult | None = None
    gates: list[GateResult] = field(default_factory=list)
    proof: CheckResult | None = None  # after a rollback: the written tables equal their pre-image
    lock_waits: list[LockWait] = field(default_factory=list)
    error: str | None = None
    resolved_by: str | None = None  # how the outcome of a lost connection was learnt
    txid: int | None = None  # the last attempt's transaction id (PostgreSQL)

    @property
    def blocking_gates(self) -> list[GateResult]:
        return [gate for gate in self.gates if gate.blocks]


@dataclass
class RunReport:
    run_id: str
    script: str
    target: str
    check: CheckReport
    plan: RunPlan | None = None
    dry_run: DryRunReport | None = None
    backup_id: str | None = None
    backup_verification: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    transaction: Transaction = Transaction.NOT_EXECUTED
    verdict: str = "NOT RUN"
    exit_code: int = 0
    reasons: list[str] = field(default_factory=list)  # why it did not commit, in order
    restore_command: str | None = None  # when some step committed and a later one did not
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    journaled: bool = False  # an intent record was written: the run is in the journal under run_id
