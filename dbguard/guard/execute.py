"""Run a parsed script statement by statement on an open connection, measuring each one.

The whole script runs as ONE transaction, as `run` does, and the last transaction is left open: the
caller runs its integrity gate first, then commits or rolls back. Statements that cannot run in a
transaction (VACUUM, CREATE INDEX CONCURRENTLY...) run as separate steps in autocommit, which means
the work before them is committed first; `check` refuses them unless the policy allows them.

For each statement it records the rows affected, the time taken, the table locks newly held by this
backend afterwards (from pg_locks: they stay held until COMMIT), the notices, the error, and (PostgreSQL)
what it did to every table: the server's per-transaction counters (`pg_stat_xact_user_tables`, "The
Cumulative Statistics System" in the PostgreSQL docs) count the scans, inserts, updates and deletes,
whoever made them: the statement, a trigger, a rule, a cascade, a function or dynamic SQL.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.sql import SQL, Identifier

from dbguard.dialects import Dialect
from dbguard.policy.policy import Timeouts
from dbguard.run.wrapper import released_savepoints, transaction_wrapper
from dbguard.sql.model import LockMode, Script, Statement
from dbguard.targets.url import mask

# Relation locks held by this backend, on user tables (pg_locks' own catalog locks left out).
_LOCKS_SQL = """
SELECT n.nspname || '.' || c.relname, l.mode
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""
# The user's sequences this session may read. pg_sequences.last_value is NULL until nextval() is first
# called and after setval(..., false): only the sequence itself tells where it stands (last_value, is_called).
_SEQUENCES_SQL = """
SELECT n.nspname, c.relname, s.seqincrement
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND has_table_privilege(c.oid, 'SELECT')  -- has_sequence_privilege fails on a row the join drops later
"""
# Counters of this transaction so far (a row per table it touched); a partitioned table's are its partitions'.
_ACTIVITY_SQL = """
SELECT schemaname || '.' || relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0), n_tup_ins, n_tup_upd, n_tup_del
FROM pg_stat_xact_user_tables
WHERE coalesce(seq_scan, 0) + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd + n_tup_del > 0
"""


def lock_label(mode: str) -> str:
    """pg_locks' 'AccessExclusiveLock' -> 'ACCESS EXCLUSIVE', the label of the matching LockMode."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", mode.removesuffix("Lock")).upper()
    return LockMode[name].label if name in LockMode.__members__ else mode


@dataclass(frozen=True)
class LockHeld:
    table: str
    mode: str  # "ACCESS EXCLUSIVE", ...

    @property
    def rank(self) -> int:
        """Strength, from LockMode's order: 8 for ACCESS EXCLUSIVE, 0 for a mode it does not know."""
        member = LockMode.__members__.get(self.mode.replace(" ", "_"))
        return member.value if member else 0


