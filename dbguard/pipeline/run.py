"""`dbguard run`: check, dry-run, plan and confirmation, then each step under guard, all journaled.

1. check: blocking findings stop the run; so do too few approvals where the policy sets [run] require_approvals
   (dbguard/review/approvals.py), before the target is opened;
2. one run per target (advisory lock / lock file); crashed runs on the target are reported;
3. dry-run in a sandbox (`--skip-dry-run` only where the policy allows it; journaled);
4. the plan, and a confirmation;
5. the journal's intent record, before the first write;
6. each step in its transaction (dbguard/run/commit_or_rollback.py: backup in step 1, script, gate, COMMIT or
   ROLLBACK with its proof), stopping at the first that does not commit;
7. the journal's outcome record, and the report.

Exit codes: 0 committed; 1 blocked before anything ran (findings, too few approvals, dry-run, not confirmed);
2 a script from stdin where approvals are required; 3 a corrupt approvals file; 4 connection,
or another run on the target; 5 the backup failed (nothing ran); 6 rolled back and the rollback proved
(or a later step rolled back after earlier ones committed: the report gives the restore command); 7 the
outcome is unknown or the rollback could not be proved; 130/143 interrupted by SIGINT/SIGTERM during the
steps: the statement is cancelled on the server, rolled back and proved, the outcome journaled, and the report
returned with that exit code (interrupted before the steps, the KeyboardInterrupt or SystemExit propagates).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from dbguard.backup import postgres as pg_backup
from dbguard.backup import sqlite as sqlite_backup
from dbguard.backup.store import QUICK_METHOD, VERIFIED, BackupStore, Manifest, Verification, utc_now
from dbguard.backup.verify import VerificationUnfinished, check_file, restore_list, verify_backup
from dbguard.dialects import Dialect
from dbguard.errors import (
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    BackupFailure,
    DbguardError,
    ExecutionFailure,
    OutcomeUnknown,
    UsageError,
)
from dbguard.guard.execute import StatementRun
from dbguard.inputs import Source
from dbguard.journal import (
    DryRunSummary,
    FindingEntry,
    Intent,
    Journal,
    Outcome,
    StatementEntry,
    Subject,
    Transaction,
    current_command,
    new_run_id,
    unfinished_runs,
)
from dbguard.journal.entries import ApprovalEntry
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import BUILTIN_POLICIES, Policy
from dbguard.report.check.model import CheckReport
from dbguard.report.dryrun.model import DryRunReport
from dbguard.report.run.model import PlannedStatement, RunPlan, RunReport, StepResult
from dbguard.review.approvals import Approval, approvals_for_run
from dbguard.run.commit_or_rollback import StepContext, run_step
from dbguard.run.exclusive import postgres_run_lock, sqlite_run_lock
from dbguard.run.steps import Step, split_steps
from dbguard.sandbox.marker import scratch_directory
from dbguard.sandbox.pgtools import find_binary
from dbguard.sandbox.signals import SIGTERM_EXIT_CODE, interruption, signals_deferred
from dbguard.targets import open_target
from dbguard.targets.model import Target
from dbguard.targets.postgres import PostgresTarget
from dbguard.targets.sqlite import SqliteTarget
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]
EXIT_ROLLED_BACK, EXIT_UNKNOWN = ExecutionFailure.exit_code, OutcomeUnknown.exit_code


@dataclass(frozen=True)
class RunOptions:
    skip_dry_run: bool = False
    quick_verify: bool = False
    provider: str = "server"  # sandbox for the dry-run and the backup's restore test
    sandbox_url: DatabaseUrl | None = None
    pg_bin: Path | None = None


def run_script(
    source: Source,
    target_url: DatabaseUrl,
    policy: Policy,
    store: BackupStore,
    journal: Journal,
    confirm: Callable[[RunPlan], bool],
    options: RunOptions = RunOptions(),
    progress: Progress | None = None,
    on_statement: Callable[[StatementRun], None] | None = None,
) -> RunReport:
    """Run `source` on `target_url` under guard and return what happened; see the module docstring."""
    say = progress or (lambda _message: None)
    started = time.monotonic()
    _refuse_what_the_policy_forbids(options, policy)
    journal.ensure_writable()  # a run that could not journal its outcome must not start
    file_report = check_text(source.text, target_url.dialect, policy, source.name)
    report = RunReport(run_id=new_run_id(), script=source.name, target=str(target_url),
                       check=CheckReport(policy=policy, files=(file_report,)))  # fmt: skip
    report.timings["check"] = round(time.monotonic() - started, 3)
    if report.check.blocking:
        for finding in report.check.blocking[:10]:
            report.reasons.append(f"{finding.path}:{finding.line} {finding.rule_id}: {finding.message}")
        more = len(report.check.blocking) - 10
        return _stopped(report, f"... and {more} more blocking finding(s)" if more > 0 else None)
    approvals: tuple[Approval, ...] = ()
    if policy.run.require_approvals:  # before the target is touched: no dry-run, no backup without them
        count = approvals_for_run(source.name, source.sha256, policy.run.require_approvals,
                                  Subject.operator()["user"])  # fmt: skip
        if not count.met:
            return _stopped(report, f"not approved: {count.summary()} (see `dbguard approvals {source.name}`)")
        approvals = count.counted
        report.notes.append("approved by " + ", ".join(f"{a.reviewer} ({a.approved_at})" for a in approvals))
    steps = split_steps(file_report.script)
    refused = [step for step in steps if not step.transactional
               and not all(policy.allows_outside_transaction(s) for s in step.statements)]  # fmt: skip
    if refused:
        return _stopped(report, f"step {refused[0].number} (line {refused[0].first_line}) cannot run in a "
                                "transaction and the policy does not allow that (allow_online_steps, "
                                "allow_non_transactional)")  # fmt: skip
    # The run lock first: a second run on the target is refused at once, not after a dry-run of its own.
    with closing(open_target(target_url)) as target, _run_lock(target):
        crashed = unfinished_runs(journal, target_url)
        for run in crashed:
            report.notes.append(f"run {run.run_id} on this target, started {run.started_at}, has no outcome in the "
                                "journal: it crashed or was killed (see `dbguard journal show`)")  # fmt: skip
            say(report.notes[-1])
        if not options.skip_dry_run:
            say("dry-run in a sandbox")
            from dbguard.pipeline.dryrun import DryRunOptions, dry_run

            dry = DryRunOptions(provider=options.provider, sandbox_url=options.sandbox_url, pg_bin=options.pg_bin)
            report.dry_run = dry_run(source, target_url, policy, dry, say, on_statement)
            report.timings["dry_run"] = round(time.monotonic() - started - report.timings["check"], 3)
            if report.dry_run.verdict != "SAFE":
                return _stopped(report, "the dry-run is BLOCKED: " + "; ".join(report.dry_run.blocking_reasons))
        report.plan = _plan(target, steps, report.dry_run, policy, options)
        if not confirm(report.plan):
            return _stopped(report, "not confirmed: nothing was run")
        _execute(report, target, steps, policy, store, journal, options, source, say, on_statement, approvals)
    report.timings["total"] = round(time.monotonic() - started, 3)
    return report


def _refuse_what_the_policy_forbids(options: RunOptions, policy: Policy) -> None:
    if options.skip_dry_run and not policy.run.allow_skip_dry_run:
        raise UsageError(f"--skip-dry-run: the policy {policy.name} does not allow it (set [run] "
                         "allow_skip_dry_run = true)")  # fmt: skip
    if options.quick_verify and not policy.run.allow_quick_verify:
        raise UsageError(f"--quick-verify: the policy {policy.name} does not allow it (set [run] "
                         "allow_quick_verify = true)")  # fmt: skip


def _stopped(report: RunReport, reason: str | None) -> RunReport:
    report.verdict, report.exit_code = "BLOCKED", EXIT_FINDINGS
    if reason:
        report.reasons.append(reason)
    return report


@contextmanager
def _run_lock(target: Target) -> Iterator[None]:
    if isinstance(target, SqliteTarget):
        with sqlite_run_lock(target.url):
            yield
        return
    assert isinstance(target, PostgresTarget)
    with postgres_run_lock(target):
        yield


def _plan(target: Target, steps: list[Step], dry_run: DryRunReport | None, policy: Policy,
          options: RunOptions) -> RunPlan:  # fmt: skip
    statements = [s for step in steps for s in step.statements]
    expected = {run.index: run.rows for run in dry_run.execution.runs if run.executed} if dry_run else {}
    step_of = {s.index: step.number for step in steps for s in step.statements}
    parsed = target.resolve(sorted({name for s in statements for name in s.facts.tables_written}))
    written = set(parsed.values())
    if dry_run is not None:  # what the rehearsal saw written, triggers and rules included
        written |= dry_run.execution.tables_written | {t.table for t in dry_run.tables if t.changed}
        # TRUNCATE (a trigger's too) moves no row counter and changes nothing in an empty copy, but it takes
        # ACCESS EXCLUSIVE: such a table is backed up, or the coverage check would have to refuse the run
        written |= {held.table for run in dry_run.execution.runs for held in run.locks
                    if held.mode == "ACCESS EXCLUSIVE"}  # fmt: skip
    existing = set(target.all_tables())
    backup_tables = target.leaf_tables(sorted(t for t in written if t in existing))
    if isinstance(target, PostgresTarget):
        target.conn.rollback()  # the plan's reads must not hold a snapshot or locks into the run
    planned = tuple(
        PlannedStatement(s.index, s.span.line, step_of[s.index], s.kind, s.text.splitlines()[0][:100] if s.text else "",
                         s.facts.lock.label if s.facts.lock else None, expected.get(s.index))
        for s in statements
    )  # fmt: skip
    summary = "skipped (allowed by the policy)" if dry_run is None else f"{dry_run.verdict}: {dry_run.sandbox}"
    return RunPlan(
        target=str(target.url),
        statements=planned,
        steps=len(steps),
        non_transactional_steps=tuple(step.number for step in steps if not step.transactional),
        tables_written=tuple(sorted(written)),
        backup_tables=tuple(backup_tables),
        timeouts=policy.timeouts,
        lock_retries=policy.run.lock_retries,
        verification=QUICK_METHOD if options.quick_verify else "restore into a sandbox, counts and hashes",
        dry_run=summary,
    )


def _execute(report: RunReport, target: Target, steps: list[Step], policy: Policy, store: BackupStore,
             journal: Journal, options: RunOptions, source: Source, say: Progress,
             on_statement: Callable[[StatementRun], None] | None,
             approvals: tuple[Approval, ...] = ()) -> None:  # fmt: skip
    plan = report.plan
    assert plan is not None
    subject = Subject.for_run(target.url, source.name, source.sha256, policy.name, policy_sha256(policy))
    report.journaled = True
    journal.append(report.run_id, Intent(
        subject=subject, dialect=target.dialect.value,
        findings=tuple(FindingEntry.from_finding(f, report.check.threshold) for f in report.check.findings),
        dry_run=DryRunSummary.from_report(report.dry_run) if report.dry_run else None,
        skip_dry_run=options.skip_dry_run, command=current_command(),
        approvals=tuple(ApprovalEntry.from_approval(a) for a in approvals),
    ))  # fmt: skip
    ctx = StepContext(target=target, policy=policy, journal=journal, run_id=report.run_id, store=store,
                      backup_tables=list(plan.backup_tables),
                      expected_rows={s.index: s.expected_rows for s in plan.statements},
                      expected_writes=_expected_writes(report.dry_run, target),
                      take_backup=_backup_taker(store, plan.backup_tables, options, policy.timeouts.lock_timeout,
                                                say), say=say,
                      on_statement=on_statement)  # fmt: skip
    steps_started = time.monotonic()
    try:
        for step in steps:
            result = StepResult(step.number, step.first_line, step.transactional, Transaction.NOT_EXECUTED)
            report.steps.append(result)
            run_step(ctx, step, result)
            if result.transaction is not Transaction.COMMITTED or _lost(target):
                break  # a lost connection took the run lock with it: the steps after this one do not run
    except BaseException as error:
        signal_name = interruption(error)
        with signals_deferred():  # a second Ctrl-C must not tear the outcome record
            _conclude(report, ctx, _exit_code_of(error))
            why = f"interrupted by {signal_name}" if signal_name else str(error) or type(error).__name__
            if signal_name and not any(why in reason for reason in report.reasons):
                report.reasons.append(why)  # interrupted between steps
            _journal_outcome(report, journal, subject, why)
        if signal_name is None:
            raise
        return  # interrupted, and what ran is rolled back and proved (or the outcome is unknown): report it
    finally:
        report.timings["steps"] = round(time.monotonic() - steps_started, 3)
    _conclude(report, ctx, None)
    _journal_outcome(report, journal, subject, None)


def _expected_writes(dry_run: DryRunReport | None, target: Target) -> dict[int, int | None]:
    """Statement index -> rows the dry-run's statement wrote in every table (PostgreSQL's counters)."""
    if dry_run is None or not isinstance(target, PostgresTarget):
        return {}
    return {run.index: run.rows_written for run in dry_run.execution.runs if run.executed}


def _lost(target: Target) -> bool:
    return isinstance(target, PostgresTarget) and (target.conn.broken or target.conn.closed)


def _journal_outcome(report: RunReport, journal: Journal, subject: Subject, error: str | None) -> None:
    """The outcome record; when it cannot be written, the journal no longer tells the truth: exit 7."""
    try:
        journal.append(report.run_id, _outcome(report, subject, error))
    except DbguardError as failure:
        report.exit_code = EXIT_UNKNOWN
        report.reasons.append(f"the outcome ({report.verdict}) could not be journaled: {failure}")
        if error is None:
            raise OutcomeUnknown(f"the run ended {report.verdict} but its outcome could not be journaled: "
                                 f"{failure}") from None  # fmt: skip


def _exit_code_of(error: BaseException) -> int:
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, SystemExit) and error.code == SIGTERM_EXIT_CODE:
        return SIGTERM_EXIT_CODE
    if isinstance(error, DbguardError):
        return error.exit_code
    return EXIT_INTERNAL


def _conclude(report: RunReport, ctx: StepContext, exit_code: int | None) -> None:
    """The run's transaction, verdict and exit code from its steps (`exit_code`: an error ended it)."""
    report.backup_id = ctx.manifest.id if ctx.manifest else None
    report.backup_verification = ctx.manifest.verification.method if ctx.manifest else None
    states = [step.transaction for step in report.steps]
    committed = [s for s in report.steps if s.transaction is Transaction.COMMITTED]
    if Transaction.UNKNOWN in states:
        report.transaction, code = Transaction.UNKNOWN, EXIT_UNKNOWN
    elif committed and len(committed) == (report.plan.steps if report.plan else 0):
        report.transaction, code = Transaction.COMMITTED, 0
    elif committed:
        report.transaction, code = Transaction.PARTLY_COMMITTED, EXIT_ROLLED_BACK
    elif Transaction.ROLLED_BACK in states:
        report.transaction, code = Transaction.ROLLED_BACK, EXIT_ROLLED_BACK
    else:
        report.transaction, code = Transaction.NOT_EXECUTED, EXIT_ROLLED_BACK
    if exit_code is not None and report.transaction is not Transaction.UNKNOWN:
        code = exit_code
    report.exit_code = code
    report.verdict = {Transaction.COMMITTED: "COMMITTED", Transaction.ROLLED_BACK: "ROLLED BACK",
                      Transaction.PARTLY_COMMITTED: "PARTLY COMMITTED", Transaction.UNKNOWN: "OUTCOME UNKNOWN",
                      Transaction.NOT_EXECUTED: "NOT EXECUTED"}[report.transaction]  # fmt: skip
    for step in report.steps:
        if step.error:
            report.reasons.append(f"step {step.number}: {step.error}")
    if committed and report.transaction is not Transaction.COMMITTED and report.backup_id and report.plan:
        tables = ",".join(report.plan.backup_tables)
        # the URL without its password, which libpq then takes from PGPASSWORD or ~/.pgpass
        report.restore_command = (f"dbguard restore {report.backup_id} --db {ctx.target.url.without_password()} "
                                  f"--tables {tables}")  # fmt: skip


