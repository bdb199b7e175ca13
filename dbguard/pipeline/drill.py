"""`dbguard drill`: a timed restore drill. The newest (or a chosen) backup is restored into a sandbox, never
into the database it was taken from; the restored tables' counts and hashes must equal the manifest's,
and the policy's invariants run on the restored data. The result (RTO and RPO, in seconds: see
dbguard/report/drill/model.py) goes to the journal.

The backed-up database is never read or written: the drill reads the backup store, and writes only the
sandbox (removed afterwards, on Ctrl-C and SIGTERM too) and the journal. The "server" sandbox is made
and dropped through a session on `target`'s URL, as dry-run's is, unless `sandbox_url` names a server.
The manifest is not changed: `dbguard backup verify` records verification results, the drill records
its own in the journal.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from dbguard.backup.store import BackupStore, Manifest
from dbguard.backup.verify import VerificationUnfinished, check_file, restored_postgres, source_url
from dbguard.dialects import Dialect
from dbguard.errors import BackupFailure, UsageError
from dbguard.guard.invariants import evaluate
from dbguard.journal.entries import Drill, current_command
from dbguard.journal.journal import Journal, new_run_id
from dbguard.policy.policy import Invariant, Policy
from dbguard.report.drill.model import DrillReport, TableCheck
from dbguard.sandbox.base import provider_for
from dbguard.sandbox.marker import scratch_directory
from dbguard.targets.model import CheckResult, TableStats, Target
from dbguard.targets.postgres import error_text
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]


class DrillFailed(BackupFailure):
    """A drill that ran and failed (exit 5): the backup did not restore exactly, or an invariant broke on
    the restored data. `drill` returns such a report; the CLI raises this once the report is out."""


EXIT_DRILL_FAILED = DrillFailed.exit_code
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d+)?Z-")


@dataclass(frozen=True)
class DrillOptions:
    provider: str = "server"  # server, local, container; SQLite backups always restore to a scratch file
    sandbox_url: DatabaseUrl | None = None  # the server the "server" provider makes its database on
    pg_bin: Path | None = None


def drill(
    target: DatabaseUrl | None,
    store: BackupStore,
    policy: Policy,
    *,
    backup_id: str | None = None,
    journal: Journal | None = None,
    options: DrillOptions = DrillOptions(),
    progress: Progress | None = None,
) -> DrillReport:
    """Restore a backup into a sandbox, time it, verify it and run `policy`'s invariants on it.

    The backup: `backup_id` (or any unique start of one, as `BackupStore.resolve` takes it), else the newest
    full backup in `store` whose manifest names `target` as its source database (the newest table-scoped
    one when there is no full one; the report's notes say so). With both, the backup must be
    of `target`. The "server" provider makes its sandbox database on `options.sandbox_url`, else on
    `target`'s server, else on the backup's own server.

    Returns the report, passed or failed (a dump whose sha256 differs, a restore that fails, counts or
    hashes that differ, an invariant broken on the restored data); with `journal`, the result is appended
    to it first (report.run_id says under which run id). A failed drill is data, not an exception.

    Raises UsageError (exit 2) for neither target nor backup_id, an unknown or ambiguous id, a backup of
    another database; BackupFailure (exit 5) when the store holds no backup of `target`;
    VerificationUnfinished (5) or ConnectionFailure (4) when the restore could not run to its end (that
    says nothing about the backup: nothing is journaled); JournalFailure (5) when the journal cannot be
    written (checked before the restore starts).
    """
    say = progress or (lambda _message: None)
    manifest, notes = choose_backup(store, target, backup_id)
    if journal is not None:
        journal.ensure_writable()
    drilled = datetime.now(UTC)
    taken = taken_at(manifest)
    say(f"drilling backup {manifest.id} ({manifest.dialect}, taken {taken.isoformat(timespec='seconds')})")
    started = time.perf_counter()
    restore_seconds: float | None = None
    invariants: list[CheckResult] = []
    invariants_seconds = 0.0
    restored: Mapping[str, TableStats] = {}
    sandbox, failure = "", None
    try:
        dump = check_file(store, manifest)
        with _restored(store, manifest, dump, target, options, say) as (copy, sandbox):
            say("counting and hashing the restored tables")
            restored = copy.table_stats(list(manifest.tables))
            mismatched = [check.table for check in _table_checks(manifest, restored) if not check.matches]
            if mismatched:
                raise BackupFailure(f"the restored data differs from the backup in {len(mismatched)} table(s): "
                                    + ", ".join(mismatched[:5]))  # fmt: skip
            restore_seconds = time.perf_counter() - started
            if policy.invariants:
                say(f"evaluating {len(policy.invariants)} invariant(s) on the restored data")
            invariants_started = time.perf_counter()
            invariants = evaluate_on_restore(policy.invariants, copy, manifest)
            invariants_seconds = time.perf_counter() - invariants_started
    except VerificationUnfinished:  # a killed pg_restore, a lost sandbox: nothing learnt about the backup
        raise
    except psycopg.OperationalError as error:
        why = error_text(error)
        raise VerificationUnfinished(f"the drill of backup {manifest.id} could not finish: {why}") from None
    except BackupFailure as error:
        failure = str(error)
    if manifest.scope == "tables":
        notes.append(f"scoped backup: only the rows of its {len(manifest.tables)} table(s) were restored; an "
                     "invariant over another table is skipped")  # fmt: skip
    report = DrillReport(
        backup_id=manifest.id, source=manifest.target, dialect=manifest.dialect, scope=manifest.scope,
        taken_at=taken.isoformat(), drilled_at=drilled.isoformat(),
        backup_age_seconds=max(0.0, (drilled - taken).total_seconds()), restore_seconds=restore_seconds,
        invariants_seconds=invariants_seconds, sandbox=sandbox, policy=policy.name,
        tables=_table_checks(manifest, restored),
        invariants=tuple(invariants), failure=failure, notes=tuple(notes),
    )  # fmt: skip
    if journal is None:
        return report
    exit_code = 0 if report.passed else EXIT_DRILL_FAILED
    run_id = new_run_id()
    journal.append(run_id, Drill.from_report(report, exit_code, current_command()))
    return replace(report, run_id=run_id)


def choose_backup(store: BackupStore, target: DatabaseUrl | None, backup_id: str | None) -> tuple[Manifest, list[str]]:
    """The manifest to drill (see `drill`), and notes on what was passed over (unreadable manifests)."""
    if backup_id is not None:
        manifest = store.load(store.resolve(backup_id))
        if target is not None and not same_database(manifest, target):
            raise UsageError(f"backup {manifest.id} is of {manifest.target}, not of {target}: drop --db, or "
                             "choose a backup of that database")  # fmt: skip
        return manifest, []
    if target is None:
        raise UsageError("a drill needs the database whose newest backup it restores (--db URL), or --backup ID")
    ours, unreadable = backups_of(store, target)
    notes = [f"{len(unreadable)} manifest(s) in {store.directory} could not be read and were passed over (see "
             "`dbguard backup list`)"] if unreadable else []  # fmt: skip
    if not ours:
        raise BackupFailure(f"no backup of {target} in {store.directory}: nothing to drill (take one with "
                            "`dbguard backup --db URL`)")  # fmt: skip
    newest = ours[0]
    # A table-scoped backup (run takes one of the tables it writes) holds those rows only: its RTO and RPO
    # say nothing of a recovery of the database. The newest full backup is the one a recovery would use.
    full = [manifest for manifest in ours if manifest.scope == "full"]
    if not full:
        notes.append(f"no full backup of {target} in {store.directory}: this table-scoped backup is the newest; "
                     "the database could not be recovered whole from it")  # fmt: skip
        return newest, notes
    chosen = full[0]
    if chosen is not newest:
        notes.append(f"the newest full backup was drilled; a newer table-scoped backup ({newest.id}) was passed "
                     "over: it holds the rows of some tables only (`--backup ID` drills it)")  # fmt: skip
    return chosen, notes


def backups_of(store: BackupStore, target: DatabaseUrl) -> tuple[list[Manifest], list[tuple[str, str]]]:
    """The backups in `store` of the database `target` (`same_database`), newest first by `taken_at` (then
    by id), and the manifests that could not be read or trusted, as (id, the problem)."""
    entries = store.list()
    unreadable = [entry for entry in entries if isinstance(entry, tuple)]
    ours = [entry for entry in entries if isinstance(entry, Manifest) and same_database(entry, target)]
    return sorted(ours, key=lambda manifest: (taken_at(manifest), manifest.id), reverse=True), unreadable


def taken_at(manifest: Manifest) -> datetime:
    """When the backup's data was read, UTC: the time stamped in its id (taken once the snapshot was
    exported, on PostgreSQL; before the copy, on SQLite), else the manifest's `created_at`."""
    match = _STAMP.match(manifest.id)
    if match:
        day, hours, minutes, seconds, fraction = match.groups()
        return datetime.fromisoformat(f"{day}T{hours}:{minutes}:{seconds}{fraction or ''}+00:00")
    return datetime.fromisoformat(manifest.created_at).astimezone(UTC)


