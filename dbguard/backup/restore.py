"""Put a backup back: the exact content of chosen tables into the live target, in one transaction, or the
whole backup into another, empty database.

A backup is only restored after its file's sha256 and size match the manifest, and a restore is only
committed once the restored tables' row counts and hashes equal the manifest's and the target's
integrity checks pass. Anything else rolls back: the target is left as it was.

Foreign keys: while a table is being replaced it is briefly empty, and rows of other tables that
reference it would fail a row-by-row check (or, worse, cascade: ON DELETE CASCADE would delete them).
On PostgreSQL the replacement therefore runs with `session_replication_role = replica`, which turns
foreign-key triggers (and ordinary triggers) off for the transaction; on SQLite with
`PRAGMA foreign_keys = OFF`. Every foreign key into and out of the restored tables is then checked
once, as a whole, before COMMIT.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg.sql import SQL, Identifier

from dbguard.backup.restore_checks import compare_tables, refuse_failed_checks
from dbguard.backup.restore_privileges import OwnersAndPrivileges, restore_owners_and_privileges
from dbguard.backup.store import FAILED, UNVERIFIED, BackupStore, Manifest
from dbguard.backup.verify import check_file, manifest_facts, pg_restore_into, restore_list, source_url
from dbguard.dialects import Dialect
from dbguard.errors import BackupFailure, OutcomeUnknown, UsageError
from dbguard.sandbox.base import empty_postgres
from dbguard.sandbox.marker import scratch_directory
from dbguard.sandbox.pgtools import find_binary
from dbguard.targets.model import TableStats
from dbguard.targets.postgres import PostgresTarget, error_text, table_identifier
from dbguard.targets.url import DatabaseUrl

Progress = Callable[[str], None]
LOCK_TIMEOUT = "30s"
SEQUENCES_NOTE = "sequences and identity counters were left as they are: the restored rows keep their ids"
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"""
_REFERENCES = """
SELECT cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname, con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND pn.nspname || '.' || p.relname = ANY(%s)"""
_DELETE_ACTIONS = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
Column = tuple[str, str, bool]  # name, type, generated


class RestoredTable(NamedTuple):
    rows: int
    hash: str
    matches: bool  # the restored table's count and hash equal the manifest's


@dataclass
class RestoreResult:
    backup_id: str
    target: str  # URL with the password masked
    tables: dict[str, RestoredTable]
    seconds: float
    notes: list[str] = field(default_factory=list)
    # restore --into on PostgreSQL: the owner and privilege statements applied, and those skipped with why
    owners_and_privileges: OwnersAndPrivileges | None = None

    @property
    def exact(self) -> bool:
        """Every table's count and hash equal the backup's, and no owner or privilege was skipped."""
        skipped = self.owners_and_privileges.skipped if self.owners_and_privileges else []
        return all(table.matches for table in self.tables.values()) and not skipped


def resolve_tables(manifest: Manifest, names: Sequence[str]) -> list[str]:
    """The manifest's canonical names for `names` ("stock" -> "public.stock"), in order, without repeats."""
    chosen: list[str] = []
    unknown: list[str] = []
    for spelled in (name.strip() for name in names if name.strip()):
        found = _canonical(manifest, spelled)
        if found is None:
            unknown.append(spelled)
        for table in manifest.partitions.get(found or "", [found] if found else []):
            if table not in chosen:
                chosen.append(table)
    if unknown or not chosen:
        available = ", ".join(sorted({*manifest.tables, *manifest.partitions})) or "none"
        missing = f"not in backup {manifest.id}: {', '.join(unknown)}; " if unknown else "no table given; "
        raise UsageError(f"{missing}--tables takes the backup's tables: {available}")
    return chosen


def current_stats(manifest: Manifest, target_url: DatabaseUrl, tables: Sequence[str]) -> dict[str, TableStats | None]:
    """Each table's count and hash in the target now (None: no such table), to show what a restore replaces."""
    from dbguard.targets import open_target

    with closing(open_target(target_url)) as target:
        present = set(target.resolve(list(tables)).values())
        stats = target.table_stats([t for t in tables if t in present])
        if target_url.dialect is Dialect.POSTGRES:
            target.conn.rollback()
    return {table: stats.get(table) for table in tables}


