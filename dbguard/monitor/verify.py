"""`dbguard verify`: the integrity checks of a live database, read-only, for monitoring and alerting.

The target is opened read-only (PostgreSQL: a session with `default_transaction_read_only`, proven
before anything runs; SQLite: mode=ro), in autocommit, so that no check holds a snapshot for longer than
its own statement. The checks run one by one within the time budget (dbguard.monitor.runner), then the
backup store is read for the newest verified backup of this database (dbguard.monitor.backups).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from dbguard.backup.store import BackupStore
from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure, UsageError
from dbguard.guard.invariants import SAMPLE_LIMIT, evaluate
from dbguard.monitor import postgres, sqlite
from dbguard.monitor.backups import backup_freshness
from dbguard.monitor.model import CheckOutcome, Status, VerifyReport
from dbguard.monitor.runner import Budget, PlannedCheck, run_planned
from dbguard.policy.policy import Invariant, Policy
from dbguard.targets import open_target
from dbguard.targets.model import UNCHECKED, Target
from dbguard.targets.postgres import PostgresTarget
from dbguard.targets.sqlite import SqliteTarget
from dbguard.targets.url import DatabaseUrl

MAX_TIME_BUDGET_SECONDS = 2_147_483  # statement_timeout takes whole milliseconds up to 2^31 - 1


@dataclass(frozen=True)
class VerifyOptions:
    sample_percent: float | None = None  # (0, 100): row-by-row checks read this share of each table's pages
    time_budget_seconds: float | None = None  # the whole verify; checks not finished in it are INCOMPLETE
    store: BackupStore | None = None  # where to look for the newest verified backup; None: not looked at
    max_backup_age_seconds: float | None = None  # older (or no verified backup): BACKUP STALE


def verify_database(url: DatabaseUrl, policy: Policy, options: VerifyOptions) -> VerifyReport:
    """Run every check on the database at `url` and read the backup store: the report, whose `exit_code`
    says what to alert on. Raises ConnectionFailure (exit 4) when the database cannot be reached or the
    session is not read-only, UsageError (exit 2) for options out of range."""
    if options.sample_percent is not None and not 0 < options.sample_percent < 100:
        raise UsageError(f"--sample {options.sample_percent:g} must be above 0 and below 100 (percent of pages)")
    budget_seconds = options.time_budget_seconds
    if budget_seconds is not None and not 0 < budget_seconds <= MAX_TIME_BUDGET_SECONDS:  # NaN fails it too
        raise UsageError(f"--time-budget {budget_seconds:.10g} must be a positive number of seconds, at most "
                         f"{MAX_TIME_BUDGET_SECONDS} (24 days: PostgreSQL's largest statement_timeout)")  # fmt: skip
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    budget = Budget(options.time_budget_seconds)
    target = open_target(url, autocommit=True, read_only=True)
    try:
        if not target.read_only:
            raise ConnectionFailure("the session to the target is not read-only: verify runs nothing on it")
        outcomes = _run_checks(target, policy, options, budget)
        version = target.server_version
    finally:
        target.close()
    freshness = None
    if options.store is not None:
        freshness = backup_freshness(options.store, url, options.max_backup_age_seconds)
    return VerifyReport(str(url), url.database, url.dialect.value, version, started_at, time.time(),
                        round(time.monotonic() - budget.started, 3), options.sample_percent,
                        options.time_budget_seconds, policy.name, tuple(outcomes), freshness)  # fmt: skip


def _run_checks(target: Target, policy: Policy, options: VerifyOptions, budget: Budget) -> list[CheckOutcome]:
    invariants = _invariant_checks(target, policy.invariants)
    if isinstance(target, PostgresTarget):
        planned = [*postgres.planned_checks(target, options.sample_percent), *invariants,
                   *postgres.amcheck_checks(target)]  # fmt: skip
        arm = postgres.arm(target.conn, policy.timeouts.lock_timeout)
        return run_planned(planned, budget, arm, postgres.why_stopped(target.conn))
    assert isinstance(target, SqliteTarget), target.dialect
    planned = [*sqlite.planned_checks(target, options.sample_percent), *invariants]
    return run_planned(planned, budget, sqlite.arm(target.conn), sqlite.why_stopped)


def _invariant_checks(target: Target, invariants: Sequence[Invariant]) -> list[PlannedCheck]:
    """The policy's invariants, each its own check; a row_count invariant compares a script's before and
    after, which a live database does not have: SKIPPED, said so."""
    planned = []
    for invariant in invariants:
        table = invariant.table
        if invariant.kind == "row_count":
            skipped = CheckOutcome("invariant", invariant.name, table, Status.SKIPPED,
                                   "a row_count invariant bounds what a script changes; there is no script here")
            planned.append(PlannedCheck("invariant", invariant.name, table, partial(_known, skipped)))
            continue
        planned.append(PlannedCheck("invariant", invariant.name, table, partial(_invariant, target, invariant)))
    return planned


def _known(outcome: CheckOutcome) -> CheckOutcome:
    return outcome


def _invariant(target: Target, invariant: Invariant) -> CheckOutcome:
    (result,) = evaluate([invariant], target, {}, {})
    if result.passed:
        status = Status.PASS
    elif result.detail.startswith(UNCHECKED):
        status = Status.INCOMPLETE  # its query did not run to its end (the time budget, a refused query)
    else:
        status = Status.FAIL
    # evaluate() shows at most SAMPLE_LIMIT rows, and says "more than" in its detail: then the count is not known
    violations = 0 if result.passed else (len(result.sample) if 0 < len(result.sample) < SAMPLE_LIMIT else None)
    detail = result.detail
    if target.dialect is Dialect.POSTGRES and status is Status.INCOMPLETE and "statement timeout" in detail:
        detail = "stopped: the time budget ran out during this check"
    return CheckOutcome("invariant", invariant.name, invariant.table, status, detail, violations,
                        columns=result.columns, sample=result.sample)  # fmt: skip
