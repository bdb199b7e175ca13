"""`dbguard verify`: integrity monitoring of a live database, read-only, with exit codes to alert on."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path

import typer

from dbguard.cli.backup import ManifestKeyOption, backup_directory
from dbguard.cli.base import OutputOption, PolicyOption, TargetOption, app, policy_from, stderr, writable_output
from dbguard.config import discover
from dbguard.errors import UsageError


class VerifyFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    PROMETHEUS = "prometheus"


@app.command("verify")
def verify_command(
    db: TargetOption,
    policy: PolicyOption = None,
    sample: float | None = typer.Option(
        None, "--sample", metavar="PERCENT",
        help="Row-by-row checks (CHECK constraints, foreign keys, domains) read only this share of each table's "
        "pages (TABLESAMPLE SYSTEM), for big tables; such checks pass only 'on a sample'. SQLite: quick_check "
        "instead of integrity_check.",
    ),
    time_budget: float | None = typer.Option(
        None, "--time-budget", metavar="SECONDS",
        help="Stop after this long: each check's statement_timeout is the time left, and a check cut short or not "
        "reached is INCOMPLETE (exit 8), never a pass.",
    ),
    backup_dir: Path | None = typer.Option(
        None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR",
        help="Backup store to find this database's newest verified backup in (default: .dbguard/backups).",
    ),
    manifest_key: ManifestKeyOption = None,
    max_backup_age: str | None = typer.Option(
        None, "--max-backup-age", envvar="DBGUARD_MAX_BACKUP_AGE", metavar="DURATION",
        help="Alert (exit 5) when the newest verified full backup is older than this (26h, 2d, 90m), or there is "
        "none (a table-scoped backup does not count).",
    ),
    output_format: VerifyFormat = typer.Option(
        VerifyFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format: text, json or prometheus."
    ),
    output: OutputOption = None,
) -> None:
    """Check a live database's integrity, read-only, for monitoring: every validated CHECK constraint and
    foreign key row by row (partitions included), domain constraints, invalid indexes, amcheck's
    bt_index_check where the extension is installed (PostgreSQL); integrity_check, foreign_key_check and
    CHECK clauses (SQLite); the policy's invariants; and the age of the newest verified full backup. The target
    is opened read-only and nothing is written to it.

    Exit codes (the worst finding decides):

    \b
      0  every check passed (on a sample, with --sample)
      1  a violation: rows break a constraint or an invariant, an index is INVALID, corruption
      2  usage error
      4  the database cannot be reached
      5  no verified full backup younger than --max-backup-age
      8  incomplete: a check did not finish (--time-budget, a lock, a refused query); nothing failed

    Example:

    \b
        dbguard verify --db postgresql://monitor@db1:5432/shop
        dbguard verify --db $URL --max-backup-age 26h --time-budget 600 --sample 10
        dbguard verify --db $URL --format prometheus -o /var/lib/node_exporter/textfile/dbguard.prom
        dbguard verify --db sqlite:///var/lib/app/app.db --format json
    """
    from dbguard.backup.store import BackupStore
    from dbguard.monitor.verify import VerifyOptions, verify_database
    from dbguard.targets.url import DatabaseUrl

    writable_output(output)
    config = discover()
    url = DatabaseUrl.parse(db)
    key = manifest_key or (Path(config.manifest_key) if config.manifest_key else None)
    store = BackupStore(backup_directory(backup_dir, config), key)
    options = VerifyOptions(sample_percent=sample, time_budget_seconds=time_budget, store=store,
                            max_backup_age_seconds=_seconds(max_backup_age))  # fmt: skip
    with stderr.status("verify"):
        report = verify_database(url, policy_from(policy, config), options)
    if output_format is VerifyFormat.JSON:
        from dbguard.report.verify import json as renderer
    elif output_format is VerifyFormat.PROMETHEUS:
        from dbguard.report.verify import prometheus as renderer  # type: ignore[no-redef]
    else:
        from dbguard.report.verify import text

        color = output is None and sys.stdout.isatty()
        _emit(text.render(report, color=color), output)
        raise typer.Exit(report.exit_code)
    _emit(renderer.render(report), output)
    raise typer.Exit(report.exit_code)


def _seconds(duration: str | None) -> float | None:
    if duration is None:
        return None
    from dbguard.sandbox.leftovers import parse_duration

    try:
        return parse_duration(duration).total_seconds()
    except UsageError:
        raise UsageError(f"--max-backup-age {duration!r} is not a duration: use e.g. 26h, 2d, 90m or 1h30m") from None


def _emit(text: str, output: Path | None) -> None:
    """stdout, or `output` replaced whole (a textfile collector never reads half a file)."""
    if output is None:
        sys.stdout.write(text)
        return
    temporary = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        temporary.write_text(text, "utf-8")
        os.replace(temporary, output)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write the report to {output}: {error.strerror}") from None
