"""One step of `run` in one transaction: this is where dbguard decides COMMIT or ROLLBACK.

PostgreSQL, per attempt (`run_step`):
1. REPEATABLE READ; `lock_timeout` from the policy; in step 1 the backup's tables are locked in EXCLUSIVE
   mode (readers go on, writers wait) BEFORE the first query fixes the snapshot;
2. step 1: the zero-gap backup in this very transaction (`pg_export_snapshot`, `pg_dump --snapshot`,
   counts and hashes), verified; later steps: the written tables' counts and hashes (their pre-image);
3. SAVEPOINT, then the script's statements, with `statement_timeout`;
4. the integrity gate (dbguard/guard/gate.py) with drift and coverage;
5. COMMIT when every check holds. Otherwise ROLLBACK TO SAVEPOINT, hash the written tables again in the
   same snapshot and under the same locks (they must equal the pre-image), ROLLBACK, and ask the server
   (`txid_status`) that the transaction aborted: that is the proof.

A lock not granted within `lock_timeout` (or a serialization failure, or a deadlock) rolls the attempt
back, nothing committed, and the step is tried again with backoff and jitter. A connection lost at any
point is resolved on a new connection with `txid_status`, never guessed. SQLite (`run_sqlite_step`): the
same with BEGIN IMMEDIATE and the backup API.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import closing
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from dbguard.backup.postgres import DumpLockTimeout
from dbguard.backup.store import BackupStore, Manifest, TableImage
from dbguard.errors import DbguardError
from dbguard.guard.execute import ExecutionResult, StatementRun, execute_script
from dbguard.guard.gate import (
    coverage_check,
    drift_check,
    integrity,
    integrity_gate,
    invariant_stats,
    settle_gate_session,
)
from dbguard.journal import Attempt, AttemptResult, Journal, StatementEntry, Transaction
from dbguard.policy.policy import Policy
from dbguard.report.dryrun.model import GateResult
from dbguard.report.run.model import StepResult
from dbguard.run.blockers import BlockerWatch, lock_holders
from dbguard.run.steps import Step
from dbguard.sandbox.signals import interruption, signals_deferred
from dbguard.targets import postgres
from dbguard.targets.model import CheckResult, TableStats, Target
from dbguard.targets.postgres import PostgresTarget, error_text, table_identifier
from dbguard.targets.postgres_objects import USER_SCHEMA

Progress = Callable[[str], None]
SAVEPOINT = "dbguard_before_script"
# lock_not_available, serialization_failure, deadlock_detected: nothing committed, worth another attempt
RETRYABLE_SQLSTATES = {"55P03", "40001", "40P01"}
BACKOFF_SECONDS = 0.5
# While a statement runs, the server only learns that its client died when it next writes to it: a
# SIGKILLed run would hold its EXCLUSIVE locks and open transaction until the statement ends (up to
# statement_timeout). This has the server check the socket (PostgreSQL 14+).
CLIENT_CHECK_INTERVAL = "1s"
# Each user table's storage. TRUNCATE, a rewrite (ALTER ... TYPE, CLUSTER) and DROP change a table's rows
# without moving the row counters that coverage reads: they give it a new relfilenode, or remove it.
_STORAGE_SQL = sql.SQL("""
SELECT c.oid, n.nspname || '.' || c.relname, c.relfilenode
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {user_schema}""").format(user_schema=USER_SCHEMA)


PreImage = Mapping[str, TableImage | TableStats]  # table -> rows and content hash before the step


class _Retry(Exception):
    """The attempt lost a lock race; it was rolled back and may be tried again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepContext:
    """What every step of one run shares."""

    target: Target
    policy: Policy
    journal: Journal
    run_id: str
    store: BackupStore
    backup_tables: list[str]  # leaf tables: what the backup holds and step 1 locks
    expected_rows: Mapping[int, int | None]  # statement index -> rows in the dry-run
    take_backup: Callable[[Target], Manifest]  # inside the open transaction; verified; BackupFailure if not
    say: Progress
    on_statement: Callable[[StatementRun], None] | None = None
    manifest: Manifest | None = None  # set by step 1
    expected_writes: Mapping[int, int | None] = field(default_factory=dict)  # index -> rows written, all tables


