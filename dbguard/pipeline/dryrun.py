"""`dbguard dry-run`: run a script on a scoped copy of the real data and report what it did.

The target is only read: its schema and the data of the tables the script touches (plus their
foreign-key neighbours) are copied into a sandbox, and everything runs there. The sandbox is removed
afterwards, whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from dbguard.dialects import Dialect
from dbguard.errors import ConnectionFailure
from dbguard.guard.execute import ExecutionResult, StatementRun, execute_script, server_error
from dbguard.guard.gate import integrity, integrity_gate, invariant_stats, settle_gate_session
from dbguard.inputs import Source
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Policy
from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.dryrun.model import DryRunReport, Estimate, GateResult, TableDelta
from dbguard.sandbox import open_sandbox, provider_for
from dbguard.sql.model import Script, Statement
from dbguard.sql.reach import beyond_the_database
from dbguard.targets import lost_connection_is, open_target
from dbguard.targets.model import CheckResult, SchemaChange, SequenceColumn, TableStats, Target
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DryRunOptions:
    provider: str = "server"  # server, local, container; SQLite targets always use a file copy
    sandbox_url: DatabaseUrl | None = None
    full: bool = False  # copy every table's data, not just what the script touches
    pg_bin: Path | None = None


def dry_run(
    source: Source,
    target_url: DatabaseUrl,
    policy: Policy,
    options: DryRunOptions = DryRunOptions(),
    progress: Progress | None = None,
    on_statement: Callable[[StatementRun], None] | None = None,
) -> DryRunReport:
    say = progress or (lambda _message: None)
    file_report = check_text(source.text, target_url.dialect, policy, source.name)
    script = file_report.script
    check = CheckReport(policy=policy, files=(file_report,))

    plan = _plan(target_url, script, policy, options.full, set(), say)
    provider = provider_for(target_url.dialect, options.provider)
    for attempt in (1, 2):
        copy_started = time.perf_counter()
        what = "all data" if plan.copy is None else f"{len(plan.copy)} tables"
        say(f"copying {what} into a {provider} sandbox")
        with open_sandbox(target_url, provider, plan.copy, options.sandbox_url, options.pg_bin, say) as sandbox:
            copy_seconds = time.perf_counter() - copy_started
            with closing(open_target(sandbox.url)) as copy, lost_connection_is(ConnectionFailure, "the rehearsal"):
                say("running the script in the sandbox")
                rehearsal = _rehearse(copy, script, policy, plan.measured, on_statement)
        # Triggers, rules, functions and dynamic SQL reach tables the script never names: a table the copy
        # left empty, or that was not measured, makes the rehearsal unfaithful. Widen once, then block.
        # A sequence moved is compared with the tables it feeds: their rows must be in the copy too.
        beyond = plan.beyond(rehearsal.execution.tables_touched | {c.table for c in rehearsal.sequence_columns})
        if not beyond or attempt == 2:
            break
        say(f"the script reached {', '.join(sorted(beyond))} beyond the copy: copying and measuring them too, "
            "and rehearsing again")  # fmt: skip
        plan = _plan(target_url, script, policy, options.full, plan.extra | beyond, say)
    execution, gates = rehearsal.execution, rehearsal.gates
    deltas = tuple(_deltas(rehearsal.before, rehearsal.after))
    if beyond:
        detail = (f"{', '.join(sorted(beyond))}: touched by the script (through a trigger, rule, function or dynamic "
                  "SQL) beyond what the sandbox held even after widening the copy once; rerun with --full")  # fmt: skip
        gates.append(GateResult(CheckResult("written tables measured", passed=False, detail=detail)))
    resolved = plan.resolved
    return DryRunReport(
        check=check,
        target=str(target_url),
        target_read_only=plan.read_only,  # as the session said (the copy's and pg_dump's are opened alike)
        server_version=plan.server_version,
        sandbox=sandbox.description,
        provider=provider,
        scoped=plan.copy is not None and provider != "sqlite",  # SQLite's copy is always the whole file
        tables_copied=tuple(sorted(sandbox.copy.tables_copied if sandbox.copy else plan.copy or plan.measured)),
        copy_seconds=copy_seconds,
        execution=execution,
        tables=deltas,
        schema_changes=tuple(rehearsal.schema_changes),
        checks=tuple(gates),
        findings=(
            *_threshold_findings(script, resolved, execution, deltas, rehearsal.before, policy, source.name),
            *_sequence_findings(script, resolved, execution, rehearsal.sequence_columns, policy, source.name),
        ),
        estimates=tuple(_estimates(script, resolved, execution, plan.production_sizes, rehearsal.sandbox_sizes)),
        notes=tuple(_notes(execution)),
    )


@dataclass(frozen=True)
class _Plan:
    """What the target says a rehearsal needs, read through a read-only session."""

    resolved: dict[str, str]  # names as the script spells them -> canonical tables
    copy: set[str] | None  # tables whose rows are copied (partitioned ones bring their partitions); None: all
    measured: list[str]  # tables hashed before and after: the rows' own tables (partitions, not parents)
    tables: frozenset[str]  # every table of the target
    extra: set[str]  # tables found beyond an earlier copy, in scope from now on
    production_sizes: dict[str, int]
    server_version: str
    read_only: bool  # the session that read the target said it could not write

    covered: frozenset[str]  # copied and measured: the closure, and the measured partitions under it

    def beyond(self, touched: set[str]) -> set[str]:
        """Tables of the target that the rehearsal touched but the sandbox did not hold or measure."""
        return {table for table in touched if table in self.tables and table not in self.covered}


def _plan(target_url: DatabaseUrl, script: Script, policy: Policy, full: bool, extra: set[str],
          say: Progress) -> _Plan:  # fmt: skip
    say(f"reading {target_url} (read-only)")
    with closing(open_target(target_url, read_only=True)) as target:
        resolved = target.resolve(_names(script))
        touched = sorted(set(resolved.values()))
        invariant_tables = set(target.resolve([i.table for i in policy.invariants if i.table]).values())
        # ALTER DOMAIN and ALTER TYPE check or rewrite every column of the type: those tables' rows count too.
        altered = sorted({a.table for s in script.statements for a in s.actions_of("alter-type") if a.table})
        typed = target.tables_using_types(altered) if altered else set()
        # Copied and measured: the touched tables and their foreign-key neighbours (where a cascade can
        # change rows the script never names), partition trees whole, and what an earlier rehearsal found.
        closure = target.foreign_key_closure(sorted({*touched, *typed, *extra})) | invariant_tables
        tables = frozenset(target.all_tables())
        # SQLite copies the whole file: measuring every table there is what finds a trigger's writes.
        measured = target.leaf_tables(sorted(tables if target_url.dialect is Dialect.SQLITE else closure))
        return _Plan(
            resolved=resolved,
            copy=None if full else closure,
            measured=measured,
            tables=tables,
            extra=extra,
            covered=frozenset(closure | set(measured)),
            production_sizes={t: s.estimated_rows for t, s in target.table_sizes(touched).items()},
            server_version=target.server_version,
            read_only=target.read_only,
        )


@dataclass
class _Rehearsal:
    execution: ExecutionResult
    before: dict[str, TableStats]
    after: dict[str, TableStats]
    gates: list[GateResult]
    schema_changes: list[SchemaChange]
    sandbox_sizes: dict[str, int]  # rows per table in the sandbox, before the script
    sequence_columns: list[SequenceColumn] = field(default_factory=list)  # fed by a sequence moved, max() after


def _rehearse(
    copy: Target,
    script: Script,
    policy: Policy,
    touched: list[str],
    on_statement: Callable[[StatementRun], None] | None,
) -> _Rehearsal:
    """Before-state, the script, then the integrity gate before COMMIT, exactly as `run` will do it."""
    schema_before = copy.schema()
    sizes = {t: s.estimated_rows for t, s in copy.table_sizes(touched).items()}  # before the script changes them
    before = copy.table_stats(touched)
    invariants_before = invariant_stats(copy, policy.invariants)
    checks_before = integrity(copy, touched)
    copy.conn.commit()  # the before-state's reads must not count as the script's locks
    execution = execute_script(copy.conn, script, policy.timeouts, on_statement, refuse=_beyond_the_sandbox(script))
    if execution.failed:
        copy.conn.rollback()
        return _Rehearsal(execution, before, before, [], [], sizes)
    settle_gate_session(copy)
    # dropped ones gone, new ones in; a partitioned table by its partitions, so that no row counts twice
    existing = copy.leaf_tables(sorted(set(copy.resolve([*touched, *_names(script)]).values())))
    after = copy.table_stats(existing)
    schema_changes = schema_before.diff(copy.schema())
    sequence_columns = copy.sequence_columns([m.sequence for m in execution.sequences_moved if m.after])
    invariants_after = invariant_stats(copy, policy.invariants)
    gates = integrity_gate(copy, existing, checks_before, policy.invariants, {**invariants_before, **before},
                           {**invariants_after, **after})  # fmt: skip
    try:
        copy.conn.commit()
    except Exception as error:  # deferred constraints fire at COMMIT: that is a gate too
        gates.append(GateResult(CheckResult("commit", passed=False, detail=server_error(error).one_line())))
    return _Rehearsal(execution, before, after, gates, schema_changes, sizes, sequence_columns)


def _beyond_the_sandbox(script: Script) -> Callable[[Statement], str | None]:
    """Why a top-level statement must not run in the sandbox: it, or SQL inside it, reaches beyond the
    sandbox's database (dbguard.sql.reach) -- on the "server" provider, to the target on the same server."""
    reasons: dict[int, str] = {}
    for statement in script.statements:
        why = beyond_the_database(statement)
        if why is None:
            continue
        top = script.top_of[statement.index]
        inside = "" if top == statement.index else f" (statement {statement.index}, line {statement.span.line}, inside)"
        reasons.setdefault(top, f"not rehearsed: it {why}{inside}, beyond the sandbox's database: on the target's "
                                "server that can be the target itself, so a dry-run never runs it")  # fmt: skip
    return lambda statement: reasons.get(statement.index)