@dataclass(frozen=True)
class TableActivity:
    """What one statement did to one table, whoever did it (see the module's docstring)."""

    table: str  # canonical "schema.table"
    scans: int  # sequential and index scans: the table was read
    inserted: int
    updated: int
    deleted: int

    @property
    def wrote(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


@dataclass
class StatementRun:
    index: int
    line: int
    kind: str
    text: str
    tables_written: tuple[str, ...]
    separate_step: bool = False  # ran outside the transaction, in autocommit
    executed: bool = False
    rows: int | None = None
    started: float = 0.0  # seconds since the script started
    seconds: float = 0.0
    locks: tuple[LockHeld, ...] = ()  # newly held after this statement, until the transaction ends
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None  # line in the script where the server located the error
    error_detail: str | None = None  # the server's DETAIL, HINT and CONTEXT (see ServerError)
    error_hint: str | None = None
    error_context: str | None = None
    sqlstate: str | None = None  # the error's SQLSTATE (PostgreSQL), e.g. 55P03 when a lock was not granted
    activity: tuple[TableActivity, ...] = ()  # PostgreSQL, statements in the transaction: per table touched
    sql: str = ""  # the whole statement; `text` is its first line

    @property
    def rows_written(self) -> int:
        """Rows inserted, updated and deleted in every table while it ran, whoever wrote them (PostgreSQL's
        counters; 0 on SQLite, which has none). A DO block or a function call has no row count of its own."""
        return sum(a.inserted + a.updated + a.deleted for a in self.activity)

    @property
    def strongest_lock(self) -> str | None:
        if not self.locks:
            return None
        return max(self.locks, key=lambda held: held.rank).mode


@dataclass(frozen=True)
class SequenceState:
    """Where a sequence stands. SQLite's AUTOINCREMENT counter (sqlite_sequence.seq) is one that is called."""

    last_value: int
    is_called: bool  # False: nextval() returns last_value itself (a new sequence, or setval(..., false))
    increment: int = 1

    @property
    def next_value(self) -> int:
        """What nextval() returns next (ignoring the sequence's bounds)."""
        return self.last_value + self.increment if self.is_called else self.last_value

    @property
    def handed_out(self) -> int | None:
        """The last value nextval() or setval() handed out; None when none has been since it was set."""
        return self.last_value if self.is_called else None

    def __str__(self) -> str:
        return str(self.last_value) if self.is_called else f"not yet used (next value {self.last_value})"


@dataclass(frozen=True)
class SequenceMove:
    """A sequence the script moved, before and after; None: it did not exist on that side."""

    sequence: str  # "schema.name" on PostgreSQL, the table's name on SQLite
    before: SequenceState | None
    after: SequenceState | None

    @property
    def backwards(self) -> bool:
        """It now hands out values it had handed out before (or would have)."""
        if self.before is None or self.after is None:
            return False
        return (self.after.next_value - self.before.next_value) * self.after.increment < 0

    def __str__(self) -> str:
        before = "did not exist" if self.before is None else str(self.before)
        after = "dropped" if self.after is None else str(self.after)
        return f"sequence {self.sequence} {'moved back' if self.backwards else 'moved'} from {before} to {after}"


@dataclass
class ExecutionResult:
    runs: list[StatementRun]
    seconds: float
    sequences_moved: list[SequenceMove] = field(default_factory=list)  # after a script that did not fail
    committed_steps: int = 0  # transactions committed before the end because a separate step followed

    @property
    def failed(self) -> StatementRun | None:
        return next((r for r in self.runs if r.error), None)

    @property
    def tables_written(self) -> set[str]:
        """Every table some statement wrote rows of, through whatever path (PostgreSQL counters)."""
        return {a.table for run in self.runs for a in run.activity if a.wrote}

    @property
    def tables_touched(self) -> set[str]:
        """Every table the script read, wrote or locked (TRUNCATE counts no rows, but locks its table)."""
        return {a.table for run in self.runs for a in run.activity} | {
            held.table for run in self.runs for held in run.locks
        }


def execute_script(
    conn: Any,
    script: Script,
    timeouts: Timeouts,
    on_statement: Callable[[StatementRun], None] | None = None,
    *,
    in_transaction: bool = False,
    refuse: Callable[[Statement], str | None] | None = None,
) -> ExecutionResult:
    """Run the script's top-level statements on `conn` (psycopg or sqlite3), leaving the last transaction open.

    `in_transaction`: the caller has begun the transaction already (`run`, whose backup is in it); the
    script must then hold no statement that runs as a separate step. `refuse`: why a top-level statement
    must not run here (None: it may); a refused statement stops the script like a failed one."""
    runner: _Runner = _PostgresRunner(conn) if script.dialect is Dialect.POSTGRES else _SqliteRunner(conn)
    runner.begin(timeouts, in_transaction)
    sequences_before = runner.sequences()
    runs = [_planned(s) for s in script.statements if s.parent is None]
    wrapper, released = transaction_wrapper(script), released_savepoints(script)
    start = time.perf_counter()
    committed = 0
    pending = False  # a statement ran in the open transaction: committing it is worth a note
    for run, statement in zip(runs, (s for s in script.statements if s.parent is None), strict=True):
        if on_statement:
            on_statement(run)
        if statement.index in wrapper:  # the script's own BEGIN ... COMMIT: this transaction is the one it asks for
            run.executed = True
            run.notices.append(f"not sent to the server: dbguard's own transaction stands in for the {statement.kind} "
                               "that wraps the whole script")  # fmt: skip
            continue
        refusal = _refusal(statement, released) or (refuse(statement) if refuse else None)
        if refusal:
            run.error = refusal
            break
        if run.separate_step:
            if runner.commit_if_open() and pending:
                committed += 1
            pending = False
        run.started = time.perf_counter() - start
        try:
            run.rows = runner.execute(statement.text, run.separate_step, run.notices)
        except (psycopg.Error, sqlite3.Error) as error:
            if runner.lost():
                raise  # not the statement's failure: the caller says what a lost connection means for it
            run.seconds = time.perf_counter() - start - run.started
            said = server_error(error)
            run.error, run.error_line = said.message, _line_at(statement, said.position)
            run.error_detail, run.error_hint, run.error_context = said.detail, said.hint, said.context
            run.sqlstate = getattr(error, "sqlstate", None)
            break
        run.seconds = time.perf_counter() - start - run.started
        run.executed = True
        if not run.separate_step:
            pending = True
            run.locks = runner.new_locks()
            run.activity = runner.activity()
    result = ExecutionResult(runs, time.perf_counter() - start, committed_steps=committed)
    if result.failed is None:
        after = runner.sequences()
        result.sequences_moved = [SequenceMove(name, sequences_before.get(name), after.get(name))
                                  for name in sorted(sequences_before.keys() | after.keys())
                                  if sequences_before.get(name) != after.get(name)]  # fmt: skip
    return result


def _planned(statement: Statement) -> StatementRun:
    first_line = statement.text.splitlines()[0] if statement.text else ""
    return StatementRun(
        index=statement.index,
        line=statement.span.line,
        kind=statement.kind,
        text=first_line[:120],
        tables_written=statement.facts.tables_written,
        separate_step=not statement.facts.transactional,
        sql=statement.text,
    )


@dataclass(frozen=True)
class ServerError:
    """What the database said about an error: PostgreSQL's message fields (psycopg's `Diagnostic`), or
    sqlite3's message alone."""

    message: str
    detail: str | None = None  # "Key (customer_id)=(99999) is not present in table \"customer\"."
    hint: str | None = None
    context: str | None = None  # where it happened, innermost first, one line per level
    position: int | None = None  # 1-based character position in the statement

    def one_line(self) -> str:
        """The message with its detail and hint, on one line (context, several lines, left out)."""
        extra = [f"{label}: {' '.join(text.split())}" for label, text in (("detail", self.detail),
                                                                           ("hint", self.hint)) if text]  # fmt: skip
        return "; ".join([" ".join(self.message.split()), *extra])


def server_error(error: BaseException) -> ServerError:
    """The fields of a psycopg or sqlite3 error, passwords masked."""
    diag = getattr(error, "diag", None)
    first_line = next(iter(str(error).splitlines()), "") or type(error).__name__
    if diag is None:
        return ServerError(mask(first_line))
    detail, hint, context = (mask(text) if text else None for text in (diag.message_detail, diag.message_hint,
                                                                       diag.context))  # fmt: skip
    position = diag.statement_position
    return ServerError(mask(diag.message_primary or first_line), detail, hint, context,
                       int(position) if position else None)  # fmt: skip


def _refusal(statement: Statement, released: frozenset[int]) -> str | None:
    if not statement.recognized:
        return f"not executed: dbguard does not run a statement it cannot classify ({statement.kind.lower()})"
    if statement.actions_of("transaction-control") and statement.index not in released:
        return f"not executed: {statement.kind} would end the transaction that dbguard owns"
    return None


def _line_at(statement: Statement, position: int | None) -> int:
    if not position:
        return statement.span.line
    return statement.span.line + statement.text.count("\n", 0, max(position - 1, 0))


class _Runner(Protocol):
    def begin(self, timeouts: Timeouts, in_transaction: bool) -> None: ...
    def execute(self, sql: str, autocommit: bool, notices: list[str]) -> int | None: ...
    def commit_if_open(self) -> int: ...
    def new_locks(self) -> tuple[LockHeld, ...]: ...
    def sequences(self) -> dict[str, SequenceState]: ...
    def lost(self) -> bool: ...
    def activity(self) -> tuple[TableActivity, ...]: ...


class _PostgresRunner:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.held: set[tuple[str, str]] = set()
        self.counted: dict[str, tuple[int, ...]] = {}  # the transaction's counters after the last statement
        self.notices: list[str] | None = None
        conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if self.notices is not None:
            self.notices.append(f"{diag.severity}: {diag.message_primary}")

    def begin(self, timeouts: Timeouts, in_transaction: bool) -> None:
        if not in_transaction:
            self.conn.autocommit = False
        self.conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                          (timeouts.lock_timeout, timeouts.statement_timeout))  # fmt: skip
        self.held = set(self._locks())
        self.counted = self._counters()

    def execute(self, sql: str, autocommit: bool, notices: list[str]) -> int | None:
        self.notices = notices
        try:
            if autocommit:
                self.conn.autocommit = True
            cursor = self.conn.execute(sql.encode(), prepare=False)  # bytes: no placeholder processing
            return cursor.rowcount if cursor.rowcount >= 0 else None
        finally:
            if autocommit:
                self.conn.autocommit = False
                self.counted = {}  # the next statement starts a new transaction, and its counters at zero
            self.notices = None

    def commit_if_open(self) -> int:
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            self.conn.commit()
            self.held = set()
            self.counted = {}
            return 1
        return 0

    def _counters(self) -> dict[str, tuple[int, ...]]:
        return {str(row[0]): tuple(int(n) for n in row[1:]) for row in self.conn.execute(_ACTIVITY_SQL).fetchall()}

    def activity(self) -> tuple[TableActivity, ...]:
        """Per table, the counters' growth since the previous statement (a separate step's own
        transaction has ended by now: it is not counted)."""
        now = self._counters()
        grown = []
        for table, counts in sorted(now.items()):
            before = self.counted.get(table, (0, 0, 0, 0))
            delta = tuple(n - b for n, b in zip(counts, before, strict=True))
            if any(delta):
                grown.append(TableActivity(table, *delta))
        self.counted = now
        return tuple(grown)

    def _locks(self) -> list[tuple[str, str]]:
        return [(str(t), lock_label(str(m))) for t, m in self.conn.execute(_LOCKS_SQL).fetchall()]

    def new_locks(self) -> tuple[LockHeld, ...]:
        now = set(self._locks())
        fresh = sorted(now - self.held)
        self.held = now
        return tuple(LockHeld(table, mode) for table, mode in fresh)

    def sequences(self) -> dict[str, SequenceState]:
        listed = self.conn.execute(_SEQUENCES_SQL).fetchall()
        if not listed:
            return {}
        reads = SQL(" UNION ALL ").join(
            SQL("SELECT {}, last_value, is_called, {} FROM {}").format(index, increment, Identifier(schema, name))
            for index, (schema, name, increment) in enumerate(listed)
        )
        states = {}
        for index, last_value, is_called, increment in self.conn.execute(reads).fetchall():
            schema, name, _ = listed[index]
            states[f"{schema}.{name}"] = SequenceState(int(last_value), bool(is_called), int(increment))
        return states

    def lost(self) -> bool:
        return self.conn.broken or self.conn.closed