def run_step(ctx: StepContext, step: Step, result: StepResult) -> None:
    """Run `step` until it commits, rolls back on a failed check, or runs out of lock retries, recording
    what happened in `result` as it goes (an interrupt leaves there what was done and proved)."""
    retries = ctx.policy.run.lock_retries
    for attempt in range(1, retries + 2):
        result.attempts = attempt
        started = time.monotonic()
        try:
            outcome = _attempt(ctx, step, result)
        except _Retry as busy:
            _journal_attempt(ctx, step, attempt, AttemptResult.LOCK_TIMEOUT, result, started, busy.reason)
            if attempt > retries:
                result.error = f"{busy.reason}; gave up after {attempt} attempts (run.lock_retries = {retries})"
                if result.proof is None:  # the locks were refused before anything ran
                    result.transaction = Transaction.ROLLED_BACK
                    result.proof = CheckResult("rollback proved", True, "nothing of the step ran: its locks were "
                                               "not granted")  # fmt: skip
                return
            pause = BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 + random.random() / 2)
            ctx.say(f"step {step.number}: {busy.reason}; attempt {attempt + 1} of {retries + 1} in {pause:.1f} s")
            time.sleep(pause)
            continue
        except BaseException as error:  # interrupted, or the backup failed: the attempt is journaled too
            ended = AttemptResult.CONNECTION_LOST if result.transaction is Transaction.UNKNOWN else (
                AttemptResult.ROLLED_BACK)  # fmt: skip
            with contextlib.suppress(DbguardError):  # the outcome record reports a journal that fails
                _journal_attempt(ctx, step, attempt, ended, result, started, result.error or str(error) or None)
            raise
        _journal_attempt(ctx, step, attempt, outcome, result, started, result.error)
        return


def _attempt(ctx: StepContext, step: Step, result: StepResult) -> AttemptResult:
    if ctx.target.dialect.value == "sqlite":
        return _sqlite_attempt(ctx, step, result) if step.transactional else _sqlite_autocommit(ctx, step, result)
    if not step.transactional:
        return _autocommit_attempt(ctx, step, result)
    return _postgres_attempt(ctx, step, result)