def _names(script: Script) -> list[str]:
    names: set[str] = set()
    for statement in script.statements:
        names.update(statement.facts.tables_read, statement.facts.tables_written)
    return sorted(names)


def _deltas(before: dict[str, TableStats], after: dict[str, TableStats]) -> Iterable[TableDelta]:
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table), after.get(table)
        yield TableDelta(
            table,
            old.rows if old else None,
            new.rows if new else None,
            old.hash if old else None,
            new.hash if new else None,
        )


def _threshold_findings(
    script: Script, resolved: dict[str, str], execution: ExecutionResult, deltas: Sequence[TableDelta],
    before: dict[str, TableStats], policy: Policy, path: str,
) -> Iterable[Finding]:  # fmt: skip
    statements = {s.index: s for s in script.statements}
    limits = policy.thresholds
    flagged: set[str] = set()
    for run in execution.runs:
        statement = statements[run.index]
        if run.rows is None or not run.executed:
            continue
        if run.rows > limits.max_rows_affected:
            yield _finding(policy, "limit-rows-affected", statement, path,
                           f"statement changed {run.rows} rows; the policy allows {limits.max_rows_affected}",
                           "Narrow the WHERE clause, or raise thresholds.max_rows_affected in the policy if this "
                           "many rows must change.")  # fmt: skip
        for action in statement.actions_of("delete", "truncate"):
            stats = before.get(resolved.get(action.table or "", ""))
            if not stats or not stats.rows:
                continue
            removed = stats.rows if action.kind == "truncate" else min(run.rows, stats.rows)
            if 100.0 * removed / stats.rows > limits.max_delete_percent:
                flagged.add(stats.table)
                yield _delete_finding(policy, statement, path, f"{action.kind.upper()} removed", removed, stats.rows,
                                      stats.table)  # fmt: skip
    # The tables themselves, before and after: this also sees rows removed through a data-modifying CTE, a
    # DO block, a view, a trigger or an ON DELETE CASCADE, which no statement's row count shows.
    for delta in deltas:
        if delta.table in flagged or not delta.rows_before:
            continue
        removed = delta.rows_before - (delta.rows_after or 0)
        if 100.0 * removed / delta.rows_before > limits.max_delete_percent:
            statement = _first_writer(script, resolved, delta.table)
            yield _delete_finding(policy, statement, path, "the script removed", removed, delta.rows_before,
                                  delta.table)  # fmt: skip


