"""`dbguard backup` (take, list, verify) and `dbguard restore`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dbguard.cli.base import Guarded, SandboxKind, app, stderr
from dbguard.config import Config, discover
from dbguard.errors import BackupFailure, UsageError

if TYPE_CHECKING:
    from dbguard.backup.store import BackupStore
    from dbguard.targets.url import DatabaseUrl

backup_app = typer.Typer(
    cls=Guarded,
    invoke_without_command=True,
)
app.add_typer(backup_app, name="backup")

DEFAULT_BACKUP_DIR = ".dbguard/backups"
ManifestKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest-key",
        envvar="DBGUARD_MANIFEST_KEY",
        help="The key manifests are signed with (default: ~/.config/dbguard/manifest.key, made on first use).",
    ),
]


def _store(backup_dir: Path | None, manifest_key: Path | None) -> BackupStore:
    """The store from the options, else the environment (typer reads it), else the config file, else the default."""
    from dbguard.backup.store import BackupStore

    config = discover()
    key = manifest_key or (Path(config.manifest_key) if config.manifest_key else None)
    return BackupStore(backup_directory(backup_dir, config), key)


def backup_directory(option: Path | None, config: Config) -> Path:
    """The store's directory: `option` (--backup-dir or DBGUARD_BACKUP_DIR), else the config's, else the default."""
    return option or Path(config.backup_dir or DEFAULT_BACKUP_DIR)


def _backup_progress() -> Any:
    return stderr.status("backup")


@backup_app.callback()
def backup(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", envvar="DBGUARD_DB", help="The database to back up."),
    tables: str | None = typer.Option(
        None, "--tables", help="Comma-separated tables (PostgreSQL): the whole schema, but only their rows."
    ),
    backup_dir: Path | None = typer.Option(
        None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help=f"Backup store (default: {DEFAULT_BACKUP_DIR})."
    ),
    manifest_key: ManifestKeyOption = None,
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Restore-test the backup right away."),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the restore test happens."
    ),
    sandbox_url: str | None = typer.Option(
        None, "--sandbox-url", envvar="DBGUARD_SANDBOX_URL", help="Server for the restore test's scratch database."
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_dump."),
    compress: int = typer.Option(
        1, "--compress", min=0, max=9, help="pg_dump's gzip level: 1 (default) is fast; 9 is small; 0 is none."
    ),
) -> None:
    """Back up a database from one consistent snapshot, with row counts and content hashes taken in that
    same snapshot, then prove the backup by restoring it into a sandbox and comparing. Exits 0 when the
    backup is VERIFIED, 2 on a usage error, 4 when the database cannot be reached, 5 when the backup or
    its verification fails.

    Examples:

    \b
        dbguard backup --db $URL                         # full logical backup
        dbguard backup --db $URL --tables stock,orders   # scoped
        dbguard backup list
        dbguard backup verify 2026-11-27T10-00-00.000000Z-stock
    """
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise UsageError("dbguard backup needs --db URL (or DBGUARD_DB); see dbguard backup --help")
    from dbguard.backup.take import take_backup
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()
    store = _store(backup_dir, manifest_key)
    chosen = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    from dbguard.cli.cleanup import mention_stale_leftovers

    mention_stale_leftovers(DatabaseUrl.parse(sandbox_url or db), store.directory)
    with _backup_progress() as status:
        manifest = take_backup(
            DatabaseUrl.parse(db), store, chosen, verify=verify, provider=sandbox.value,
            sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None, pg_bin=pg_bin,
            progress=lambda message: status.update(message),
            compress=compress,
        )  # fmt: skip
    _print_manifest(manifest, store.directory)


@backup_app.command("list")
def backup_list(
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    manifest_key: ManifestKeyOption = None,
) -> None:
    """List the backups in the store, newest first, with their verification status.

    Example:

    \b
        dbguard backup list --backup-dir /var/backups/dbguard
    """
    store = _store(backup_dir, manifest_key)
    entries = store.list()
    if not entries:
        typer.echo(f"no backups in {store.directory}")
        return
    rows: list[tuple[str, ...]] = [("id", "status", "tables", "size", "target")]
    for entry in entries:
        if isinstance(entry, tuple):
            rows.append((entry[0], "UNREADABLE", "", "", entry[1]))
            continue
        size = f"{entry.dump_bytes / 1024 / 1024:.1f} MiB"
        problem = store.dump_problem(entry)
        status, where = problem if problem else (entry.verification.shown, entry.target)
        rows.append((entry.id, status, str(len(entry.tables)), size, where))
    for line in _aligned(rows):
        typer.echo(line)


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """Columns two spaces apart, every cell whole (ids are copied from here) and one line per row, for
    grep: the last column runs on, however long, where a terminal-sized table would cut or wrap it."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for *cells, last in rows:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        lines.append("  ".join([*padded, last.replace("\n", " ")]).rstrip())
    return lines