def evaluate_on_restore(invariants: Sequence[Invariant], restored: Target, manifest: Manifest) -> list[CheckResult]:
    """Each invariant on the restored data, in order. A row-count bound limits a script's change, which a
    drill has none of; and on a scoped backup, an invariant over a table whose rows the backup left out
    (for an SQL invariant: a table its query reads, as dbguard's parser finds them, or any query the
    parser cannot read) would judge an empty table, passing or failing for nothing: all are skipped, and
    say so. A skipped invariant never counts as passed."""
    backed_up = set(manifest.tables) | set(manifest.partitions)
    results: dict[int, CheckResult] = {}
    for index, invariant in enumerate(invariants):
        if invariant.kind == "row_count":
            results[index] = CheckResult(invariant.name, True, "a bound on a script's row-count change: a drill "
                                         "changes nothing", skipped=True)  # fmt: skip
        elif manifest.scope == "tables" and (missing := _left_out(invariant, restored, backed_up)):
            results[index] = CheckResult(invariant.name, True, f"it reads {missing}, whose rows are not in this "
                                         "scoped backup", skipped=True)  # fmt: skip
    evaluated = iter(evaluate([i for n, i in enumerate(invariants) if n not in results], restored, {}, {}))
    return [results[n] if n in results else next(evaluated) for n in range(len(invariants))]