def _sequence_findings(script: Script, resolved: dict[str, str], execution: ExecutionResult,
                       columns: Sequence[SequenceColumn], policy: Policy, path: str) -> Iterable[Finding]:  # fmt: skip
    """A sequence moved backwards, or left handing out values at or below max() of a column it feeds."""
    fed: dict[str, list[SequenceColumn]] = {}
    for column in columns:
        fed.setdefault(column.sequence, []).append(column)
    for move in execution.sequences_moved:
        after = move.after
        if after is None:
            continue
        below = [c for c in fed.get(move.sequence, ()) if after.increment > 0 and isinstance(c.largest, int | Decimal)
                 and after.next_value <= c.largest]  # fmt: skip
        if below:
            largest = ", ".join(f"max({c.table}.{c.column}) is {c.largest}" for c in below)
            message = (f"sequence {move.sequence} hands out {after.next_value} next, but {largest}: the next inserts "
                       "collide with existing keys")  # fmt: skip
        elif move.backwards:
            message = f"{move}: it hands out again values it already handed out"
        else:
            continue
        mover = _sequence_mover(script, resolved, move.sequence, [c.table for c in fed.get(move.sequence, ())])
        yield _finding(policy, "limit-sequence-below-max", mover, path, message,
                       "Move a sequence forward only, past the largest key in use: SELECT setval('<sequence>', "
                       "(SELECT max(<column>) FROM <table>)).")  # fmt: skip


