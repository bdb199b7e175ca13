"""`dbguard backup verify --all`: every backup in the store verified again (see verify.py), one after the
other, for a scheduled job. One backup that cannot be read or verified is reported, and the others are
still verified."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbguard.backup.store import VERIFIED, BackupStore, Manifest
from dbguard.backup.verify import verify_backup
from dbguard.errors import DbguardError
from dbguard.sandbox.base import provider_for
from dbguard.targets.url import DatabaseUrl

UNREADABLE = "UNREADABLE"  # the manifest is missing its signature, edited, or not a manifest at all
UNFINISHED = "UNFINISHED"  # the checks could not run to their end: nothing learnt, the status was left as it was


@dataclass(frozen=True)
class BackupCheck:
    """One backup's verification: VERIFIED, FAILED (the backup is wrong), UNREADABLE or UNFINISHED."""

    backup_id: str
    status: str
    detail: str  # what was checked when VERIFIED; else why not
    seconds: float  # how long its verification took
    target: str = ""  # the backed-up database, password masked ("" when the manifest could not be read)

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED


def verify_all(
    store: BackupStore,
    *,
    provider: str = "server",
    server_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    progress: Callable[[int, int, str, str], None] | None = None,
) -> list[BackupCheck]:
    """Verify every backup of `store`, newest first; each VERIFIED or FAILED is recorded in its manifest
    (as `verify_backup` does). `progress(number, total, backup_id, message)` hears each step. Never raises
    for one backup's problem (it is that backup's BackupCheck); Ctrl-C stops the whole run."""
    entries = store.list()
    results = []
    for number, entry in enumerate(entries, 1):
        backup_id = entry[0] if isinstance(entry, tuple) else entry.id
        if progress is not None:
            progress(number, len(entries), backup_id, "verifying")
        if isinstance(entry, tuple):
            results.append(BackupCheck(backup_id, UNREADABLE, entry[1], 0.0))
            continue
        results.append(_verify_one(store, entry, provider, server_url, pg_bin, number, len(entries), progress))
    return results


def _verify_one(store: BackupStore, manifest: Manifest, provider: str, server_url: DatabaseUrl | None,
                pg_bin: Path | None, number: int, total: int,
                progress: Callable[[int, int, str, str], None] | None) -> BackupCheck:  # fmt: skip
    def say(message: str) -> None:
        if progress is not None:
            progress(number, total, manifest.id, message)

    started = time.perf_counter()
    try:
        updated = verify_backup(store, manifest, provider=provider_for(manifest.dialect, provider),
                                server_url=server_url, pg_bin=pg_bin, progress=say)  # fmt: skip
    except DbguardError as error:  # VerificationUnfinished, a manifest that cannot be saved, a bad --sandbox
        return BackupCheck(manifest.id, UNFINISHED, str(error), time.perf_counter() - started, manifest.target)
    verification = updated.verification
    detail = (verification.method or "") if verification.status == VERIFIED else (verification.reason or "")
    return BackupCheck(manifest.id, verification.status, detail, time.perf_counter() - started, manifest.target)