def restore_tables(
    store: BackupStore,
    manifest: Manifest,
    target_url: DatabaseUrl,
    tables: Sequence[str],
    *,
    provider: str = "server",
    sandbox_url: DatabaseUrl | None = None,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Replace the rows of `tables` in the target with the backup's, in one transaction that commits only
    when their counts and hashes equal the manifest's and the target's integrity checks pass."""
    started = time.monotonic()
    say = progress or (lambda _message: None)
    _same_dialect(manifest, target_url, "--db")
    chosen = resolve_tables(manifest, tables)
    notes: list[str] = []
    dump = _usable_dump(store, manifest, notes)
    source = source_url(manifest)
    if source is not None and not source.same_database(target_url):
        notes.append(f"the backup was taken from {manifest.target}, and was restored into {target_url}")
    if manifest.dialect == Dialect.POSTGRES.value:
        stats = _restore_postgres_tables(dump, manifest, target_url, chosen, provider, sandbox_url, pg_bin, say, notes)
        notes.append(SEQUENCES_NOTE)
    else:
        from dbguard.backup.restore_sqlite import restore_sqlite_tables

        stats = restore_sqlite_tables(dump, manifest, target_url, chosen, say, notes)
    return _result(manifest, target_url, stats, started, notes)


def restore_into(
    store: BackupStore,
    manifest: Manifest,
    into_url: DatabaseUrl,
    *,
    pg_bin: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore the whole backup into another database (PostgreSQL: an existing one with no tables; SQLite:
    a new file) and prove every table's count and hash equal the manifest's."""
    started = time.monotonic()
    say = progress or (lambda _message: None)
    _same_dialect(manifest, into_url, "--into")
    source = source_url(manifest)
    if source is not None and source.same_database(into_url):
        raise UsageError(f"--into {into_url} is the database backup {manifest.id} was taken from: "
                         "to put tables back in place, use --db with --tables")  # fmt: skip
    notes: list[str] = []
    dump = _usable_dump(store, manifest, notes)
    if manifest.dialect == Dialect.POSTGRES.value:
        stats, privileges = _restore_postgres_into(dump, manifest, into_url, pg_bin, say)
        if manifest.scope == "tables":
            notes.append("a table-scoped backup: the whole schema, but only the rows of its tables, and no "
                         "foreign keys (the rows they reference were not backed up)")  # fmt: skip
        return replace(_result(manifest, into_url, stats, started, notes), owners_and_privileges=privileges)
    from dbguard.backup.restore_sqlite import restore_sqlite_into

    stats = restore_sqlite_into(dump, manifest, into_url, say)
    return _result(manifest, into_url, stats, started, notes)


# -- checks shared by both kinds of restore --


def _usable_dump(store: BackupStore, manifest: Manifest, notes: list[str]) -> Path:
    dump = check_file(store, manifest)  # a corrupt file is never restored
    verification = manifest.verification
    if verification.status == FAILED:
        raise BackupFailure(f"backup {manifest.id} FAILED verification ({verification.reason}): it is not restored")
    if verification.status == UNVERIFIED:
        notes.append(f"backup {manifest.id} was never restore-tested (UNVERIFIED); its sha256 and size were "
                     "checked, and the restored rows were compared with its manifest")  # fmt: skip
    return dump


def _canonical(manifest: Manifest, spelled: str) -> str | None:
    """The backup's name for `spelled`: one of its tables, or a partitioned table whose partitions it holds."""
    names = [*manifest.tables, *manifest.partitions]
    if spelled in names:
        return spelled
    bare = spelled.strip('"')
    if manifest.dialect == Dialect.SQLITE.value and bare.lower().startswith("main."):
        bare = bare[5:]
    for candidate in (f"public.{bare}", bare.lower(), f"public.{bare.lower()}"):
        if candidate in names:
            return candidate
    by_name = [t for t in names if t.split(".")[-1] in (bare, bare.lower())]
    if len(by_name) > 1:
        raise UsageError(f"{spelled} is ambiguous in backup {manifest.id}: say which of {', '.join(by_name)}")
    return by_name[0] if by_name else None


def _same_dialect(manifest: Manifest, url: DatabaseUrl, option: str) -> None:
    if url.dialect.value != manifest.dialect:
        raise UsageError(f"backup {manifest.id} is a {manifest.dialect} backup; {option} {url} is {url.dialect.value}")


def _result(manifest: Manifest, url: DatabaseUrl, stats: dict[str, TableStats], started: float,
            notes: list[str]) -> RestoreResult:  # fmt: skip
    tables = {}
    for table, got in stats.items():
        image = manifest.tables[table]
        tables[table] = RestoredTable(got.rows, got.hash, (got.rows, got.hash) == (image.rows, image.hash))
    return RestoreResult(manifest.id, str(url), tables, time.monotonic() - started, notes)


# -- PostgreSQL --


def _restore_postgres_tables(
    dump: Path, manifest: Manifest, target_url: DatabaseUrl, tables: list[str], provider: str,
    sandbox_url: DatabaseUrl | None, pg_bin: Path | None, say: Progress, notes: list[str],
) -> dict[str, TableStats]:  # fmt: skip
    from dbguard.targets import postgres

    pg_restore = find_binary("pg_restore", manifest_facts(manifest).server_major, pg_bin)
    with closing(postgres.connect(target_url)) as target:
        columns = {table: _pg_columns(target.conn, table) for table in tables}
        missing = [table for table, found in columns.items() if not found]
        if missing:
            raise UsageError(f"{target_url} has no table {', '.join(missing)}: restore the whole backup --into "
                             "a new database instead")  # fmt: skip
        target.conn.rollback()
        with scratch_directory() as scratch:
            listing = restore_list(pg_restore, dump, manifest.scope, Path(scratch))
            with empty_postgres(provider, manifest_facts(manifest), sandbox_url or target_url, pg_bin, say) as (
                url,
                where,
                _marker,
            ):
                say(f"restoring {manifest.id} into {where}")
                pg_restore_into(pg_restore, dump, listing, url)
                with closing(postgres.connect(url, autocommit=True)) as sandbox:
                    for table in tables:
                        if _pg_columns(sandbox.conn, table) != columns[table]:
                            raise BackupFailure(f"the columns of {table} changed since backup {manifest.id}: a "
                                                "table restore needs the same columns; restore --into a new "
                                                "database and copy what you need")  # fmt: skip
                    say("checking the backup's rows in the sandbox")
                    compare_tables(manifest, sandbox.table_stats(tables))
                    return _replace_rows(target, sandbox.conn, tables, columns, manifest, say, notes)


def _pg_columns(conn: psycopg.Connection[Any], table: str) -> list[Column]:
    """(name, type, generated) of each column, in order; empty when there is no such table."""
    quoted = table_identifier(table).as_string(conn)
    return [(str(name), str(type_), bool(generated)) for name, type_, generated in
            conn.execute(_COLUMNS, [quoted]).fetchall()]  # fmt: skip


def _replace_rows(
    target: PostgresTarget, sandbox: psycopg.Connection[Any], tables: list[str], columns: dict[str, list[Column]],
    manifest: Manifest, say: Progress, notes: list[str],
) -> dict[str, TableStats]:  # fmt: skip
    """DELETE and COPY in the target's one transaction; COMMIT only when counts, hashes and checks hold."""
    conn = target.conn
    current = ""
    try:
        conn.execute(SQL("SET LOCAL lock_timeout = {}").format(LOCK_TIMEOUT))
        names = SQL(", ").join(table_identifier(t) for t in tables)
        say(f"locking {len(tables)} table(s) in EXCLUSIVE mode: readers go on, writers wait")
        conn.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
        replica = _replica_role(conn)
        order = tables if replica else _parents_first(conn, tables)
        if replica:
            notes.append("foreign keys and triggers were off while the rows were replaced (session_replication_role"
                         " = replica); every foreign key was checked before COMMIT")  # fmt: skip
        else:
            _refuse_delete_actions(conn, tables)
            _refuse_triggers(conn, tables)
            notes.append("not a superuser: foreign keys were checked row by row")
        for current in reversed(order):
            say(f"deleting the rows of {current}")
            conn.execute(SQL("DELETE FROM {}").format(table_identifier(current)))
        for current in order:
            say(f"copying the backup's rows of {current}")
            _copy_rows(sandbox, conn, current, [name for name, _, generated in columns[current] if not generated])
        current = ""
        if replica:
            conn.execute("SET LOCAL session_replication_role = origin")
        say("comparing the restored tables with the backup")
        stats = target.table_stats(tables)
        compare_tables(manifest, stats)
        say("checking constraints and foreign keys")
        refuse_failed_checks(target.integrity_checks(tables))
    except psycopg.errors.ForeignKeyViolation as error:
        _rollback(conn)
        raise BackupFailure(f"{error_text(error)}: restoring {current} alone would leave rows that reference "
                            "missing rows; restore the referencing tables together (--tables a,b) or as a "
                            "superuser; rolled back, the target is unchanged") from None  # fmt: skip
    except psycopg.errors.LockNotAvailable:
        _rollback(conn)
        raise BackupFailure(f"could not lock {', '.join(tables)} within {LOCK_TIMEOUT}: other sessions are "
                            "writing to them; nothing was changed") from None  # fmt: skip
    except psycopg.Error as error:
        _rollback(conn)
        where = f" of {current}" if current else ""
        raise BackupFailure(f"the restore{where} failed: {error_text(error)}; rolled back, the target is "
                            "unchanged") from None  # fmt: skip
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.commit()
    except psycopg.Error as error:
        raise OutcomeUnknown(f"COMMIT of the restore failed ({error_text(error)}): compare the tables with "
                             f"backup {manifest.id} before going on") from None  # fmt: skip
    return stats


_USER_TRIGGERS = """
SELECT c.oid::regclass::text, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND c.oid = ANY(%s::regclass[]) ORDER BY 1, 2"""


def _refuse_triggers(conn: psycopg.Connection[Any], tables: list[str]) -> None:
    """Outside replica mode, a user trigger would fire on every deleted and copied row and could change
    tables the restore must leave alone: refuse rather than commit that."""
    found = conn.execute(_USER_TRIGGERS, [tables]).fetchall()
    if found:
        names = ", ".join(f"{name} on {table}" for table, name in found)
        raise BackupFailure(f"triggers would fire while the rows are replaced ({names}) and could change other "
                            "tables: restore as a superuser (triggers are off for the restore), or disable them "
                            "first; nothing was changed")  # fmt: skip


def _replica_role(conn: psycopg.Connection[Any]) -> bool:
    """Foreign-key triggers off for this transaction; needs superuser (or SET privilege on the setting)."""
    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    conn.execute("SET CONSTRAINTS ALL DEFERRED")  # deferrable keys wait for COMMIT in either mode
    return True


def _references(conn: psycopg.Connection[Any], tables: list[str]) -> list[tuple[str, str, str]]:
    """(referencing table, referenced table, ON DELETE action code) of every foreign key into `tables`."""
    return [(str(a), str(b), str(c)) for a, b, c in conn.execute(_REFERENCES, [tables]).fetchall()]


def _parents_first(conn: psycopg.Connection[Any], tables: list[str]) -> list[str]:
    """Without replica mode, parents are filled first and emptied last; a cycle keeps the given order."""
    conn.execute("SET CONSTRAINTS ALL DEFERRED")
    graph: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent, _ in _references(conn, tables):
        if child in graph and child != parent:
            graph[child].add(parent)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        return tables


def _refuse_delete_actions(conn: psycopg.Connection[Any], tables: list[str]) -> None:
    """A DELETE that cascades (or sets NULL) into a table outside the restore would change that table too."""
    for child, parent, action in _references(conn, tables):
        if child not in tables and action in _DELETE_ACTIONS:
            raise BackupFailure(f"{child} references {parent} ON DELETE {_DELETE_ACTIONS[action]}: without "
                                f"superuser rights, emptying {parent} would change {child} too; restore "
                                f"{child} together with it, or as a superuser")  # fmt: skip


def _copy_rows(sandbox: psycopg.Connection[Any], conn: psycopg.Connection[Any], table: str,
               column_names: list[str]) -> None:  # fmt: skip
    """Stream the rows chunk by chunk in COPY's binary format; identity values are kept as they are."""
    listed = SQL(", ").join(Identifier(name) for name in column_names)
    into = SQL(" ({})").format(listed) if column_names else SQL("")
    read = SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)").format(listed, table_identifier(table))
    write = SQL("COPY {}{} FROM STDIN (FORMAT binary)").format(table_identifier(table), into)
    with sandbox.cursor() as out_cursor, conn.cursor() as in_cursor, out_cursor.copy(read) as out, \
            in_cursor.copy(write) as copy_in:  # fmt: skip
        for chunk in out:
            copy_in.write(chunk)