def _sequence_mover(script: Script, resolved: dict[str, str], sequence: str, tables: list[str]) -> Statement:
    """The top-level statement that resets `sequence` (setval, ALTER SEQUENCE), else the first that writes a
    table it feeds (ADD GENERATED AS IDENTITY, SET DEFAULT nextval(...)), else the first statement."""
    bare = sequence.rpartition(".")[2].lower()
    for statement in script.statements:
        if any(bare in str(a.table).lower() for a in statement.actions_of("sequence-reset")):
            return _top_level(script, statement)
    return _first_writer(script, resolved, tables[0]) if tables else script.statements[0]


def _delete_finding(policy: Policy, statement: Statement, path: str, what: str, removed: int, total: int,
                    table: str) -> Finding:  # fmt: skip
    limit = policy.thresholds.max_delete_percent
    return _finding(policy, "limit-delete-percent", statement, path,
                    f"{what} {removed} of {total} rows of {table} ({100.0 * removed / total:.1f}%); the policy "
                    f"allows {limit:g}%",
                    "Check the WHERE clause against the data; if this share must go, raise "
                    "thresholds.max_delete_percent in the policy.")  # fmt: skip


def _first_writer(script: Script, resolved: dict[str, str], table: str) -> Statement:
    """The top-level statement that writes `table` (directly or in its body), else the first statement."""
    for statement in script.statements:
        if any(resolved.get(name) == table for name in statement.facts.tables_written):
            return _top_level(script, statement)
    return script.statements[0]


def _top_level(script: Script, statement: Statement) -> Statement:
    """The top-level statement that holds `statement` (in a DO block or a function body), or itself."""
    top = script.top_of[statement.index]
    return next(s for s in script.statements if s.index == top)


def _finding(policy: Policy, rule_id: str, statement: Statement, path: str, message: str, help_text: str) -> Finding:
    severity = policy.severity_of(rule_id)
    return Finding(rule_id, severity, message, help_text, path, statement.span, statement.index, None)


def _estimates(
    script: Script, resolved: dict[str, str], execution: ExecutionResult, production: dict[str, int],
    sandbox: dict[str, int],
) -> Iterable[Estimate]:  # fmt: skip
    """Sandbox time scaled by production rows / sandbox rows of the largest table a statement touches."""
    statements = {s.index: s for s in script.statements}
    for run in execution.runs:
        if not run.executed:
            continue
        facts = statements[run.index].facts
        tables = {resolved[n] for n in (*facts.tables_read, *facts.tables_written) if n in resolved}
        ratios = [production[t] / max(sandbox[t], 1) for t in tables if t in production and t in sandbox]
        scale = max(ratios, default=1.0)
        yield Estimate(run.index, run.seconds, scale, run.seconds * scale)


def _notes(execution: ExecutionResult) -> Iterable[str]:
    for move in execution.sequences_moved:
        yield f"{move}: a rollback does not undo it"
    if execution.committed_steps:
        yield (f"{execution.committed_steps} transaction(s) committed before a statement that must run on its own: "
               "work before it cannot be rolled back with the rest")  # fmt: skip