@backup_app.command("verify")
def backup_verify(
    backup_id: str | None = typer.Argument(
        None, help="A backup id from `dbguard backup list`, or its start (unique); or --all."
    ),
    every: bool = typer.Option(False, "--all", help="Verify every backup in the store, one after the other."),
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    manifest_key: ManifestKeyOption = None,
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the restore test happens."
    ),
    sandbox_url: str | None = typer.Option(
        None,
        "--sandbox-url",
        envvar="DBGUARD_SANDBOX_URL",
        help="Server for the scratch database (default: the backup's own server, password from PGPASSWORD).",
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_restore."),
) -> None:
    """Restore-test an existing backup again: sha256 and size, pg_restore --list, a restore into a
    sandbox, and row counts and hashes equal to the manifest's. The result (VERIFIED or FAILED, with the
    reason) is recorded in the manifest. Exits 0 when VERIFIED, 2 on a usage error, 5 if not.

    --all verifies every backup in the store, for a scheduled job: each one's progress, then a table of
    every result. A manifest that cannot be read (edited, unsigned) is UNREADABLE, a check that could not
    finish is UNFINISHED; the others are still verified. Exits 5 if any backup is not VERIFIED, or the
    store holds none.

    Examples:

    \b
        dbguard backup verify 2026-11-27T10-00-00.000000Z-stock --sandbox local
        dbguard backup verify 2026-11-27T10:00    # any start of an id that names one backup
        dbguard backup verify --all --backup-dir /var/backups/dbguard   # nightly, from cron
    """
    from dbguard.backup.verify import verify_backup
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    if every == (backup_id is not None):
        raise UsageError("dbguard backup verify takes a backup id or --all (one of them)")
    install_sigterm_handler()
    store = _store(backup_dir, manifest_key)
    server_url = DatabaseUrl.parse(sandbox_url) if sandbox_url else None
    if every:
        _verify_all(store, sandbox.value, server_url, pg_bin)
        return
    assert backup_id is not None
    manifest = store.load(store.resolve(backup_id))
    from dbguard.sandbox.base import provider_for

    provider = provider_for(manifest.dialect, sandbox.value)
    with _backup_progress() as status:
        manifest = verify_backup(
            store, manifest, provider=provider, server_url=server_url,
            pg_bin=pg_bin, progress=lambda message: status.update(message),
        )  # fmt: skip
    _print_manifest(manifest, store.directory)


def _verify_all(store: BackupStore, provider: str, server_url: DatabaseUrl | None, pg_bin: Path | None) -> None:
    from dbguard.backup.verify_all import verify_all

    with _backup_progress() as status:

        def say(number: int, total: int, backup_id: str, message: str) -> None:
            status.update(f"[{number}/{total}] {backup_id}: {message}")
            if message == "verifying":
                stderr.print(f"dbguard: [{number}/{total}] verifying {backup_id}", highlight=False, soft_wrap=True)

        results = verify_all(store, provider=provider, server_url=server_url, pg_bin=pg_bin, progress=say)
    if not results:
        raise BackupFailure(f"no backups in {store.directory}: nothing was verified (is --backup-dir right?)")
    rows: list[tuple[str, ...]] = [("id", "status", "seconds", "target", "detail")]
    rows += [(r.backup_id, r.status, f"{r.seconds:.1f}", r.target or "-", r.detail) for r in results]
    for line in _aligned(rows):
        typer.echo(line)
    failed = [r.backup_id for r in results if not r.ok]
    if failed:
        raise BackupFailure(f"{len(failed)} of {len(results)} backup(s) did not verify: {', '.join(failed)}")
    typer.echo(f"all {len(results)} backup(s) VERIFIED")


def _print_manifest(manifest: Any, directory: Path) -> None:
    from dbguard.backup.store import VERIFIED

    verification = manifest.verification
    typer.echo(f"backup {manifest.id}: {verification.shown}")
    typer.echo(f"  target    {manifest.target} ({manifest.dialect} {manifest.server_version})")
    dump = directory / manifest.dump_file
    typer.echo(f"  dump      {dump} ({manifest.dump_bytes} bytes, sha256 {manifest.dump_sha256[:16]}...)")
    rows = sum(image.rows for image in manifest.tables.values())
    typer.echo(
        f"  tables    {len(manifest.tables)} ({manifest.scope}), {rows} rows, snapshot {manifest.snapshot or '-'}"
    )
    if verification.method:
        typer.echo(f"  checked   {verification.method}, at {verification.at}")
    if verification.status != VERIFIED:
        reason = verification.reason or "not verified (--no-verify): run `dbguard backup verify`"
        if verification.reason:
            raise BackupFailure(f"backup {manifest.id} FAILED verification: {reason}")
        typer.echo(f"  note      {reason}")


