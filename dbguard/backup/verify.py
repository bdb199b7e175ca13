"""Prove a backup: the file is the one written, it parses, it restores, and the restored data is the data.

Only a backup that passes every step is VERIFIED. Anything else is FAILED with the reason, and `run`
refuses to go on without a VERIFIED backup.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dbguard.backup.store import FAILED, VERIFIED, BackupStore, Manifest, Verification, sha256_of, utc_now
from dbguard.dialects import Dialect
from dbguard.errors import BackupFailure, ConnectionFailure, UsageError
from dbguard.sandbox.base import empty_postgres
from dbguard.sandbox.catalog import DatabaseFacts
from dbguard.sandbox.pgtools import find_binary
from dbguard.targets.model import TableStats
from dbguard.targets.url import DatabaseUrl, mask

Progress = Callable[[str], None]
PG_METHOD = "sha256 and size, pg_restore --list, restore into a {provider} sandbox, row counts and hashes"
SQLITE_METHOD = "sha256 and size, integrity_check and foreign_key_check on the copy, row counts and hashes"


def verify_backup(
    store: BackupStore,
    manifest: Manifest,
    *,
    provider: str = "server",
    server_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Run every check, record VERIFIED or FAILED (with the reason) in the manifest, and return it."""
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
    except (BackupFailure, ConnectionFailure) as error:
        verification = Verification(FAILED, utc_now(), method, str(error))
    updated = replace(manifest, verification=verification)
    store.save(updated)
    return updated


def check_file(store: BackupStore, manifest: Manifest) -> Path:
    dump = store.directory / manifest.dump_file
    if not dump.is_file():
        raise BackupFailure(f"the dump file {dump} is missing")
    size = dump.stat().st_size
    if size != manifest.dump_bytes:
        raise BackupFailure(
            f"the dump file is {size} bytes, the manifest says {manifest.dump_bytes}: truncated or changed"
        )
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
    result = subprocess.run([str(pg_restore), "--list", str(dump)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupFailure(f"pg_restore --list cannot read the dump: {result.stderr.strip().splitlines()[-1:]}")
    lines = [line for line in result.stdout.splitlines() if not (scope == "tables" and " FK CONSTRAINT " in line)]
    listing = directory / "restore.list"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def pg_restore_into(pg_restore: Path, dump: Path, listing: Path, url: DatabaseUrl) -> None:
    args = [str(pg_restore), "--no-owner", "--no-privileges", "--exit-on-error", f"--use-list={listing}",
            f"--dbname={url.database}", str(dump)]  # fmt: skip
    result = subprocess.run(args, env={**os.environ, **url.libpq_env()}, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = mask(result.stderr.strip().splitlines()[-1]) if result.stderr.strip() else "no message"
        raise BackupFailure(f"the dump does not restore: {detail}")


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
    from dbguard.targets import postgres

    facts = manifest_facts(manifest)
    pg_restore = find_binary("pg_restore", facts.server_major, pg_bin)
    server = server_url or source_url(manifest)
    if server is None:
        raise BackupFailure(f"cannot tell the server of {manifest.target}: pass --sandbox-url or --sandbox local")
    with tempfile.TemporaryDirectory(prefix="dbguard-verify-") as scratch:
        listing = restore_list(pg_restore, dump, manifest.scope, Path(scratch))
        with empty_postgres(provider, facts, server, pg_bin, say) as (url, where, _marker):
            say(f"restoring {manifest.id} into {where}")
            pg_restore_into(pg_restore, dump, listing, url)
            restored = postgres.connect(url)
            try:
                say("counting and hashing the restored tables")
                return restored.table_stats(list(manifest.tables))
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