def _outcome(report: RunReport, subject: Subject, error: str | None) -> Outcome:
    runs = [run for step in report.steps if step.execution for run in step.execution.runs]
    return Outcome(
        subject=subject, transaction=report.transaction, verdict=report.verdict, exit_code=report.exit_code,
        statements=tuple(StatementEntry.from_run(run) for run in runs), backup_id=report.backup_id,
        attempts=sum(step.attempts for step in report.steps),
        retries=sum(max(step.attempts - 1, 0) for step in report.steps),
        lock_wait_seconds=round(sum(w.seconds for step in report.steps for w in step.lock_waits), 3),
        resolved_by="; ".join(step.resolved_by for step in report.steps if step.resolved_by) or None,
        txid=report.steps[-1].txid if report.steps else None,
        timings=dict(report.timings), error=error or ("; ".join(report.reasons) or None),
    )  # fmt: skip


def _backup_taker(store: BackupStore, tables: tuple[str, ...], options: RunOptions, lock_timeout: str,
                  say: Progress) -> Callable[[Target], Manifest]:  # fmt: skip
    """The backup inside the run's open transaction, verified; BackupFailure (exit 5) unless VERIFIED."""

    def take(target: Target) -> Manifest:
        say("taking the backup inside the run's transaction")
        if isinstance(target, SqliteTarget):
            manifest = sqlite_backup.snapshot_backup(target, store, keep_lock=True, progress=say)
        else:
            assert isinstance(target, PostgresTarget)
            chosen = list(tables) or None  # no table written: the whole database
            manifest = pg_backup.snapshot_backup(target, store, chosen, pg_bin=options.pg_bin, progress=say,
                                                 lock_wait_timeout=lock_timeout)  # fmt: skip
        say(f"verifying backup {manifest.id}")
        try:
            if options.quick_verify and manifest.dialect == Dialect.POSTGRES.value:
                manifest = _quick_verify(store, manifest, options.pg_bin)
            else:
                manifest = verify_backup(store, manifest, provider=_provider(manifest, options),
                                         server_url=options.sandbox_url or target.url, pg_bin=options.pg_bin,
                                         progress=say)  # fmt: skip
        except VerificationUnfinished as error:
            raise BackupFailure(f"{error}; nothing was executed") from None
        if manifest.verification.status != VERIFIED:
            raise BackupFailure(f"backup {manifest.id} failed verification: {manifest.verification.reason}; nothing "
                                "was executed")  # fmt: skip
        return manifest

    return take


def _provider(manifest: Manifest, options: RunOptions) -> str:
    return "sqlite" if manifest.dialect == Dialect.SQLITE.value else options.provider


def _quick_verify(store: BackupStore, manifest: Manifest, pg_bin: Path | None) -> Manifest:
    """sha256 and size, and `pg_restore --list` parses the whole archive: no restore test."""

    dump = check_file(store, manifest)
    pg_restore = find_binary("pg_restore", int(manifest.server_version.split(".")[0]), pg_bin)
    with scratch_directory() as directory:
        restore_list(pg_restore, dump, manifest.scope, Path(directory))
    verified = replace(manifest, verification=Verification(VERIFIED, utc_now(), QUICK_METHOD))
    store.save(verified)
    return verified


def policy_sha256(policy: Policy) -> str:
    """sha256 of the policy file's text (a built-in policy's too)."""
    name = policy.source.removeprefix("built-in ")
    if name in BUILTIN_POLICIES:
        text = resources.files("dbguard.policies").joinpath(f"{name}.toml").read_text("utf-8")
    else:
        text = Path(policy.source).read_text("utf-8")
    return hashlib.sha256(text.encode()).hexdigest()