def _left_out(invariant: Invariant, restored: Target, backed_up: set[str]) -> str | None:
    """What `invariant` reads that a scoped backup does not hold, or None when it holds all of it."""
    if invariant.kind != "sql":
        names = [invariant.table] if invariant.table else []
    else:
        from dbguard.sql.parse import parse_script

        script = parse_script(invariant.sql or "", restored.url.dialect, invariant.name)
        if not script.statements or not all(s.recognized for s in script.statements):
            return "tables dbguard cannot tell from its query"
        names = sorted({name for s in script.statements for name in s.facts.tables_read})
    canonical = restored.resolve(names)
    outside = [name for name in names if canonical.get(name) not in backed_up]
    return ", ".join(outside) or None


@contextmanager
def _restored(store: BackupStore, manifest: Manifest, dump: Path, target: DatabaseUrl | None,
              options: DrillOptions, say: Progress) -> Iterator[tuple[Target, str]]:  # fmt: skip
    """The backup restored into a sandbox: a session on it, and where it is. Removed when the block ends."""
    if manifest.dialect == Dialect.SQLITE.value:
        if options.sandbox_url is not None:
            raise UsageError("--sandbox-url does not apply to a SQLite backup: it is restored to a scratch file")
        with _restored_sqlite(manifest, dump, say) as restored:
            yield restored
        return
    provider = provider_for(Dialect.POSTGRES, options.provider)
    server = options.sandbox_url or (target if target is not None else source_url(manifest))
    with restored_postgres(dump, manifest, provider, server, options.pg_bin, say) as (copy, where):
        yield copy, f"{provider} sandbox {where}"


@contextmanager
def _restored_sqlite(manifest: Manifest, dump: Path, say: Progress) -> Iterator[tuple[Target, str]]:
    from dbguard.targets import sqlite

    with scratch_directory() as scratch:
        path = scratch / f"{manifest.id}.sqlite"
        say(f"restoring {manifest.id} to {path}")
        try:
            shutil.copyfile(dump, path)
        except OSError as error:
            raise BackupFailure(f"cannot copy the dump to {path}: {error.strerror}") from None
        copy = sqlite.connect(DatabaseUrl.parse(f"sqlite:///{path}"))
        try:
            failed = [check for check in copy.integrity_checks(copy.all_tables()) if not check.passed]
            if failed:
                raise BackupFailure(f"the restored file fails {failed[0].name}: {failed[0].detail}")
            yield copy, f"scratch file {path}"
        finally:
            copy.close()


def same_database(manifest: Manifest, target: DatabaseUrl) -> bool:
    """Whether `manifest` is a backup of `target` (`DatabaseUrl.same_database`); False when its URL cannot
    be read (it names no database dbguard can reach)."""
    source = source_url(manifest)
    return source is not None and source.same_database(target)


def _table_checks(manifest: Manifest, restored: Mapping[str, TableStats]) -> tuple[TableCheck, ...]:
    """Each backed-up table's counts and hash in the manifest beside those of its restored copy (None: absent)."""
    return tuple(_table_check(table, image.rows, image.hash, restored.get(table))
                 for table, image in manifest.tables.items())  # fmt: skip


def _table_check(table: str, rows: int, digest: str, restored: TableStats | None) -> TableCheck:
    return TableCheck(table, rows, digest, restored.rows if restored else None, restored.hash if restored else None)
