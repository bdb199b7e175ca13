"""`dbguard verify --format prometheus`: the Prometheus text exposition format, built by prometheus_client
(for node_exporter's textfile collector, or a Pushgateway).

Every sample carries a `database` label (the database's name; SQLite: the file's path; never a password).
Per check (labels `check`, `subject`, `table`):
- `dbguard_verify_check_ok`: 1 passed, 0 failed or did not finish; absent for a SKIPPED check;
- `dbguard_verify_check_state`: a state set, pass / fail / skipped / incomplete;
- `dbguard_verify_violations`: the rows (or problems) found, where counted.
Per run: `dbguard_verify_checks{status}`, `dbguard_verify_exit_code`, `dbguard_verify_duration_seconds`,
`dbguard_verify_last_run_timestamp_seconds`, `dbguard_verify_sample_percent` (with --sample).
Backup: `dbguard_backup_age_seconds` (the newest verified full backup; absent when there is none),
`dbguard_backup_verified` (1 when there is one), and with --max-backup-age `dbguard_backup_max_age_seconds`
and `dbguard_backup_fresh`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Enum, Gauge, generate_latest

from dbguard.monitor.model import Status, VerifyReport

_CHECK_LABELS = ("database", "check", "subject", "table")


def render(report: VerifyReport) -> str:
    registry = CollectorRegistry()
    database = report.database

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ("database",)) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    ok = gauge("dbguard_verify_check_ok", "1 when the check passed, 0 when it failed or did not finish",
               _CHECK_LABELS)  # fmt: skip
    state = Enum("dbguard_verify_check_state", "The check's outcome", _CHECK_LABELS, registry=registry,
                 states=[status.value for status in Status])  # fmt: skip
    violations = gauge("dbguard_verify_violations", "Rows (or problems) the check found", _CHECK_LABELS)
    for outcome in report.outcomes:
        labels = (database, outcome.check, outcome.subject, outcome.table or "")
        state.labels(*labels).state(outcome.status.value)
        if outcome.status is not Status.SKIPPED:
            ok.labels(*labels).set(1 if outcome.status is Status.PASS else 0)
        if outcome.violations is not None:
            violations.labels(*labels).set(outcome.violations)
    checks = gauge("dbguard_verify_checks", "Checks by outcome", ("database", "status"))
    for status in Status:
        checks.labels(database, status.value).set(report.count(status))
    gauge("dbguard_verify_exit_code", "verify's exit code: 0 ok, 1 violations, 5 backup stale, 8 incomplete"
          ).labels(database).set(report.exit_code)  # fmt: skip
    gauge("dbguard_verify_duration_seconds", "How long verify took").labels(database).set(report.seconds)
    gauge("dbguard_verify_last_run_timestamp_seconds", "When verify finished, in seconds since the epoch"
          ).labels(database).set(report.finished_at)  # fmt: skip
    if report.sample_percent is not None:
        gauge("dbguard_verify_sample_percent", "Share of each table's pages the row-by-row checks read"
              ).labels(database).set(report.sample_percent)  # fmt: skip
    backup = report.backup
    if backup is not None:
        gauge("dbguard_backup_verified", "1 when a verified full backup of the database is in the store"
              ).labels(database).set(1 if backup.newest_verified_id else 0)  # fmt: skip
        if backup.age_seconds is not None:
            gauge("dbguard_backup_age_seconds", "Age of the newest verified full backup").labels(database).set(
                backup.age_seconds)
        if backup.max_age_seconds is not None:
            gauge("dbguard_backup_max_age_seconds", "The age a verified backup may have (--max-backup-age)"
                  ).labels(database).set(backup.max_age_seconds)  # fmt: skip
            gauge("dbguard_backup_fresh", "1 when the newest verified full backup is within --max-backup-age"
                  ).labels(database).set(0 if backup.stale else 1)  # fmt: skip
    return generate_latest(registry).decode("utf-8")