@app.command("restore")
def restore_command(
    backup_id: str = typer.Argument(..., help="A backup id from `dbguard backup list`, or its start (unique)."),
    db: str | None = typer.Option(
        None, "--db", help="Put the --tables back into this database (no DBGUARD_DB: say where, explicitly)."
    ),
    tables: str | None = typer.Option(
        None, "--tables", help="Comma-separated tables to put back, among the backup's tables (required with --db)."
    ),
    into: str | None = typer.Option(
        None, "--into", help="Restore the whole backup into another database: an empty one, or a new SQLite file."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace the tables' rows without asking."),
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    manifest_key: ManifestKeyOption = None,
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the dump is unpacked before its rows move."
    ),
    sandbox_url: str | None = typer.Option(
        None, "--sandbox-url", envvar="DBGUARD_SANDBOX_URL", help="Server for that scratch database."
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_restore."),
) -> None:
    """Put back the exact content of chosen tables in one transaction (--db with --tables), or restore the
    whole backup into another, empty database (--into). Counts and hashes must equal the backup's, and
    foreign keys must hold, before anything is committed. Exits 0 when restored, 1 when not confirmed, 2
    on a usage error (an unknown or ambiguous id), 4 when the database cannot be reached, 5 when the
    restore fails (nothing changed).
    --into on PostgreSQL also restores owners and privileges, and lists each one the destination cannot
    take (a missing role, a right the restoring user lacks) as "skipped:", with the reason.

    Examples:

    \b
        dbguard restore 2026-11-27T10-00-00.000000Z-stock --db $URL --tables stock
        dbguard restore 2026-11-27T10-00-00.000000Z-stock --db $URL --tables stock,reservations --yes
        dbguard restore 2026-11-27T10-00-00.000000Z-stock --into postgresql://postgres@127.0.0.1:5432/scratch
    """
    from dbguard.backup.restore import current_stats, resolve_tables, restore_into, restore_tables
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    if (db is None) == (into is None):
        raise UsageError("dbguard restore needs one of --db URL --tables a,b (tables back in place) "
                         "or --into URL (the whole backup into another database)")  # fmt: skip
    if into is not None and tables:
        raise UsageError("--tables goes with --db: --into restores the whole backup")
    install_sigterm_handler()
    store = _store(backup_dir, manifest_key)
    manifest = store.load(store.resolve(backup_id))
    if into is not None:
        with stderr.status("restore") as status:
            result = restore_into(store, manifest, DatabaseUrl.parse(into), pg_bin=pg_bin,
                                  progress=lambda message: status.update(message))  # fmt: skip
    else:
        assert db is not None
        if not tables:
            raise UsageError(f"--db needs --tables, among the backup's tables: {', '.join(manifest.tables)}")
        target_url = DatabaseUrl.parse(db)
        chosen = resolve_tables(manifest, tables.split(","))
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"restore replaces every row of {', '.join(chosen)} in {target_url}: "
                                 "pass --yes to confirm non-interactively")  # fmt: skip
            typer.echo(f"backup {manifest.id} ({manifest.verification.shown}, {manifest.created_at}) -> {target_url}")
            for table, now in current_stats(manifest, target_url, chosen).items():
                image = manifest.tables[table]
                same = now is not None and (now.rows, now.hash) == (image.rows, image.hash)
                state = "no such table" if now is None else f"{now.rows} rows" + (" (unchanged)" if same else "")
                typer.echo(f"  {table}: {state} now -> {image.rows} rows from the backup")
            typer.confirm(f"Replace the rows of {len(chosen)} table(s)?", abort=True)
        from dbguard.sandbox.base import provider_for

        with stderr.status("restore") as status:
            result = restore_tables(
                store, manifest, target_url, chosen, provider=provider_for(manifest.dialect, sandbox.value),
                sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None, pg_bin=pg_bin,
                progress=lambda message: status.update(message),
            )  # fmt: skip
    for table, restored in result.tables.items():
        verdict = "matches the backup" if restored.matches else "DIFFERS from the backup"
        typer.echo(f"restored {table}: {restored.rows} rows, hash {restored.hash} {verdict}")
    privileges = result.owners_and_privileges
    if privileges is not None:
        skipped = f", {len(privileges.skipped)} skipped" if privileges.skipped else ""
        typer.echo(f"owners and privileges: {privileges.applied} statement(s) applied{skipped}")
        for statement, reason in privileges.skipped:
            typer.echo(f"skipped: {statement}: {reason}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    but = f", WITHOUT {len(privileges.skipped)} owner or privilege statement(s) (skipped above)" if (
        privileges and privileges.skipped) else ""  # fmt: skip
    typer.echo(f"backup {result.backup_id} restored into {result.target} in {result.seconds:.1f} s{but}")
