"""How fresh the newest verified backup of a database is, from the signed manifests of a backup store.

A backup counts only when its manifest is genuine (signed with the manifest key), it is a backup of the
database being verified (`DatabaseUrl.same_database`), it is a full backup (a table-scoped one, such as the
backup `run` takes of the tables it writes, holds the rows of those tables only: it cannot bring the
database back), its status is VERIFIED, and its dump file is there with the size the manifest says.
Reading the store changes nothing in it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dbguard.backup.store import VERIFIED, BackupStore
from dbguard.monitor.model import BackupFreshness
from dbguard.pipeline.drill import backups_of, taken_at
from dbguard.targets.url import DatabaseUrl


def backup_freshness(store: BackupStore, target: DatabaseUrl, max_age_seconds: float | None,
                     now: datetime | None = None) -> BackupFreshness:  # fmt: skip
    """The newest usable VERIFIED full backup of `target` in `store`, its age, and whether it is older than
    `max_age_seconds` (or missing); see BackupFreshness."""
    moment = now or datetime.now(UTC)
    mine, unreadable = backups_of(store, target)
    problems = [f"manifest {backup_id} cannot be trusted: {problem}" for backup_id, problem in unreadable]
    newest = mine[0] if mine else None
    newest_status = None
    if newest is not None:
        dump_problem = store.dump_problem(newest)
        newest_status = dump_problem[0] if dump_problem else newest.verification.status
        if newest_status != VERIFIED:
            problems.append(f"the newest backup, {newest.id}, is {newest_status}"
                            + (f": {newest.verification.reason}" if newest.verification.reason else ""))  # fmt: skip
    verified = next((m for m in mine if m.scope == "full" and m.verification.status == VERIFIED
                     and store.dump_problem(m) is None), None)  # fmt: skip
    scoped = next((m for m in mine if m.scope != "full" and m.verification.status == VERIFIED), None)
    if scoped is not None and (verified is None or mine.index(scoped) < mine.index(verified)):  # newer
        problems.append(f"{scoped.id} is a verified backup of only {len(scoped.tables)} table(s) (scoped): it "
                        "does not count, only a full backup brings the database back")  # fmt: skip
    # the age of the backup's data: from its snapshot (the time in its id), not from when the manifest was
    # written, which comes after a dump that may take hours
    age = (moment - taken_at(verified)).total_seconds() if verified else None
    stale = None if max_age_seconds is None else (age is None or age > max_age_seconds)
    return BackupFreshness(str(store.directory), verified.id if verified else None,
                           taken_at(verified).isoformat() if verified else None, age, newest.id if newest else None,
                           newest_status, max_age_seconds, stale, tuple(problems))  # fmt: skip
