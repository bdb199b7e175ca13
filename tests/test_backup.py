"""`dbguard backup`, `backup list` and `backup verify` on real PostgreSQL and real SQLite: what a VERIFIED
backup holds, and that it restores to exactly the data it claims.

The helpers at the top (`cli`, `restored_stats`, ...) are shared with the fault and concurrency tests.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from dbguard import __version__
from dbguard.backup.store import UNVERIFIED, VERIFIED, BackupStore, Manifest, sha256_of
from dbguard.backup.verify import pg_restore_into, restore_list
from dbguard.cli import app
from dbguard.sandbox.pgtools import find_binary
from dbguard.targets import postgres, sqlite
from dbguard.targets.model import TableStats
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import scratch_database

SECRET = "S3cretPW"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    """Run dbguard in-process; returns the exit code and stdout and stderr together."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


def with_password(url: str) -> str:
    """The same database, with a password in the URL (trust authentication ignores it)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def only_manifest(store: BackupStore) -> Manifest:
    (entry,) = store.list()
    assert isinstance(entry, Manifest), entry
    return entry


def live_stats(url: str, tables: Sequence[str] | None = None) -> dict[str, TableStats]:
    with closing(postgres.connect(DatabaseUrl.parse(url))) as target:
        return target.table_stats(list(tables) if tables is not None else target.all_tables())


def as_images(stats: dict[str, TableStats]) -> dict[str, tuple[int, str]]:
    return {table: (s.rows, s.hash) for table, s in stats.items()}


def manifest_images(manifest: Manifest) -> dict[str, tuple[int, str]]:
    return {table: (image.rows, image.hash) for table, image in manifest.tables.items()}


@contextmanager
def restored(store: BackupStore, manifest: Manifest) -> Iterator[str]:
    """The backup's dump restored with pg_restore into a fresh database of its own; yields its URL."""
    pg_restore = find_binary("pg_restore", int(manifest.server_version.split(".")[0]))
    dump = store.directory / manifest.dump_file
    with scratch_database("dbguard_restored") as url, tempfile.TemporaryDirectory() as scratch:
        listing = restore_list(pg_restore, dump, manifest.scope, Path(scratch))
        pg_restore_into(pg_restore, dump, listing, DatabaseUrl.parse(url))
        yield url


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def assert_store_is_clean(directory: Path) -> None:
    """Atomic writes: no temporary file is left, and every manifest loads (its signature holds)."""
    names = sorted(p.name for p in directory.iterdir())
    assert not [n for n in names if ".partial-" in n or n.startswith(".probe-")], names
    for path in directory.glob("*.json"):
        BackupStore(directory).load(path.stem)


def test_full_backup_is_verified_and_its_manifest_describes_the_live_database(
    warehouse_pg: str, tmp_path: Path
) -> None:
    store_dir = tmp_path / "backups"
    code, output = cli("backup", "--db", with_password(warehouse_pg), "--backup-dir", str(store_dir))
    assert code == 0, output
    assert "VERIFIED" in output and SECRET not in output

    manifest = only_manifest(BackupStore(store_dir))
    raw = json.loads((store_dir / f"{manifest.id}.json").read_text())
    assert raw["id"] == manifest.id and raw["manifest_hmac_sha256"]
    assert datetime.fromisoformat(manifest.created_at).tzinfo is not None
    assert manifest.dialect == "postgres" and manifest.scope == "full"
    database = warehouse_pg.rsplit("/", 1)[1]
    assert manifest.target == f"postgresql://postgres:***@127.0.0.1:5432/{database}"
    assert re.fullmatch(r"15\.\d+", manifest.server_version)
    assert manifest.tools["dbguard"] == __version__
    assert manifest.tools["pg_dump"].startswith("pg_dump (PostgreSQL) 15")
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{8}-\d+", manifest.snapshot or ""), manifest.snapshot
    assert manifest.locale["encoding"] == "UTF8"

    live = live_stats(warehouse_pg)
    assert set(live) == {f"public.{t}" for t in ("warehouses", "products", "stock", "orders", "order_lines",
                                                 "reservations")}  # fmt: skip
    assert manifest_images(manifest) == as_images(live)
    assert manifest.tables["public.stock"].rows == 120

    dump = store_dir / manifest.dump_file
    assert manifest.dump_file == f"{manifest.id}.dump"
    assert manifest.dump_bytes == dump.stat().st_size > 0
    assert manifest.dump_sha256 == sha256_of(dump)
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    verification = manifest.verification
    assert verification.status == VERIFIED and verification.reason is None
    assert verification.at is not None and datetime.fromisoformat(verification.at).tzinfo is not None
    assert "restore into a server sandbox" in (verification.method or "")
    assert "sha256" in (verification.method or "")

    for path in store_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert_store_is_clean(store_dir)


def test_full_backup_restores_to_exactly_the_manifest(warehouse_pg: str, tmp_path: Path) -> None:
    assert cli("backup", "--db", warehouse_pg, "--backup-dir", str(tmp_path))[0] == 0
    store = BackupStore(tmp_path)
    manifest = only_manifest(store)
    with restored(store, manifest) as copy:
        assert as_images(live_stats(copy, list(manifest.tables))) == manifest_images(manifest)
        assert count_rows(copy, "order_lines") == 60