def _restore_postgres_into(dump: Path, manifest: Manifest, into_url: DatabaseUrl, pg_bin: Path | None,
                           say: Progress) -> tuple[dict[str, TableStats], OwnersAndPrivileges]:  # fmt: skip
    """The data first, without owners and privileges (as verification restores it), compared with the
    manifest; then the owners and privileges whose roles the destination has (restore_privileges.py)."""
    from dbguard.targets import postgres

    with closing(postgres.connect(into_url, autocommit=True)) as into:
        existing = into.all_tables()
    if existing:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        raise UsageError(f"{into_url} already has {len(existing)} table(s) ({shown}): restore --into needs an "
                         "empty database (createdb a new one); nothing was restored over them")  # fmt: skip
    pg_restore = find_binary("pg_restore", manifest_facts(manifest).server_major, pg_bin)
    with scratch_directory() as scratch:
        listing = restore_list(pg_restore, dump, manifest.scope, Path(scratch))
        say(f"restoring {manifest.id} into {into_url}")
        try:
            pg_restore_into(pg_restore, dump, listing, into_url)
        except BackupFailure as error:
            raise BackupFailure(f"{error}; {into_url} may be partly restored: drop and recreate it") from None
        with closing(postgres.connect(into_url, autocommit=True)) as into:
            say("comparing the restored tables with the backup")
            stats = into.table_stats(list(manifest.tables))
        compare_tables(manifest, stats)
        say("restoring owners and privileges")
        return stats, restore_owners_and_privileges(pg_restore, dump, listing, into_url, manifest.id)


# -- helpers --


def _rollback(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()  # the server rolls back an open transaction when its connection goes