def _postgres_attempt(ctx: StepContext, step: Step, result: StepResult) -> AttemptResult:
    target = ctx.target
    assert isinstance(target, PostgresTarget)
    conn = target.conn
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    result.proof, result.gates, result.execution = None, [], None
    txid: int | None = None
    pre_image: dict[str, TableImage | TableStats] | None = None
    savepoint = False
    started_runs: list[StatementRun] = []  # the script's statements as they start: kept when it is interrupted
    try:
        # SET takes no snapshot (a SELECT would): the EXCLUSIVE lock below must come before the snapshot, or a
        # write committed in between fails the script with a serialization error.
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(ctx.policy.timeouts.lock_timeout)))
        if target.server_major >= 14:  # a killed dbguard's transaction ends in a second, not after its statement
            conn.execute(f"SET LOCAL client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}'")
        if step.number == 1:  # every attempt takes its own backup: a retried one must not use a stale one
            ctx.manifest = None
            if ctx.backup_tables:
                ctx.say(f"locking {len(ctx.backup_tables)} table(s) in EXCLUSIVE mode: readers go on, writers wait")
                _lock(conn, ctx.backup_tables)
        txid = result.txid = int(conn.execute("SELECT txid_current()").fetchone()[0])  # type: ignore[index]
        if step.number == 1:
            manifest = ctx.manifest = ctx.take_backup(target)
            pre_image = dict(manifest.tables)
        else:
            pre_image = dict(target.table_stats(ctx.backup_tables))
        checks_before = integrity(target, ctx.backup_tables)
        invariants_before = invariant_stats(target, ctx.policy.invariants)
        storage_before = _storage(conn)
        conn.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(SAVEPOINT)))
        savepoint = True
        ctx.say(f"step {step.number}: running {len(step.statements)} statement(s)")
        current = {"statement": 0}

        def seen(run: StatementRun) -> None:
            current["statement"] = run.index
            started_runs.append(run)
            if ctx.on_statement:
                ctx.on_statement(run)

        with BlockerWatch(target.url, conn.info.backend_pid, ctx.say, lambda: current["statement"]) as watch:
            execution = execute_script(conn, step.script, ctx.policy.timeouts, seen, in_transaction=True)
        result.lock_waits += watch.waits
        result.execution = execution
        failed = execution.failed
        if failed is None:
            storage_after = _storage(conn)
            rewritten = _rewritten(storage_before, storage_after)
            # Tables this transaction created hold nothing a backup could bring back; temporary ones die with it.
            created = {name for oid, (name, _) in storage_after.items() if oid not in storage_before}
            result.gates = _gate(ctx, target, execution, checks_before, invariants_before, pre_image, rewritten,
                                 created)  # fmt: skip
        if failed is None and not result.blocking_gates:
            return _commit(ctx, target, txid, pre_image, result)
        result.error = _failure(failed, result.blocking_gates)
        outcome = _rollback_and_prove(ctx, target, txid, pre_image, result)
        if failed is not None and failed.sqlstate in RETRYABLE_SQLSTATES:
            raise _Retry(f"statement {failed.index} (line {failed.line}): {failed.error}")
        return outcome
    except psycopg.errors.LockNotAvailable as error:  # the backup's LOCK TABLE
        conn.rollback()
        holders = lock_holders(conn, ctx.backup_tables)
        conn.rollback()
        raise _Retry(f"the tables to back up are locked by {holders or 'another session'} ({error_text(error)})"
                     ) from None  # fmt: skip
    except DumpLockTimeout as error:  # pg_dump waited for an unrelated session's lock: nothing ran yet
        conn.rollback()
        raise _Retry(str(error)) from None
    except _Retry:
        raise
    except BaseException as error:  # a lost connection, Ctrl-C, SIGTERM, a failed backup: roll back and prove
        signal_name = interruption(error)
        why = f"interrupted by {signal_name}" if signal_name else (
            error_text(error) if isinstance(error, psycopg.Error) else str(error) or type(error).__name__)  # fmt: skip
        if conn.broken or conn.closed:
            result.error = f"the connection was lost: {why}"
        elif signal_name:
            result.error = why
        if result.execution is None and started_runs:  # what the journal and the report show of the script
            if not started_runs[-1].executed:
                started_runs[-1].error = result.error or why
            result.execution = ExecutionResult(started_runs, sum(run.seconds for run in started_runs))
        if result.transaction is Transaction.COMMITTED:  # the signal was held back until COMMIT was done
            raise
        # Until proved otherwise: a proof cut short must not leave the step claiming it never ran.
        result.transaction = Transaction.UNKNOWN if savepoint else Transaction.NOT_EXECUTED
        with signals_deferred():  # a second Ctrl-C must not cut the rollback's proof short
            if conn.broken or conn.closed:
                outcome = _resolve_lost(ctx, target, txid, pre_image, result)
                if isinstance(error, psycopg.OperationalError):
                    return outcome
            elif conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                if savepoint and pre_image is not None:
                    _rollback_and_prove(ctx, target, txid, pre_image, result)
                else:
                    conn.rollback()
        raise


def _failure(failed: StatementRun | None, blocking: Sequence[GateResult]) -> str:
    if failed is not None:
        return f"statement {failed.index} (line {failed.error_line or failed.line}) failed: {failed.error}"
    return "the integrity gate failed: " + ", ".join(gate.result.name for gate in blocking)


def _lock(conn: psycopg.Connection[tuple[object, ...]], tables: Sequence[str]) -> None:
    names = sql.SQL(", ").join(table_identifier(table) for table in tables)
    conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))


def _storage(conn: psycopg.Connection[tuple[object, ...]]) -> dict[object, tuple[str, object]]:
    """Each user table's oid -> (name, relfilenode), as this transaction sees them."""
    return {oid: (str(name), node) for oid, name, node in conn.execute(_STORAGE_SQL).fetchall()}


def _rewritten(before: Mapping[object, tuple[str, object]], after: Mapping[object, tuple[str, object]]) -> set[str]:
    """Tables that existed before the script and were truncated, rewritten or dropped by it (names as before)."""
    return {name for oid, (name, node) in before.items() if oid not in after or after[oid][1] != node}


