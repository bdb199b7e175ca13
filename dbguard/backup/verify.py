"""Prove a backup: the file is the one written, it parses, it restores, and the restored data is the data.

Only a backup that passes every step is VERIFIED. A backup shown to be wrong is FAILED with the reason,
and `run` refuses to go on without a VERIFIED backup. A verification that cannot finish (the sandbox
cannot be made or is lost, pg_restore is killed) says nothing about the backup: its status is left as
it was, and the command fails with the reason (VerificationUnfinished).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg

from dbguard.backup.store import FAILED, VERIFIED, BackupStore, Manifest, Verification, sha256_of, utc_now
from dbguard.dialects import Dialect
from dbguard.errors import BackupFailure, ConnectionFailure, UsageError
from dbguard.sandbox import children
from dbguard.sandbox.base import empty_postgres
from dbguard.sandbox.catalog import DatabaseFacts
from dbguard.sandbox.marker import scratch_directory
from dbguard.sandbox.pgtools import find_binary, tool_error
from dbguard.targets.model import TableStats
from dbguard.targets.postgres import PostgresTarget, error_text
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]
PG_METHOD = "sha256 and size, pg_restore --list, restore into a {provider} sandbox, row counts and hashes"
SQLITE_METHOD = "sha256 and size, integrity_check and foreign_key_check on the copy, row counts and hashes"


class VerificationUnfinished(BackupFailure):
    """A check could not run to its end (a tool was killed, the sandbox could not be made or went away):
    this says nothing about the backup itself."""


def verify_backup(
    store: BackupStore,
    manifest: Manifest,
    *,
    provider: str = "server",
    server_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Run every check, record VERIFIED or FAILED (with the reason) in the manifest, and return it.

    Raises VerificationUnfinished, recording nothing, when the checks cannot run to their end."""
    say = progress or (lambda _message: None)
    postgres = manifest.dialect == Dialect.POSTGRES.value
    method = PG_METHOD.format(provider=provider) if postgres else SQLITE_METHOD
    try:
        dump = check_file(store, manifest)
        if postgres:
            restored = _restore_postgres(dump, manifest, provider, server_url, pg_bin, say)
        else:
            restored = _open_sqlite_copy(dump)
        compare(manifest, restored)
        verification = Verification(VERIFIED, utc_now(), method)
    except (VerificationUnfinished, ConnectionFailure, psycopg.OperationalError) as error:
        why = error_text(error) if isinstance(error, psycopg.Error) else str(error)
        raise VerificationUnfinished(f"verification of backup {manifest.id} could not finish: {why}; the "
                                     f"backup is still {manifest.verification.status}: run `dbguard backup verify "
                                     f"{manifest.id}` again") from None  # fmt: skip
    except BackupFailure as error:
        verification = Verification(FAILED, utc_now(), method, str(error))
    updated = replace(manifest, verification=verification)
    store.save(updated)
    return updated


def check_file(store: BackupStore, manifest: Manifest) -> Path:
    """The dump's path, once its size and sha256 match the manifest (BackupFailure otherwise)."""
    problem = store.dump_problem(manifest)
    if problem is not None:
        raise BackupFailure(problem[1])
    dump = store.directory / manifest.dump_file
    if sha256_of(dump) != manifest.dump_sha256:
        raise BackupFailure("the dump file's sha256 does not match the manifest: it was changed or corrupted")
    return dump


def compare(manifest: Manifest, restored: dict[str, TableStats]) -> None:
    wrong = []
    for table, image in manifest.tables.items():
        got = restored.get(table)
        if got is None:
            wrong.append(f"{table} is missing")
        elif (got.rows, got.hash) != (image.rows, image.hash):
            wrong.append(f"{table} has {got.rows} rows, hash {got.hash}; the manifest says {image.rows}, {image.hash}")
    if wrong:
        raise BackupFailure("the restored data differs from the backup: " + "; ".join(wrong[:5]))


