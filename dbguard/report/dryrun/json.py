"""The dry-run report as JSON, and the facts every dry-run renderer shares (check status, lock spans).

Schema, version 2 (`schema_version` changes only when a key is removed or changes meaning; 2: a check's
`sample` rows are objects). Every key is always present; times are seconds (float), since the script
started where they are points in time.

    schema_version  2
    kind            "dry-run"
    verdict         "safe" | "blocked"
    reasons         [str]: why it is blocked, [] when safe
    script          str | null: the script's path as given
    target          str: the target URL, password masked
    target_read_only  bool: every session dbguard opened on the target (and pg_dump's) was read-only
    server_version  str
    sandbox         str: what the sandbox was; provider: str ("server", "local", "container", "sqlite")
    scoped          bool: false when every table's data was copied
    tables_copied   [str]; copy_seconds: float
    execution       {seconds, committed_steps: int,
                     sequences_advanced: [{sequence, before: int|null, after: int|null, next_before: int|null,
                                           next_after: int|null}]}: every sequence the script moved, forward
                    or back; before/after: the last value handed out (null: none since it was created or
                    set); next_*: what nextval() returns next (null: the sequence did not exist)
    statements      [{index, line, kind, text (first line), sql (the whole statement), tables_written: [str],
                      separate_step, executed, rows: int|null, started, seconds, locks: [{table, mode}],
                      strongest_lock: str|null, notices: [str], error: str|null, error_line: int|null,
                      detail, hint, context: str|null (the server's DETAIL, HINT and CONTEXT of the error;
                      context has a line per level, innermost first),
                      activity: [{table, scans, inserted, updated, deleted}] (what the server counted for
                      each table the statement read or wrote, through triggers, rules and cascades too)}]
    locks           [{statement, table, mode, from, until}]: held from `from` until the transaction ends
    tables          [{table, rows_before: int|null, rows_after: int|null, delta, changed, hash_before,
                      hash_after}]: null rows mean the table did not exist on that side
    schema_changes  [{change, name, before: str|null, after: str|null}]
    checks          [{name, status: "pass"|"fail"|"skipped"|"pre-existing", passed, skipped, pre_existing,
                      blocks, detail, columns: [str], sample: [{column: value}]}]: the offending rows, by
                      column name (`column_1`... where the check named none); values are JSON scalars,
                      anything else str()
    findings        [finding]: the dry-run's own findings, shaped like the check report's
    estimates       [{statement, sandbox_seconds, scale, production_seconds}]
    estimated_production_seconds  float: the sum of the estimates
    notes           [str]: side effects a rollback cannot undo, and the like
    check           the static check report, exactly as `dbguard check --format json` writes it
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from dbguard.guard.execute import SequenceMove, StatementRun
from dbguard.report.check import json as render_json
from dbguard.report.dryrun.model import DryRunReport, GateResult
from dbguard.report.printable import printable, without_surrogates

_JSON_STATUS = {"PASS": "pass", "FAIL": "fail", "SKIPPED": "skipped", "FAIL (pre-existing)": "pre-existing"}


@dataclass(frozen=True)
class LockSpan:
    statement: int
    table: str
    mode: str
    start: float
    end: float  # the end of the transaction that holds it, as far as the script goes


def render(report: DryRunReport) -> str:
    return json.dumps(printable(to_dict(report), without_surrogates), indent=2) + "\n"


def to_dict(report: DryRunReport) -> dict[str, Any]:
    execution = report.execution
    return {
        "schema_version": 2,
        "kind": "dry-run",
        "verdict": report.verdict.lower(),
        "reasons": report.blocking_reasons,
        "script": script_path(report),
        "target": report.target,
        "target_read_only": report.target_read_only,
        "server_version": report.server_version,
        "sandbox": report.sandbox,
        "provider": report.provider,
        "scoped": report.scoped,
        "tables_copied": list(report.tables_copied),
        "copy_seconds": report.copy_seconds,
        "execution": {
            "seconds": execution.seconds,
            "committed_steps": execution.committed_steps,
            "sequences_advanced": [_sequence(move) for move in execution.sequences_moved],
        },
        "statements": [_statement(run) for run in execution.runs],
        "locks": [{"statement": s.statement, "table": s.table, "mode": s.mode, "from": s.start, "until": s.end}
                  for s in lock_spans(report)],
        "tables": [{**asdict(t), "delta": t.delta, "changed": t.changed} for t in report.tables],
        "schema_changes": [asdict(change) for change in report.schema_changes],
        "checks": [gate_json(gate) for gate in report.checks],
        "findings": [render_json._finding(f, report.check) for f in report.findings],
        "estimates": [asdict(estimate) for estimate in report.estimates],
        "estimated_production_seconds": sum(e.production_seconds for e in report.estimates),
        "notes": list(report.notes),
        "check": render_json.to_dict(report.check),
    }  # fmt: skip


def _sequence(move: SequenceMove) -> dict[str, Any]:
    before, after = move.before, move.after
    return {"sequence": move.sequence,
            "before": before.handed_out if before else None, "after": after.handed_out if after else None,
            "next_before": before.next_value if before else None,
            "next_after": after.next_value if after else None}  # fmt: skip


def _statement(run: StatementRun) -> dict[str, Any]:
    return {
        "index": run.index,
        "line": run.line,
        "kind": run.kind,
        "text": run.text,
        "sql": run.sql or run.text,
        "tables_written": list(run.tables_written),
        "separate_step": run.separate_step,
        "executed": run.executed,
        "rows": run.rows,
        "started": run.started,
        "seconds": run.seconds,
        "locks": [{"table": held.table, "mode": held.mode} for held in run.locks],
        "strongest_lock": run.strongest_lock,
        "notices": list(run.notices),
        "error": run.error,
        "error_line": run.error_line,
        "detail": run.error_detail,
        "hint": run.error_hint,
        "context": run.error_context,
        "activity": [asdict(activity) for activity in run.activity],
    }


def gate_json(gate: GateResult) -> dict[str, Any]:
    """One gate result as the JSON reports (dry-run and run) write it."""
    result = gate.result
    width = max((len(row) for row in result.sample), default=0)
    named = len(result.columns) == width and len(set(result.columns)) == width  # duplicates would collide
    columns = result.columns if named else tuple(f"column_{n}" for n in range(1, width + 1))
    return {
        "name": result.name,
        "status": _JSON_STATUS[gate_status(gate)],
        "passed": result.passed,
        "skipped": result.skipped,
        "pre_existing": gate.pre_existing,
        "blocks": gate.blocks,
        "detail": result.detail,
        "columns": list(columns),
        "sample": [dict(zip(columns, map(json_safe, row), strict=False)) for row in result.sample],
    }


def json_safe(value: Any) -> Any:
    """A sample value as a JSON scalar: numbers, text, booleans and null as they are, anything else str()."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # json.dumps would write NaN or Infinity, which is not JSON
    if value is None or isinstance(value, int | float | bool | str):
        return value
    return str(value)