def _gate(ctx: StepContext, target: Target, execution: ExecutionResult, checks_before: list[CheckResult],
          invariants_before: dict[str, TableStats], pre_image: PreImage,
          rewritten: AbstractSet[str] = frozenset(),
          created: AbstractSet[str] = frozenset()) -> list[GateResult]:  # fmt: skip
    """The same gate as the dry-run's, on the written tables, plus drift and coverage (`rewritten`: tables
    the script truncated, rewrote or dropped, which no row counter shows; `created`: tables it created, which
    need no backup)."""
    settle_gate_session(target)
    written = sorted(set(ctx.backup_tables) | execution.tables_written)
    before = {table: TableStats(table, image.rows, image.hash) for table, image in pre_image.items()}
    # After the script only the invariants' tables are counted: hashing every written table again would
    # scan each one whole, for numbers no check reads.
    gates = integrity_gate(target, written, checks_before, ctx.policy.invariants, {**invariants_before, **before},
                           invariant_stats(target, ctx.policy.invariants))  # fmt: skip
    settings = ctx.policy.run
    actual = {run.index: run.rows for run in execution.runs if run.executed}
    rows = drift_check(ctx.expected_rows, actual, settings.max_row_drift_percent, settings.max_row_drift_rows)
    # A DO block or a function call has no row count (or that of its SELECT): the server's counters have its rows.
    writes_now = {run.index: run.rows_written for run in execution.runs if run.executed}
    writes = drift_check(ctx.expected_writes, writes_now, settings.max_row_drift_percent, settings.max_row_drift_rows,
                         "rows written (server counters)")  # fmt: skip
    gates.append(GateResult(writes if rows.passed else rows))
    backed_up = set(ctx.manifest.tables) if ctx.manifest else set()
    whole = ctx.manifest is not None and ctx.manifest.scope == "full"
    needed = {t for t in execution.tables_written - created if not t.startswith("pg_temp_")} | rewritten
    gates.append(GateResult(coverage_check(needed, backed_up, whole)))
    return gates


def _commit(ctx: StepContext, target: PostgresTarget, txid: int, pre_image: PreImage,
            result: StepResult) -> AttemptResult:  # fmt: skip
    ctx.say(f"step {result.number}: every check holds: COMMIT")
    with signals_deferred():  # Ctrl-C or SIGTERM during COMMIT takes effect once its outcome is known
        try:
            target.conn.commit()
        except psycopg.Error as error:
            result.error = f"COMMIT failed: {error_text(error)}"
            if target.conn.broken or target.conn.closed:
                return _resolve_lost(ctx, target, txid, pre_image, result)
            return _resolve_lost(ctx, target, txid, pre_image, result, same_connection=True)
        result.transaction = Transaction.COMMITTED
    return AttemptResult.COMMITTED


def _rollback_and_prove(ctx: StepContext, target: PostgresTarget, txid: int | None,
                        pre_image: PreImage, result: StepResult) -> AttemptResult:  # fmt: skip
    """Undo the script inside the transaction, prove the tables equal their pre-image there (same snapshot,
    same locks), end the transaction, and have the server confirm that it aborted."""
    conn = target.conn
    ctx.say(f"step {result.number}: ROLLBACK, then proving it")
    conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(SAVEPOINT)))
    conn.execute("SET LOCAL statement_timeout = 0")
    now = target.table_stats(sorted(pre_image))
    conn.rollback()
    status = _txid_status(conn, txid)
    conn.rollback()  # txid_status's own transaction: a retry must start from an idle connection
    result.proof = _proof(pre_image, now, status)
    result.transaction = Transaction.ROLLED_BACK if result.proof.passed else Transaction.UNKNOWN
    return AttemptResult.ROLLED_BACK


def _resolve_lost(ctx: StepContext, target: PostgresTarget, txid: int | None,
                  pre_image: PreImage | None, result: StepResult,
                  same_connection: bool = False) -> AttemptResult:  # fmt: skip
    """The connection went away (or COMMIT failed): ask the server, on a new connection, what became of
    the transaction. Never guess."""
    ctx.say("asking the server what became of the transaction (txid_status)")
    try:
        if same_connection:
            status = _txid_status(target.conn, txid)
            now = target.table_stats(sorted(pre_image)) if pre_image else {}
            target.conn.rollback()
        else:
            with closing(postgres.connect(target.url, autocommit=True, application_name="dbguard outcome")) as fresh:
                status = _txid_status(fresh.conn, txid)
                now = fresh.table_stats(sorted(pre_image)) if pre_image else {}
    except Exception as error:
        result.transaction = Transaction.UNKNOWN
        result.resolved_by = f"the server could not be asked: {error}"
        return AttemptResult.CONNECTION_LOST
    result.resolved_by = f"txid_status({txid}) = {status!r}, asked on a new connection" if txid else (
        "no transaction id was assigned: nothing was written")  # fmt: skip
    if status == "committed":
        result.transaction = Transaction.COMMITTED
        return AttemptResult.CONNECTION_LOST
    if status in ("aborted", None) and pre_image is not None:
        result.proof = _proof(pre_image, now, status or "aborted")
        result.transaction = Transaction.ROLLED_BACK if result.proof.passed else Transaction.UNKNOWN
    elif status in ("aborted", None):
        result.transaction = Transaction.ROLLED_BACK
    else:  # "in progress": the server has not decided yet
        result.transaction = Transaction.UNKNOWN
    return AttemptResult.CONNECTION_LOST


