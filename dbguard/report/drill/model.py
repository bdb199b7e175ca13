"""What a restore drill found: plain data, rendered by text.py, markdown.py and json.py.

Two measures, in seconds, name what a recovery from this backup would cost at the moment of the drill:

- **RPO** (recovery point): `backup_age_seconds`, the age of the backup's data when the drill began: every
  change made to the database after `taken_at` would be lost by restoring this backup now.
- **RTO** (recovery time): `restore_seconds`, measured from the start of the restore (the dump's sha256
  check) until the restored data was verified (counts and hashes equal the manifest's), the sandbox's
  creation included. The invariants run after that and are timed apart (`invariants_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dbguard.targets.model import UNCHECKED, CheckResult

PASSED, FAILED = "PASSED", "FAILED"


@dataclass(frozen=True)
class TableCheck:
    """One backed-up table: what the manifest says it held, and what the restore holds (None: not restored)."""

    table: str
    expected_rows: int
    expected_hash: str
    restored_rows: int | None
    restored_hash: str | None

    @property
    def matches(self) -> bool:
        return (self.restored_rows, self.restored_hash) == (self.expected_rows, self.expected_hash)


@dataclass(frozen=True)
class DrillReport:
    backup_id: str
    source: str  # the backed-up database's URL, password masked (as the manifest holds it)
    dialect: str  # "postgres" or "sqlite"
    scope: str  # "full", or "tables" (only the rows of the manifest's tables)
    taken_at: str  # when the backup's data was read: UTC, ISO 8601 (the time stamped in the backup id)
    drilled_at: str  # when the drill began: UTC, ISO 8601
    backup_age_seconds: float  # RPO at drill time: drilled_at - taken_at
    restore_seconds: float | None  # RTO: restore start to verified data; None when the restore failed
    invariants_seconds: float  # evaluating the policy's invariants on the restored data
    sandbox: str  # where the backup was restored, for people; "" if the restore never got that far
    policy: str  # the policy whose invariants ran
    tables: tuple[TableCheck, ...]  # every backed-up table; empty when the restore failed before counting
    invariants: tuple[CheckResult, ...]  # one per invariant of the policy; skipped ones say why
    failure: str | None = None  # why the restore failed (the dump's sha256, pg_restore, counts or hashes)
    notes: tuple[str, ...] = ()
    run_id: str | None = None  # the journal's run id of the drill record; None: not journaled

    @property
    def restored(self) -> bool:
        """The dump restored, and every table's count and hash equal the manifest's."""
        return self.failure is None

    @property
    def broken_invariants(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.invariants if not check.passed and not check.skipped)

    @property
    def passed(self) -> bool:
        """Restored exactly, and no invariant broken on the restored data."""
        return self.restored and not self.broken_invariants

    @property
    def verdict(self) -> str:
        return PASSED if self.passed else FAILED

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the drill failed, in order; empty when it passed."""
        broken = tuple(f"invariant {check.name!r} could not be evaluated on the restored data (the invariant's "
                       f"query or the sandbox session, not the backup, may be at fault): {check.detail}"
                       if check.detail.startswith(UNCHECKED) else
                       f"invariant {check.name!r} broken on the restored data: {check.detail}"
                       for check in self.broken_invariants)  # fmt: skip
        return ((self.failure,) if self.failure else ()) + broken
