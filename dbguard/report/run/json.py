"""`dbguard run --format json`: the run report as one JSON object (pure).

schema_version 1; fields are only added within a version:

    schema_version  1
    tool            {name, version}
    run_id, script, target (password masked)
    verdict         "COMMITTED" | "ROLLED BACK" | "PARTLY COMMITTED" | "OUTCOME UNKNOWN" | "NOT EXECUTED" | "BLOCKED"
    transaction     "committed" | "rolled back" | "partly committed" | "unknown" | "not executed"
    exit_code       the process's exit code
    reasons         [str]: why it did not commit
    plan            {statements: [{index, line, step, kind, text, lock, expected_rows}], steps,
                     non_transactional_steps, tables_written, backup_tables, timeouts, lock_retries,
                     verification, dry_run} | null (stopped before planning)
    backup          {id, verification} | null
    steps           [{number, first_line, transactional, transaction, attempts, error, resolved_by,
                      statements: [{index, line, kind, rows, seconds, error, sqlstate}],
                      writes: [{table, inserted, updated, deleted}], lock_waits: [{statement, seconds,
                      blocking_pids}], checks: [as in the dry-run JSON], proof: check | null}]
    restore_command str | null: when earlier steps committed and a later one did not
    findings        the policy check's findings, as in `check --format json`
    timings         {phase: seconds}
    notes           [str]
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from dbguard import __version__
from dbguard.report.check import json as render_json
from dbguard.report.dryrun.json import gate_json
from dbguard.report.dryrun.model import GateResult
from dbguard.report.printable import printable, without_surrogates
from dbguard.report.run.model import RunReport, StepResult

SCHEMA_VERSION = 1


def render(report: RunReport) -> str:
    plan = None
    if report.plan is not None:
        plan = asdict(report.plan)
        plan["timeouts"] = asdict(report.plan.timeouts)
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "dbguard", "version": __version__},
        "run_id": report.run_id,
        "script": report.script,
        "target": report.target,
        "verdict": report.verdict,
        "transaction": str(report.transaction),
        "exit_code": report.exit_code,
        "reasons": report.reasons,
        "plan": plan,
        "backup": {"id": report.backup_id, "verification": report.backup_verification} if report.backup_id else None,
        "steps": [_step(step) for step in report.steps],
        "restore_command": report.restore_command,
        "findings": render_json.to_dict(report.check)["files"][0]["findings"] if report.check.files else [],
        "timings": report.timings,
        "notes": report.notes,
    }
    return json.dumps(printable(body, without_surrogates), indent=2, ensure_ascii=True) + "\n"


def _step(step: StepResult) -> dict[str, Any]:
    runs = step.execution.runs if step.execution else []
    writes: dict[str, dict[str, Any]] = {}
    for run in runs:
        for activity in run.activity:
            if activity.wrote:
                seen = writes.setdefault(activity.table, {"table": activity.table, "inserted": 0, "updated": 0,
                                                          "deleted": 0})  # fmt: skip
                seen["inserted"] += activity.inserted
                seen["updated"] += activity.updated
                seen["deleted"] += activity.deleted
    return {
        "number": step.number,
        "first_line": step.first_line,
        "transactional": step.transactional,
        "transaction": str(step.transaction),
        "attempts": step.attempts,
        "error": step.error,
        "resolved_by": step.resolved_by,
        "statements": [{"index": r.index, "line": r.line, "kind": r.kind, "rows": r.rows if r.executed else None,
                        "seconds": round(r.seconds, 6), "error": r.error, "sqlstate": r.sqlstate} for r in runs],
        "writes": sorted(writes.values(), key=lambda w: str(w["table"])),
        "lock_waits": [asdict(wait) for wait in step.lock_waits],
        "checks": [gate_json(gate) for gate in step.gates],
        "proof": gate_json(GateResult(step.proof)) if step.proof else None,
    }