def test_scoped_backup_holds_the_rows_of_the_chosen_tables_only(warehouse_pg: str, tmp_path: Path) -> None:
    code, output = cli("backup", "--db", with_password(warehouse_pg), "--tables", "stock", "--backup-dir",
                       str(tmp_path))  # fmt: skip
    assert code == 0, output
    assert "VERIFIED" in output and "(tables)" in output and SECRET not in output
    store = BackupStore(tmp_path)
    manifest = only_manifest(store)
    assert manifest.scope == "tables" and list(manifest.tables) == ["public.stock"]
    assert manifest_images(manifest) == as_images(live_stats(warehouse_pg, ["public.stock"]))
    with restored(store, manifest) as copy:
        assert count_rows(copy, "stock") == 120
        for other in ("warehouses", "products", "orders", "order_lines", "reservations"):
            assert count_rows(copy, other) == 0, other  # the schema is there, the rows are not
        assert as_images(live_stats(copy, ["public.stock"])) == manifest_images(manifest)
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name


def test_list_shows_every_backup_and_verify_proves_one_again(warehouse_pg: str, tmp_path: Path) -> None:
    store_dir = str(tmp_path)
    assert cli("backup", "list", "--backup-dir", store_dir) == (0, f"no backups in {store_dir}\n")
    assert cli("backup", "--db", warehouse_pg, "--backup-dir", store_dir)[0] == 0
    assert cli("backup", "--db", warehouse_pg, "--tables", "stock,orders", "--backup-dir", store_dir)[0] == 0
    store = BackupStore(tmp_path)
    entries = store.list()
    assert len(entries) == 2 and all(isinstance(e, Manifest) for e in entries)
    manifests = [e for e in entries if isinstance(e, Manifest)]
    assert sorted(m.scope for m in manifests) == ["full", "tables"]

    code, listing = cli("backup", "list", "--backup-dir", store_dir)
    assert code == 0, listing
    for manifest in manifests:
        line = next(line for line in listing.splitlines() if line.startswith(manifest.id))
        assert "VERIFIED" in line and str(len(manifest.tables)) in line

    scoped = next(m for m in manifests if m.scope == "tables")
    code, output = cli("backup", "verify", scoped.id, "--backup-dir", store_dir)
    assert code == 0, output
    assert f"backup {scoped.id}: VERIFIED" in output
    again = store.load(scoped.id)
    assert again.verification.status == VERIFIED
    assert again.verification.at is not None and again.verification.at >= (scoped.verification.at or "")
    assert manifest_images(again) == manifest_images(scoped) and again.dump_sha256 == scoped.dump_sha256
    assert_store_is_clean(tmp_path)


def test_verify_in_a_throwaway_local_cluster(warehouse_pg: str, tmp_path: Path) -> None:
    assert cli("backup", "--db", warehouse_pg, "--no-verify", "--backup-dir", str(tmp_path))[0] == 0
    manifest = only_manifest(BackupStore(tmp_path))
    code, output = cli("backup", "verify", manifest.id, "--sandbox", "local", "--backup-dir", str(tmp_path))
    assert code == 0, output
    verified = BackupStore(tmp_path).load(manifest.id)
    assert verified.verification.status == VERIFIED
    assert "restore into a local sandbox" in (verified.verification.method or "")


def test_no_verify_leaves_the_backup_unverified(warehouse_pg: str, tmp_path: Path) -> None:
    code, output = cli("backup", "--db", warehouse_pg, "--no-verify", "--backup-dir", str(tmp_path))
    assert code == 0, output
    assert "UNVERIFIED" in output and "dbguard backup verify" in output
    manifest = only_manifest(BackupStore(tmp_path))
    assert manifest.verification.status == UNVERIFIED
    assert manifest.verification.at is None and manifest.verification.reason is None
    assert manifest.dump_sha256 == sha256_of(tmp_path / manifest.dump_file)
    code, listing = cli("backup", "list", "--backup-dir", str(tmp_path))
    assert code == 0 and "UNVERIFIED" in listing
    assert_store_is_clean(tmp_path)


def test_sqlite_backup_is_a_verified_valid_copy(warehouse_sqlite: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "backups"
    url = f"sqlite:///{warehouse_sqlite}"
    code, output = cli("backup", "--db", url, "--backup-dir", str(store_dir))
    assert code == 0, output
    assert "VERIFIED" in output
    store = BackupStore(store_dir)
    manifest = only_manifest(store)
    assert manifest.dialect == "sqlite" and manifest.snapshot is None and manifest.scope == "full"
    assert manifest.tools["sqlite"] == sqlite3.sqlite_version
    assert "integrity_check" in (manifest.verification.method or "")

    copy_path = store_dir / manifest.dump_file
    assert copy_path.suffix == ".sqlite"
    assert copy_path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert manifest.dump_bytes == copy_path.stat().st_size and manifest.dump_sha256 == sha256_of(copy_path)
    with closing(sqlite3.connect(f"{copy_path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    with closing(sqlite.connect(DatabaseUrl.parse(url))) as live:
        live_images = as_images(live.table_stats(live.all_tables()))
    with closing(sqlite.connect(DatabaseUrl.parse(f"sqlite:///{copy_path}"))) as copy:
        copy_images = as_images(copy.table_stats(copy.all_tables()))
    assert live_images == copy_images == manifest_images(manifest)
    assert manifest.tables["stock"].rows > 0

    # Verification only reads the copy: it still has the sha256 it was written with, and verifies again.
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store_dir))
    assert code == 0, output
    assert sha256_of(copy_path) == manifest.dump_sha256
    assert_store_is_clean(store_dir)
