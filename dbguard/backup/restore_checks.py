"""What a restore checks before it commits, for PostgreSQL and SQLite alike: the restored tables equal the
manifest, and the target's integrity checks pass (else BackupFailure: rolled back, the target unchanged)."""

from __future__ import annotations

from dataclasses import replace

from dbguard.backup.store import Manifest
from dbguard.backup.verify import compare
from dbguard.errors import BackupFailure
from dbguard.targets.model import CheckResult, TableStats, row_text


def compare_tables(manifest: Manifest, stats: dict[str, TableStats]) -> None:
    """The tables in `stats` have the manifest's counts and hashes (BackupFailure otherwise)."""
    compare(replace(manifest, tables={t: manifest.tables[t] for t in stats}), stats)


def refuse_failed_checks(checks: list[CheckResult]) -> None:
    """BackupFailure naming the first integrity check that failed, with up to 3 of its rows."""
    failed = [check for check in checks if not check.passed and not check.skipped]
    if failed:
        first = failed[0]
        shown = first.sample and "e.g." not in first.detail
        sample = f" (e.g. {'; '.join(row_text(first.columns, row) for row in first.sample[:3])})" if shown else ""
        hint = ("; restore the referencing tables too, or use a newer backup" if first.name == "foreign keys hold"
                else "")  # fmt: skip
        raise BackupFailure(f"the restore would break '{first.name}': {first.detail}{sample}{hint}; "
                            "rolled back, the target is unchanged")  # fmt: skip
