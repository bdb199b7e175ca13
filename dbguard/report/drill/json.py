"""`dbguard drill --format json` (pure). schema_version 1; keys are only added within a version. Times are
UTC ISO 8601; durations are seconds (float).

    schema_version  1
    kind            "drill"
    tool            {name, version}
    verdict         "passed" | "failed"; passed: bool
    reasons         [str]: why it failed, [] when it passed
    backup_id, source (password masked), dialect ("postgres" | "sqlite"), scope ("full" | "tables")
    taken_at        when the backup's data was read
    drilled_at      when the drill began
    rpo_seconds     the backup's age at drill time: what restoring it then would lose
    rto_seconds     float | null: from the start of the restore to verified data (null: the restore failed)
    invariants_seconds
    sandbox, policy str
    restored        bool: the dump restored and every count and hash equals the manifest's
    failure         str | null: why the restore failed
    tables          [{table, expected_rows, expected_hash, restored_rows: int|null, restored_hash: str|null,
                      matches: bool}]
    invariants      [{name, status: "pass"|"fail"|"skipped", passed, skipped, detail, columns: [str],
                      sample: [[value]]}]
    notes           [str]
    run_id          str | null: the journal's run id for this drill
"""

from __future__ import annotations

import json
from typing import Any

from dbguard import __version__
from dbguard.report.drill.model import DrillReport, TableCheck
from dbguard.report.drill.text import status
from dbguard.report.dryrun.json import json_safe
from dbguard.report.printable import printable, without_surrogates
from dbguard.targets.model import CheckResult

SCHEMA_VERSION = 1


def render(report: DrillReport) -> str:
    report = printable(report, without_surrogates)
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "drill",
        "tool": {"name": "dbguard", "version": __version__},
        "verdict": report.verdict.lower(),
        "passed": report.passed,
        "reasons": list(report.reasons),
        "backup_id": report.backup_id,
        "source": report.source,
        "dialect": report.dialect,
        "scope": report.scope,
        "taken_at": report.taken_at,
        "drilled_at": report.drilled_at,
        "rpo_seconds": round(report.backup_age_seconds, 6),
        "rto_seconds": None if report.restore_seconds is None else round(report.restore_seconds, 6),
        "invariants_seconds": round(report.invariants_seconds, 6),
        "sandbox": report.sandbox,
        "policy": report.policy,
        "restored": report.restored,
        "failure": report.failure,
        "tables": [_table(table) for table in report.tables],
        "invariants": [_invariant(check) for check in report.invariants],
        "notes": list(report.notes),
        "run_id": report.run_id,
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _table(table: TableCheck) -> dict[str, Any]:
    return {
        "table": table.table,
        "expected_rows": table.expected_rows,
        "expected_hash": table.expected_hash,
        "restored_rows": table.restored_rows,
        "restored_hash": table.restored_hash,
        "matches": table.matches,
    }


def _invariant(check: CheckResult) -> dict[str, Any]:
    return {
        "name": check.name,
        "status": {"SKIP": "skipped"}.get(status(check), status(check).lower()),
        "passed": check.passed,
        "skipped": check.skipped,
        "detail": check.detail,
        "columns": list(check.columns),
        "sample": [[json_safe(value) for value in row] for row in check.sample],
    }