def restore_list(pg_restore: Path, dump: Path, scope: str, directory: Path) -> Path:
    """`pg_restore --list`, which parses the whole archive's table of contents. A scoped backup's rows of
    referenced tables were left out, so its foreign keys are left out of a restore too."""
    result = children.run([pg_restore, "--list", dump])
    _unless_killed(result.returncode, pg_restore)
    if result.returncode != 0:
        raise BackupFailure(f"pg_restore --list cannot read the dump: {tool_error(result.stderr, 'pg_restore')}")
    lines = [line for line in result.stdout.splitlines() if not (scope == "tables" and " FK CONSTRAINT " in line)]
    listing = directory / "restore.list"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def pg_restore_into(pg_restore: Path, dump: Path, listing: Path, url: DatabaseUrl) -> None:
    args: list[str | Path] = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
                              f"--use-list={listing}", f"--dbname={url.database}", dump]  # fmt: skip
    result = children.run(args, env=url.libpq_env())
    _unless_killed(result.returncode, pg_restore)
    if result.returncode != 0:
        raise BackupFailure(f"the dump does not restore: {tool_error(result.stderr, 'pg_restore')}")


def _unless_killed(returncode: int, program: Path) -> None:
    """A program killed by a signal (by a person, the OOM killer, a timeout) never got to judge the dump."""
    signal_name = children.killed_by(returncode)
    if signal_name is not None:
        raise VerificationUnfinished(f"{program.name} was killed by {signal_name}")


def manifest_facts(manifest: Manifest) -> DatabaseFacts:
    """What a sandbox needs to hold this backup faithfully: the server's major version and the locale."""
    locale = manifest.locale or {}
    return DatabaseFacts(int(manifest.server_version.split(".")[0]), locale.get("encoding", "UTF8"),
                         locale.get("lc_collate", "C"), locale.get("lc_ctype", "C"))  # fmt: skip


def source_url(manifest: Manifest) -> DatabaseUrl | None:
    """The backed-up database's URL, without its password (never stored): libpq finds it in PGPASSWORD or
    .pgpass, if it is needed."""
    try:
        return DatabaseUrl.parse(manifest.target.replace(":***@", "@"))
    except UsageError:
        return None


def _restore_postgres(
    dump: Path, manifest: Manifest, provider: str, server_url: DatabaseUrl | None, pg_bin: Path | None,
    say: Progress,
) -> dict[str, TableStats]:  # fmt: skip
    with restored_postgres(dump, manifest, provider, server_url, pg_bin, say) as (restored, _where):
        say("counting and hashing the restored tables")
        return restored.table_stats(list(manifest.tables))


@contextmanager
def restored_postgres(
    dump: Path, manifest: Manifest, provider: str, server_url: DatabaseUrl | None, pg_bin: Path | None,
    say: Progress,
) -> Iterator[tuple[PostgresTarget, str]]:  # fmt: skip
    """The dump restored into a new, empty sandbox database (made by `provider`; "server" makes it on
    `server_url`, else on the backup's own server): yields a session on it and where it is, for people.
    The session is closed and the sandbox removed when the block ends, however it ends. Raises
    BackupFailure when the dump does not restore, VerificationUnfinished when pg_restore is killed."""
    from dbguard.targets import postgres

    facts = manifest_facts(manifest)
    pg_restore = find_binary("pg_restore", facts.server_major, pg_bin)
    server = server_url or source_url(manifest)
    if server is None:
        raise BackupFailure(f"cannot tell the server of {manifest.target}: pass --sandbox-url or --sandbox local")
    with scratch_directory() as scratch:
        listing = restore_list(pg_restore, dump, manifest.scope, Path(scratch))
        with empty_postgres(provider, facts, server, pg_bin, say) as (url, where, _marker):
            say(f"restoring {manifest.id} into {where}")
            pg_restore_into(pg_restore, dump, listing, url)
            restored = postgres.connect(url)
            try:
                yield restored, where
            finally:
                restored.close()


def _open_sqlite_copy(dump: Path) -> dict[str, TableStats]:
    from dbguard.targets import sqlite

    copy = sqlite.connect(DatabaseUrl.parse(f"sqlite:///{dump.resolve()}"))
    try:
        failed = [c for c in copy.integrity_checks(copy.all_tables()) if not c.passed]
        if failed:
            raise BackupFailure(f"the copy fails {failed[0].name}: {failed[0].detail}")
        return copy.table_stats(copy.all_tables())
    finally:
        copy.close()