def _txid_status(conn: psycopg.Connection[tuple[object, ...]], txid: int | None) -> str | None:
    if txid is None:
        return None
    row = conn.execute("SELECT txid_status(%s)", [txid]).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def _proof(pre_image: PreImage, now: Mapping[str, TableStats],
           status: str | None) -> CheckResult:  # fmt: skip
    differ = [t for t, image in sorted(pre_image.items())
              if t not in now or (now[t].rows, now[t].hash) != (image.rows, image.hash)]  # fmt: skip
    if status not in ("aborted", None):
        return CheckResult("rollback proved", False, f"the server reports the transaction as {status!r}")
    if differ:
        return CheckResult("rollback proved", False, f"{len(differ)} table(s) differ from their pre-image: "
                           f"{', '.join(differ)}", tuple((t,) for t in differ))  # fmt: skip
    return CheckResult("rollback proved", True, f"{len(pre_image)} table(s) equal their pre-image (counts and "
                       "content hashes); the server reports the transaction aborted")  # fmt: skip


def _autocommit_attempt(ctx: StepContext, step: Step, result: StepResult) -> AttemptResult:
    """A statement that cannot run in a transaction (allowed by the policy): it commits as it runs. An
    INVALID index that a failed CONCURRENTLY build leaves behind is dropped."""
    target = ctx.target
    assert isinstance(target, PostgresTarget)
    conn = target.conn
    if ctx.manifest is None:  # the run's first step: its backup comes first, in a transaction of its own
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SELECT 1")  # fixes the snapshot the backup is taken in
        ctx.manifest = ctx.take_backup(target)
        conn.rollback()
    invalid_before = _invalid_indexes(conn)
    conn.commit()
    try:
        execution = execute_script(conn, step.script, ctx.policy.timeouts, ctx.on_statement)
    except BaseException as error:  # Ctrl-C or SIGTERM (the server cancelled the statement), a lost connection
        signal_name = interruption(error)
        result.error = f"interrupted by {signal_name}" if signal_name else f"the statement did not finish: {error}"
        result.transaction = Transaction.UNKNOWN  # what it built may be left behind
        with signals_deferred():
            if not (conn.broken or conn.closed):
                result.error += _drop_new_invalid_indexes(conn, invalid_before)
                _undone(result)
        raise
    conn.commit()
    result.execution = execution
    failed = execution.failed
    if failed is None:
        result.transaction = Transaction.COMMITTED
        return AttemptResult.COMMITTED
    dropped = _drop_new_invalid_indexes(conn, invalid_before)  # before a retry too: it would find the name taken
    if failed.sqlstate in RETRYABLE_SQLSTATES:
        raise _Retry(f"statement {failed.index} (line {failed.line}): {failed.error}{dropped}")
    result.error = f"statement {failed.index} (line {failed.line}) failed: {failed.error}{dropped}"
    _undone(result)
    return AttemptResult.ROLLED_BACK


def _sqlite_autocommit(ctx: StepContext, step: Step, result: StepResult) -> AttemptResult:
    """VACUUM and the like (allowed by the policy) outside a transaction; the backup first when it is the
    run's first step (taken under BEGIN IMMEDIATE, then released)."""
    target = ctx.target
    conn = target.conn
    if ctx.manifest is None:
        ctx.manifest = ctx.take_backup(target)
        conn.execute("COMMIT")
    execution = execute_script(conn, step.script, ctx.policy.timeouts, ctx.on_statement)
    if conn.in_transaction:  # the executor opens the next transaction after a separate step
        conn.execute("COMMIT")
    result.execution = execution
    if execution.failed is None:
        result.transaction = Transaction.COMMITTED
        return AttemptResult.COMMITTED
    failed = execution.failed
    result.error = f"statement {failed.index} (line {failed.line}) failed: {failed.error}"
    _undone(result)
    return AttemptResult.ROLLED_BACK