def _no_attached_files(action: int, file: str | None, *_: str | None) -> int:
    if action == sqlite3.SQLITE_ATTACH and file not in ("", ":memory:"):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class _SqliteRunner:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # ATTACH (and VACUUM INTO) reach any file by its path, the target's own included: a dry-run's script
        # would write the real database from the sandbox. Only VACUUM's own nameless temporary one may attach.
        conn.set_authorizer(_no_attached_files)

    def begin(self, timeouts: Timeouts, in_transaction: bool) -> None:
        if not in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")  # takes the write lock now: no other writer can slip in

    def execute(self, sql: str, autocommit: bool, notices: list[str]) -> int | None:
        before = self.conn.total_changes
        self.conn.execute(sql)
        if autocommit:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn.total_changes - before

    def commit_if_open(self) -> int:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
            return 1
        return 0

    def new_locks(self) -> tuple[LockHeld, ...]:
        return ()  # SQLite locks the whole database file, from BEGIN IMMEDIATE to COMMIT

    def sequences(self) -> dict[str, SequenceState]:
        try:
            rows = self.conn.execute("SELECT name, seq FROM sqlite_sequence")
            return {str(name): SequenceState(int(seq), is_called=True) for name, seq in rows}
        except sqlite3.OperationalError:  # no AUTOINCREMENT table: no sequences
            return {}

    def lost(self) -> bool:
        return False

    def activity(self) -> tuple[TableActivity, ...]:
        return ()  # SQLite keeps no per-table counters: the caller compares the tables' hashes