# -- facts shared by the dry-run renderers --


def script_path(report: DryRunReport) -> str | None:
    return report.check.files[0].path if report.check.files else None


def gate_status(gate: GateResult) -> str:
    """PASS, FAIL, SKIPPED, or "FAIL (pre-existing)": it failed before the script ran too, so does not block."""
    if gate.result.skipped:
        return "SKIPPED"
    if gate.result.passed:
        return "PASS"
    return "FAIL (pre-existing)" if gate.pre_existing else "FAIL"


def caveats(report: DryRunReport) -> list[str]:
    """What the verdict did not verify: a SAFE report must not hide them."""
    found = [f"{g.result.name} was skipped: {g.result.detail}" for g in report.checks if g.result.skipped]
    found += [f"{g.result.name} already failed before the script ran: {g.result.detail}"
              for g in report.checks if gate_status(g) == "FAIL (pre-existing)"]  # fmt: skip
    return found


def lock_spans(report: DryRunReport) -> list[LockSpan]:
    """Each lock from the statement that took it to the end of its transaction: the end of the script, or the
    COMMIT that dbguard issues before the next separate step."""
    runs = report.execution.runs
    spans = []
    for position, run in enumerate(runs):
        commits = (later.started for later in runs[position + 1 :] if later.separate_step and statement_ran(later))
        end = next(commits, report.execution.seconds)
        held = sorted(run.locks, key=lambda lock: (-lock.rank, lock.table))
        spans += [LockSpan(run.index, lock.table, lock.mode, run.started, end) for lock in held]
    return spans


def statement_ran(run: StatementRun) -> bool:
    """Executed, or failed after it started; a statement refused or never reached did not run."""
    return run.executed or run.seconds > 0