def _drop_new_invalid_indexes(conn: psycopg.Connection[tuple[object, ...]], before: set[str]) -> str:
    """Drop the INVALID indexes a failed or cancelled CONCURRENTLY build left (those not in `before`); what
    was dropped, as "; the INVALID index ... it left was dropped" (or "")."""
    said = ""
    left = _invalid_indexes(conn) - before
    conn.rollback()  # the query's transaction: autocommit can only change outside one
    for index in sorted(left):
        conn.autocommit = True
        try:
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(table_identifier(index)))
            said += f"; the INVALID index {index} it left was dropped"
        finally:
            conn.autocommit = False
    return said


def _undone(result: StepResult) -> None:
    result.transaction = Transaction.ROLLED_BACK
    result.proof = CheckResult("rollback proved", True, "a statement outside a transaction that failed changed no "
                               "rows; what it built was dropped")  # fmt: skip


def _invalid_indexes(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute("SELECT n.nspname || '.' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid").fetchall()  # fmt: skip
    return {str(row[0]) for row in rows}


def _sqlite_attempt(ctx: StepContext, step: Step, result: StepResult) -> AttemptResult:
    """BEGIN IMMEDIATE (held from the backup on), SAVEPOINT, the script, the gate, COMMIT or ROLLBACK
    with the proof."""
    target = ctx.target
    conn = target.conn
    if step.number == 1:
        manifest = ctx.manifest = ctx.take_backup(target)  # leaves BEGIN IMMEDIATE open
        pre_image: dict[str, TableImage | TableStats] = dict(manifest.tables)
    else:
        conn.execute("BEGIN IMMEDIATE")
        pre_image = dict(target.table_stats(ctx.backup_tables))
    try:
        checks_before = integrity(target, ctx.backup_tables)
        invariants_before = invariant_stats(target, ctx.policy.invariants)
        conn.execute(f"SAVEPOINT {SAVEPOINT}")
        execution = execute_script(conn, step.script, ctx.policy.timeouts, ctx.on_statement, in_transaction=True)
        result.execution = execution
        failed = execution.failed
        if failed is None:
            result.gates = _gate(ctx, target, execution, checks_before, invariants_before, pre_image)
        if failed is None and not result.blocking_gates:
            conn.execute("COMMIT")
            result.transaction = Transaction.COMMITTED
            return AttemptResult.COMMITTED
        result.error = _failure(failed, result.blocking_gates)
    except BaseException as error:
        signal_name = interruption(error)
        if signal_name:
            result.error = f"interrupted by {signal_name}"
        _sqlite_rollback(target, pre_image, result)
        raise
    _sqlite_rollback(target, pre_image, result)
    return AttemptResult.ROLLED_BACK


def _sqlite_rollback(target: Target, pre_image: PreImage, result: StepResult) -> None:
    conn = target.conn
    if not conn.in_transaction:
        result.transaction = Transaction.UNKNOWN
        return
    try:
        conn.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
    except Exception:  # the savepoint was never set: nothing of the script ran
        conn.execute("ROLLBACK")
        result.transaction = Transaction.NOT_EXECUTED
        return
    now = target.table_stats(sorted(pre_image))
    conn.execute("ROLLBACK")
    result.proof = _proof(pre_image, now, "aborted")
    result.transaction = Transaction.ROLLED_BACK if result.proof.passed else Transaction.UNKNOWN


def _journal_attempt(ctx: StepContext, step: Step, attempt: int, outcome: AttemptResult, result: StepResult,
                     started: float, error: str | None) -> None:  # fmt: skip
    runs = result.execution.runs if result.execution else []
    ctx.journal.append(ctx.run_id, Attempt(
        step=step.number, attempt=attempt, result=outcome,
        statements=tuple(StatementEntry.from_run(run) for run in runs),
        lock_waits=tuple(result.lock_waits), txid=result.txid, backup_id=ctx.manifest.id if ctx.manifest else None,
        error=error, seconds=round(time.monotonic() - started, 3),
    ))  # fmt: skip
