"""`dbguard verify --format json`: one object, its shape versioned by `schema_version` (see README,
"dbguard verify"). Values from the database that JSON has no type for (numeric, dates) are strings."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from dbguard import __version__
from dbguard.monitor.model import CheckOutcome, Status, VerifyReport
from dbguard.report.dryrun.json import json_safe
from dbguard.report.printable import printable, without_surrogates

SCHEMA_VERSION = 1


def render(report: VerifyReport) -> str:
    return json.dumps(printable(to_dict(report), without_surrogates), indent=2, default=str) + "\n"


def to_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "dbguard", "version": __version__},
        "target": report.target,
        "dialect": report.dialect,
        "server_version": report.server_version,
        "policy": report.policy,
        "started_at": report.started_at,
        "duration_seconds": report.seconds,
        "sample_percent": report.sample_percent,
        "time_budget_seconds": report.time_budget_seconds,
        "verdict": report.verdict.value,
        "exit_code": report.exit_code,
        "summary": {"checks": len(report.outcomes), **{status.value: report.count(status) for status in Status}},
        "checks": [_check(outcome) for outcome in report.outcomes],
        "backup": asdict(report.backup) if report.backup is not None else None,
    }


def _check(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "check": outcome.check,
        "subject": outcome.subject,
        "table": outcome.table,
        "status": outcome.status.value,
        "detail": outcome.detail,
        "violations": outcome.violations,
        "sampled_percent": outcome.sampled_percent,
        "seconds": outcome.seconds,
        "sample": [_row(outcome.columns, row) for row in outcome.sample],
    }


def _row(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any] | list[Any]:
    """A row as {column: value} when its columns are named (and distinct), else as a list; values as
    dry-run's json_safe writes them (a NaN or Infinity float as text: json.dumps would write no JSON)."""
    values = [json_safe(value) for value in row]
    if len(columns) == len(row) and len(set(columns)) == len(columns):
        return dict(zip(columns, values, strict=True))
    return values
