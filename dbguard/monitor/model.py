"""What `dbguard verify` found on a live database: plain data, rendered by dbguard/report/verify/.

Every check ends in one of four states, and only PASS is a pass:
- PASS: the check ran to its end and found nothing (on a sample of the rows when `sampled_percent` is set);
- FAIL: the check found violations (rows, an invalid index, corruption, a broken invariant);
- SKIPPED: the check cannot run on this database (amcheck not installed, a row_count invariant that
  compares a script's before and after);
- INCOMPLETE: the check did not finish (the time budget ran out before or during it, the server refused
  the query): nothing is known, and it is never counted as a pass.

The verdict and the exit code follow from the outcomes and the backup's freshness (`VerifyReport.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dbguard.errors import EXIT_FINDINGS, EXIT_INCOMPLETE, BackupFailure


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"
    INCOMPLETE = "incomplete"


class Verdict(StrEnum):
    OK = "OK"
    VIOLATIONS = "VIOLATIONS"
    BACKUP_STALE = "BACKUP STALE"
    INCOMPLETE = "INCOMPLETE"


# Verdict -> exit code; documented in `dbguard verify --help` and the README.
EXIT_CODES = {Verdict.OK: 0, Verdict.VIOLATIONS: EXIT_FINDINGS, Verdict.BACKUP_STALE: BackupFailure.exit_code,
              Verdict.INCOMPLETE: EXIT_INCOMPLETE}  # fmt: skip


@dataclass(frozen=True)
class CheckOutcome:
    """One check on one object: a constraint, a foreign key, an index, a table, an invariant, the database."""

    check: str  # the kind: "check constraint", "foreign key", "domain check", "invalid index", "amcheck",
    #             "integrity_check", "foreign_key_check", "invariant"
    subject: str  # what was checked: "sales.store.city_short", "sales.pay_id_d", "main", an invariant's name
    table: str | None  # the table it is on, canonical ("schema.table"; SQLite: "table"); None for the database
    status: Status
    detail: str = ""
    violations: int | None = None  # offending rows (or problems) found; None when not counted
    sampled_percent: float | None = None  # the share of the table's pages read (TABLESAMPLE SYSTEM); None: all
    seconds: float = 0.0
    columns: tuple[str, ...] = ()  # the names of the sample's columns
    sample: tuple[tuple[Any, ...], ...] = ()  # up to 10 offending rows


@dataclass(frozen=True)
class BackupFreshness:
    """The newest verified full backup of the target in the store, and whether it is recent enough.

    `stale` is the alert: True when `max_age_seconds` is set and there is no usable verified full backup
    (none, its dump file missing or changed, only table-scoped ones) or the newest one is older; None when
    no threshold was given."""

    store: str  # the store's directory
    newest_verified_id: str | None
    newest_verified_at: str | None  # its snapshot's time (stamped in its id), ISO 8601, UTC
    age_seconds: float | None  # of the newest verified backup's data (since its snapshot), at the check
    newest_id: str | None  # the newest backup of the target, whatever its state
    newest_status: str | None  # VERIFIED, FAILED, UNVERIFIED, MISSING, SIZE MISMATCH
    max_age_seconds: float | None
    stale: bool | None
    problems: tuple[str, ...] = ()  # what else is wrong: unreadable manifests, a FAILED newest backup...


@dataclass(frozen=True)
class VerifyReport:
    target: str  # URL, password masked
    database: str  # the database's name (SQLite: the file's path), for labels; never a password
    dialect: str
    server_version: str
    started_at: str  # ISO 8601, UTC
    finished_at: float  # seconds since the epoch, for the last-run metric
    seconds: float
    sample_percent: float | None  # --sample
    time_budget_seconds: float | None  # --time-budget
    policy: str
    outcomes: tuple[CheckOutcome, ...]
    backup: BackupFreshness | None
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. what was not checked at all, and why

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    @property
    def sampled(self) -> bool:
        return any(outcome.sampled_percent is not None for outcome in self.outcomes)

    @property
    def verdict(self) -> Verdict:
        """VIOLATIONS beats BACKUP STALE beats INCOMPLETE: the worst news decides the exit code."""
        if self.count(Status.FAIL):
            return Verdict.VIOLATIONS
        if self.backup is not None and self.backup.stale:
            return Verdict.BACKUP_STALE
        if self.count(Status.INCOMPLETE):
            return Verdict.INCOMPLETE
        return Verdict.OK

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]
