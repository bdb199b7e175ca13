"""`restore_tables`, `restore_into` and `dbguard restore` on real PostgreSQL and real SQLite: the exact
content comes back, foreign keys hold or nothing changes, and a damaged backup is never restored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from dbguard.backup.restore import restore_into, restore_tables
from dbguard.backup.store import FAILED, BackupStore, Manifest, Verification
from dbguard.backup.take import take_backup
from dbguard.cli import app
from dbguard.errors import BackupFailure, UsageError
from dbguard.targets import open_target
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL, load_warehouse, make_sqlite_warehouse, scratch_database

SECRET = "S3cretPW"
runner = CliRunner()


def url_of(raw: str | Path) -> DatabaseUrl:
    return DatabaseUrl.parse(f"sqlite:///{raw}" if isinstance(raw, Path) else raw)


def stats(raw: str | Path, tables: Sequence[str] | None = None) -> dict[str, tuple[int, str]]:
    """(rows, hash) of the tables (default: all) as the target sees them now."""
    with closing(open_target(url_of(raw))) as target:
        found = target.table_stats(list(tables) if tables is not None else target.all_tables())
        return {table: (s.rows, s.hash) for table, s in found.items()}


def manifest_images(manifest: Manifest, tables: Sequence[str]) -> dict[str, tuple[int, str]]:
    return {table: (manifest.tables[table].rows, manifest.tables[table].hash) for table in tables}


def foreign_keys_hold(raw: str | Path, tables: Sequence[str]) -> bool:
    with closing(open_target(url_of(raw))) as target:
        (check,) = [c for c in target.integrity_checks(list(tables)) if c.name == "foreign keys hold"]
        return check.passed


def pg(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def lite(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for statement in statements:
            conn.execute(statement)


def backup(raw: str | Path, directory: Path, tables: Sequence[str] | None = None, verify: bool = True) -> Manifest:
    return take_backup(url_of(raw), BackupStore(directory), tables, verify=verify)


DAMAGE_PG = (
    "UPDATE stock SET qty = qty + 7, reserved = 0 WHERE product_id <= 10",
    "DELETE FROM reservations WHERE order_id = 3",
    "DELETE FROM stock WHERE warehouse_id = 3 AND product_id = 40",  # no reservation references it
    "INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at) VALUES (6, 2, 5, 2, now())",
)
STOCK_AND_RESERVATIONS = ["public.stock", "public.reservations"]
# After the backup: a new stock row, and a reservation that references it.
NEW_STOCK_ROW_IN_USE = (
    "INSERT INTO products (sku, name, unit_price) VALUES ('SKU-41', 'Product 41', 1)",
    "INSERT INTO stock (warehouse_id, product_id, qty, reserved) VALUES (1, 41, 5, 1)",
    "INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at) VALUES (3, 1, 41, 1, '2026-12-01')",
)


# -- PostgreSQL: tables back in place --


def test_restored_tables_equal_the_backup_and_the_data_before_the_damage(warehouse_pg: str, tmp_path: Path) -> None:
    before = stats(warehouse_pg, STOCK_AND_RESERVATIONS)
    manifest = backup(warehouse_pg, tmp_path)
    pg(warehouse_pg, *DAMAGE_PG)
    assert stats(warehouse_pg, STOCK_AND_RESERVATIONS) != before

    result = restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["stock", "reservations"])

    after = stats(warehouse_pg, STOCK_AND_RESERVATIONS)
    assert after == before == manifest_images(manifest, STOCK_AND_RESERVATIONS)
    assert set(result.tables) == set(STOCK_AND_RESERVATIONS)
    assert all(table.matches for table in result.tables.values())
    assert foreign_keys_hold(warehouse_pg, ["public.stock", "public.reservations", "public.orders"])
    assert any("sequences" in note for note in result.notes)


def test_a_referenced_table_restores_alone_and_referencing_rows_stay_valid(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock"])  # scoped: the schema, and the rows of stock only
    pg(warehouse_pg, "UPDATE stock SET qty = qty + 1000")
    reservations = stats(warehouse_pg, ["public.reservations"])

    restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["stock"])

    assert stats(warehouse_pg, ["public.stock"]) == manifest_images(manifest, ["public.stock"])
    assert stats(warehouse_pg, ["public.reservations"]) == reservations  # rows that reference stock untouched
    assert foreign_keys_hold(warehouse_pg, ["public.stock"])


def test_identity_always_ids_come_back_and_deletes_do_not_cascade(warehouse_pg: str, tmp_path: Path) -> None:
    def ids() -> list[int]:
        with psycopg.connect(warehouse_pg) as conn:
            return [row[0] for row in conn.execute("SELECT id FROM orders ORDER BY id")]

    original = ids()
    manifest = backup(warehouse_pg, tmp_path)
    pg(warehouse_pg, "DELETE FROM orders WHERE id IN (1, 2)",  # cascades to their order_lines
       "UPDATE orders SET customer = 'someone else' WHERE id = 4",
       "INSERT INTO orders (customer, status) VALUES ('new', 'open')")  # fmt: skip
    order_lines = stats(warehouse_pg, ["public.order_lines"])

    restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["orders"])

    assert ids() == original
    assert stats(warehouse_pg, ["public.orders"]) == manifest_images(manifest, ["public.orders"])
    # emptying orders for the restore did not cascade into order_lines (ON DELETE CASCADE)
    assert stats(warehouse_pg, ["public.order_lines"]) == order_lines
    assert foreign_keys_hold(warehouse_pg, ["public.orders"])


def test_a_restore_that_would_break_a_foreign_key_is_rolled_back(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock"])
    pg(warehouse_pg, *NEW_STOCK_ROW_IN_USE, "UPDATE stock SET qty = qty + 1 WHERE product_id = 1")
    before = stats(warehouse_pg)

    with pytest.raises(BackupFailure, match=r"foreign keys hold.*reservations") as failure:
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["stock"])

    assert "rolled back" in str(failure.value)
    assert stats(warehouse_pg) == before


def test_a_backup_with_a_flipped_byte_is_never_restored(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path)
    dump = tmp_path / manifest.dump_file
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    pg(warehouse_pg, *DAMAGE_PG)
    before = stats(warehouse_pg)

    with pytest.raises(BackupFailure, match="sha256"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["stock", "reservations"])

    assert stats(warehouse_pg) == before


def test_failed_backups_are_refused_and_unverified_ones_say_so(warehouse_pg: str, tmp_path: Path) -> None:
    store = BackupStore(tmp_path)
    manifest = backup(warehouse_pg, tmp_path, ["stock"], verify=False)
    failed = replace(manifest, verification=Verification(FAILED, reason="the dump does not restore"))
    with pytest.raises(BackupFailure, match=r"FAILED verification.*does not restore"):
        restore_tables(store, failed, url_of(warehouse_pg), ["stock"])

    pg(warehouse_pg, "UPDATE stock SET qty = qty + 3")
    result = restore_tables(store, manifest, url_of(warehouse_pg), ["public.stock"])
    assert result.tables["public.stock"].matches
    assert any("UNVERIFIED" in note for note in result.notes)


def test_tables_must_be_in_the_backup(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock"], verify=False)
    expected = r"not in backup .*: orders; --tables takes the backup's tables: public\.stock"
    with pytest.raises(UsageError, match=expected):
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["orders"])


@pytest.fixture
def plain_user_url(warehouse_pg: str) -> Iterator[str]:
    """The warehouse, reached as a role that may read and write its tables but is not a superuser."""
    role = f"dbguard_restorer_{uuid.uuid4().hex[:8]}"
    pg(warehouse_pg, f'CREATE ROLE "{role}" LOGIN',
       f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')  # fmt: skip
    try:
        yield warehouse_pg.replace("postgresql://postgres@", f"postgresql://{role}@")
    finally:
        pg(warehouse_pg, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"')


def test_without_superuser_referencing_tables_must_come_along(
    warehouse_pg: str, plain_user_url: str, tmp_path: Path
) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock", "reservations"])
    pg(warehouse_pg, *DAMAGE_PG)
    before = stats(warehouse_pg)
    store, target, sandbox_server = BackupStore(tmp_path), url_of(plain_user_url), url_of(ADMIN_URL)

    with pytest.raises(BackupFailure, match="restore the referencing tables together"):
        restore_tables(store, manifest, target, ["stock"], sandbox_url=sandbox_server)
    assert stats(warehouse_pg) == before

    result = restore_tables(store, manifest, target, ["stock", "reservations"], sandbox_url=sandbox_server)
    assert stats(warehouse_pg, STOCK_AND_RESERVATIONS) == manifest_images(manifest, STOCK_AND_RESERVATIONS)
    assert any("not a superuser" in note for note in result.notes)


def test_without_superuser_a_delete_that_would_cascade_is_refused(
    warehouse_pg: str, plain_user_url: str, tmp_path: Path
) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["orders"])
    pg(warehouse_pg, "UPDATE orders SET customer = 'someone else' WHERE id = 4")
    before = stats(warehouse_pg)

    with pytest.raises(BackupFailure, match=r"order_lines references public\.orders ON DELETE CASCADE"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(plain_user_url), ["orders"],
                       sandbox_url=url_of(ADMIN_URL))  # fmt: skip

    assert stats(warehouse_pg) == before


def test_generated_columns_are_recomputed_and_changed_columns_refused(warehouse_pg: str, tmp_path: Path) -> None:
    pg(warehouse_pg, "CREATE TABLE priced (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty int, "
       "price numeric, total numeric GENERATED ALWAYS AS (qty * price) STORED)",
       "INSERT INTO priced (qty, price) SELECT i, i * 0.5 FROM generate_series(1, 20) i")  # fmt: skip
    manifest = backup(warehouse_pg, tmp_path, ["priced", "stock"])
    pg(warehouse_pg, "UPDATE priced SET qty = qty * 2", "DELETE FROM priced WHERE id > 15")

    restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["priced"])
    assert stats(warehouse_pg, ["public.priced"]) == manifest_images(manifest, ["public.priced"])

    pg(warehouse_pg, "ALTER TABLE stock ADD COLUMN note text")
    before = stats(warehouse_pg)
    with pytest.raises(BackupFailure, match=r"the columns of public\.stock changed"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_pg), ["stock"])
    assert stats(warehouse_pg) == before


# -- PostgreSQL: the whole backup into another database --


def test_into_a_fresh_database_gives_equal_hashes(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path)
    with scratch_database() as fresh:
        result = restore_into(BackupStore(tmp_path), manifest, url_of(fresh))
        assert stats(fresh) == manifest_images(manifest, list(manifest.tables)) == stats(warehouse_pg)
    assert set(result.tables) == set(manifest.tables)
    assert result.exact and result.owners_and_privileges is not None
    # each table's ALTER TABLE ... OWNER TO (an identity's sequence goes with its table)
    assert result.owners_and_privileges.applied == len(manifest.tables)
    assert result.owners_and_privileges.skipped == []


def test_into_a_database_with_tables_or_the_target_itself_is_refused(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path, verify=False)
    store = BackupStore(tmp_path)
    with scratch_database() as occupied:
        load_warehouse(occupied)
        pg(occupied, "UPDATE stock SET qty = qty + 1")
        before = stats(occupied)
        with pytest.raises(UsageError, match="already has 6 table"):
            restore_into(store, manifest, url_of(occupied))
        assert stats(occupied) == before
    with pytest.raises(UsageError, match=r"is the database backup .* was taken from"):
        restore_into(store, manifest, url_of(warehouse_pg.replace("127.0.0.1", "localhost")))


@pytest.fixture
def cluster_roles(warehouse_pg: str) -> Iterator[tuple[str, str]]:
    """Two new roles, `kept` and `gone` (roles are cluster-wide: unique names, dropped afterwards); the
    second's name is one pg_dump quotes."""
    kept, gone = f"dbguard_kept_{uuid.uuid4().hex[:8]}", f"dbguard Gone {uuid.uuid4().hex[:8]}"
    pg(ADMIN_URL, f'CREATE ROLE "{kept}"', f'CREATE ROLE "{gone}"')
    try:
        yield kept, gone
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for role in (kept, gone):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    pg(warehouse_pg, f'REASSIGN OWNED BY "{role}" TO postgres', f'DROP OWNED BY "{role}"')
                    conn.execute(f'DROP ROLE "{role}"')


def value(url: str, query: str, *params: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None, (query, params)
        return row[0]


def owner_of(url: str, kind: str, name: str) -> object:
    if kind == "schema":
        return value(url, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", name)
    return value(url, "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass", name)


def may_select(url: str, role: str, table: str) -> bool:
    return value(url, "SELECT has_table_privilege(%s, %s, 'SELECT')", role, table) is True


def test_into_restores_owners_and_grants_and_lists_those_of_a_role_gone_since(
    warehouse_pg: str, cluster_roles: tuple[str, str], tmp_path: Path
) -> None:
    kept, gone = cluster_roles
    as_kept = (f'SET ROLE "{kept}"', f'GRANT SELECT ON stock TO "{gone}"', "RESET ROLE")  # not by the owner
    pg(warehouse_pg, f'CREATE SCHEMA sales AUTHORIZATION "{kept}"',
       "CREATE TABLE sales.targets (region text PRIMARY KEY, goal int)",
       "INSERT INTO sales.targets VALUES ('north', 10), ('south', 12)",
       f'GRANT SELECT ON stock TO "{kept}" WITH GRANT OPTION', f'GRANT SELECT ON orders TO "{gone}"',
       f'ALTER TABLE products OWNER TO "{gone}"', f'CREATE SCHEMA archive AUTHORIZATION "{gone}"',
       *as_kept)  # fmt: skip
    manifest = backup(warehouse_pg, tmp_path)
    # the role existed when the backup was taken, and is gone by the time it is restored
    pg(warehouse_pg, f'REASSIGN OWNED BY "{gone}" TO postgres', f'DROP OWNED BY "{gone}"',
       f'SET ROLE "{kept}"', f'REVOKE SELECT ON stock FROM "{gone}"', "RESET ROLE", f'DROP ROLE "{gone}"')  # fmt: skip

    with scratch_database() as fresh:
        code, output = cli(manifest.id.split("Z-")[0], "--backup-dir", str(tmp_path), "--into", fresh)

        assert code == 0, output
        assert owner_of(fresh, "schema", "sales") == kept
        assert may_select(fresh, kept, "public.stock") and not may_select(fresh, kept, "public.orders")
        assert value(fresh, "SELECT has_table_privilege(%s, 'public.stock', 'SELECT WITH GRANT OPTION')", kept)
        missing = f'role "{gone}" does not exist on the destination'
        skipped = [line for line in output.splitlines() if line.startswith("skipped: ")]
        assert sorted(skipped) == sorted([
            f'skipped: ALTER SCHEMA archive OWNER TO "{gone}": {missing}; SCHEMA archive is owned by postgres instead',
            f'skipped: ALTER TABLE public.products OWNER TO "{gone}": {missing}; TABLE public.products is owned by '
            "postgres instead",
            f'skipped: GRANT SELECT ON TABLE public.orders TO "{gone}": {missing}',
            f'skipped: SET SESSION AUTHORIZATION {kept}; GRANT SELECT ON TABLE public.stock TO "{gone}"; '
            f"RESET SESSION AUTHORIZATION: {missing}",
        ]), output  # fmt: skip
        assert owner_of(fresh, "table", "public.products") == owner_of(fresh, "schema", "archive") == "postgres"
        # the data is exact, and said to be; the restore as a whole is not
        assert stats(fresh) == manifest_images(manifest, list(manifest.tables))
        assert output.count("matches the backup") == len(manifest.tables) and "DIFFERS" not in output
        assert ", 4 skipped" in output
        assert output.rstrip().endswith("WITHOUT 4 owner or privilege statement(s) (skipped above)")


def test_into_as_a_plain_user_skips_the_owners_it_may_not_give_and_says_why(
    warehouse_pg: str, cluster_roles: tuple[str, str], tmp_path: Path
) -> None:
    kept, _ = cluster_roles
    pg(warehouse_pg, f'CREATE SCHEMA sales AUTHORIZATION "{kept}"', f'GRANT SELECT ON stock TO "{kept}"')
    manifest = backup(warehouse_pg, tmp_path)
    restorer = f"dbguard_restorer_{uuid.uuid4().hex[:8]}"
    pg(ADMIN_URL, f'CREATE ROLE "{restorer}" LOGIN')
    try:
        with scratch_database() as fresh:
            pg(ADMIN_URL, f'ALTER DATABASE "{fresh.rsplit("/", 1)[1]}" OWNER TO "{restorer}"')
            as_restorer = fresh.replace("postgresql://postgres@", f"postgresql://{restorer}@")

            result = restore_into(BackupStore(tmp_path), manifest, url_of(as_restorer))

            assert all(table.matches for table in result.tables.values()) and not result.exact
            assert result.owners_and_privileges is not None
            skipped = dict(result.owners_and_privileges.skipped)
            assert skipped[f"ALTER SCHEMA sales OWNER TO {kept}"] == (
                f'must be member of role "{kept}"; SCHEMA sales is owned by {restorer} instead'
            )
            assert skipped["ALTER TABLE public.stock OWNER TO postgres"].startswith('must be member of role "postgres"')
            assert may_select(fresh, kept, "public.stock")  # the restorer owns stock, so it may grant on it
            assert owner_of(fresh, "schema", "sales") == restorer
    finally:
        pg(ADMIN_URL, f'DROP ROLE IF EXISTS "{restorer}"')


# -- SQLite --


def test_sqlite_tables_restore_in_place(warehouse_sqlite: Path, tmp_path: Path) -> None:
    tables = ["stock", "reservations", "orders"]
    before = stats(warehouse_sqlite, tables)
    manifest = backup(warehouse_sqlite, tmp_path / "backups")
    lite(warehouse_sqlite, "UPDATE stock SET qty = qty + 7, reserved = 0 WHERE product_id <= 10",
         "DELETE FROM reservations WHERE order_id = 3", "DELETE FROM orders WHERE id = 1",
         "INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at) VALUES (6, 2, 5, 2, 'x')",
    )  # fmt: skip
    order_lines = stats(warehouse_sqlite, ["order_lines"])

    result = restore_tables(BackupStore(tmp_path / "backups"), manifest, url_of(warehouse_sqlite), ["main.stock",
                            "reservations", "orders"])  # fmt: skip

    assert stats(warehouse_sqlite, tables) == before == manifest_images(manifest, tables)
    assert stats(warehouse_sqlite, ["order_lines"]) == order_lines  # no cascade from emptying orders
    assert all(table.matches for table in result.tables.values())
    assert foreign_keys_hold(warehouse_sqlite, tables)
    assert not list(tmp_path.glob("backups/*-wal")) and not list(tmp_path.glob("backups/*-shm"))


def test_sqlite_restore_that_would_break_a_foreign_key_is_rolled_back(warehouse_sqlite: Path, tmp_path: Path) -> None:
    manifest = backup(warehouse_sqlite, tmp_path)
    lite(warehouse_sqlite, *NEW_STOCK_ROW_IN_USE)
    before = stats(warehouse_sqlite)

    with pytest.raises(BackupFailure, match=r"foreign keys hold"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_sqlite), ["stock"])

    assert stats(warehouse_sqlite) == before


def test_sqlite_generated_columns_restore(tmp_path: Path) -> None:
    path = tmp_path / "generated.db"
    lite(path, "CREATE TABLE priced (id INTEGER PRIMARY KEY, qty INTEGER, price REAL, "
         "total REAL GENERATED ALWAYS AS (qty * price) STORED, label TEXT AS ('#' || id) VIRTUAL)",
         "INSERT INTO priced (qty, price) VALUES (1, 0.5), (2, 1.5), (3, 2.5)")  # fmt: skip
    manifest = backup(path, tmp_path / "backups")
    lite(path, "UPDATE priced SET qty = 10", "DELETE FROM priced WHERE id = 2")

    restore_tables(BackupStore(tmp_path / "backups"), manifest, url_of(path), ["priced"])

    assert stats(path) == manifest_images(manifest, ["priced"])


def test_sqlite_into_a_new_file_and_never_over_an_existing_one(warehouse_sqlite: Path, tmp_path: Path) -> None:
    manifest = backup(warehouse_sqlite, tmp_path / "backups")
    store = BackupStore(tmp_path / "backups")
    copy = tmp_path / "restored.db"
    result = restore_into(store, manifest, url_of(copy))
    assert stats(copy) == stats(warehouse_sqlite) == manifest_images(manifest, list(manifest.tables))
    assert all(table.matches for table in result.tables.values())

    other = make_sqlite_warehouse(tmp_path / "other.db")
    before = other.read_bytes()
    with pytest.raises(UsageError, match="already exists"):
        restore_into(store, manifest, url_of(other))
    assert other.read_bytes() == before
    with pytest.raises(UsageError, match="was taken from"):
        restore_into(store, manifest, url_of(warehouse_sqlite))


# -- the command --


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["restore", *args])
    return result.exit_code, result.stdout + result.stderr


def test_cli_restores_with_yes_and_refuses_without_it(warehouse_pg: str, tmp_path: Path) -> None:
    secret_url = warehouse_pg.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    manifest = backup(warehouse_pg, tmp_path)
    pg(warehouse_pg, *DAMAGE_PG)
    damaged = stats(warehouse_pg)
    common = ["--backup-dir", str(tmp_path), "--db", secret_url, "--tables", "stock,reservations"]

    code, output = cli(manifest.id, *common)
    assert code == 2, output
    assert "pass --yes to confirm non-interactively" in output
    assert stats(warehouse_pg) == damaged

    code, output = cli(manifest.id, *common, "--yes")
    assert code == 0, output
    assert "restored public.stock: 120 rows, hash" in output
    assert "restored public.reservations: 10 rows" in output and "matches the backup" in output
    assert SECRET not in output
    assert stats(warehouse_pg, STOCK_AND_RESERVATIONS) == manifest_images(manifest, STOCK_AND_RESERVATIONS)


def test_cli_asks_at_a_terminal_and_no_changes_nothing(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock"])
    pg(warehouse_pg, "UPDATE stock SET qty = qty + 1 WHERE product_id = 1")
    damaged = stats(warehouse_pg)

    def answer(reply: bytes) -> subprocess.CompletedProcess[str]:
        controller, terminal = os.openpty()  # stdin is a real terminal, so dbguard asks
        try:
            os.write(controller, reply)
            return subprocess.run([sys.executable, "-m", "dbguard", "restore", manifest.id, "--backup-dir",
                                   str(tmp_path), "--db", warehouse_pg, "--tables", "stock"], stdin=terminal,
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)  # fmt: skip
        finally:
            os.close(terminal)
            os.close(controller)

    declined = answer(b"n\n")
    assert declined.returncode == 1, declined.stdout + declined.stderr
    assert "public.stock: 120 rows now -> 120 rows from the backup" in declined.stdout
    assert "Replace the rows of 1 table(s)?" in declined.stdout
    assert stats(warehouse_pg) == damaged

    accepted = answer(b"y\n")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "restored public.stock: 120 rows" in accepted.stdout
    assert stats(warehouse_pg, ["public.stock"]) == manifest_images(manifest, ["public.stock"])


def test_cli_usage_errors(warehouse_sqlite: Path, tmp_path: Path) -> None:
    manifest = backup(warehouse_sqlite, tmp_path, verify=False)
    db = f"sqlite:///{warehouse_sqlite}"
    for args in (
        ["2026-01-01T00-00-00.000000Z-nothing", "--db", db, "--tables", "stock", "--yes"],  # unknown backup id
        ["not-an-id", "--into", f"sqlite:///{tmp_path / 'x.db'}"],
        [manifest.id, "--db", db, "--yes"],  # no --tables
        [manifest.id, "--db", db, "--tables", "stock", "--into", f"sqlite:///{tmp_path / 'x.db'}"],
        [manifest.id, "--tables", "stock"],  # neither --db nor --into
        [manifest.id, "--db", db, "--tables", "nope", "--yes"],
    ):
        code, output = cli(*args, "--backup-dir", str(tmp_path))
        assert code == 2, (args, output)
    code, output = cli(manifest.id, "--backup-dir", str(tmp_path), "--into", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 0, output
    assert "restored stock: 120 rows" in output


def test_without_superuser_a_table_with_triggers_is_refused(
    warehouse_pg: str, plain_user_url: str, tmp_path: Path
) -> None:
    manifest = backup(warehouse_pg, tmp_path, ["stock", "reservations"])
    pg(warehouse_pg,
       "CREATE TABLE stock_audit (at timestamptz DEFAULT now(), what text)",
       "CREATE FUNCTION audit_stock() RETURNS trigger LANGUAGE plpgsql AS "
       "$$ BEGIN INSERT INTO stock_audit (what) VALUES (TG_OP); RETURN NULL; END $$",
       "CREATE TRIGGER stock_audit AFTER INSERT OR DELETE ON stock FOR EACH ROW EXECUTE FUNCTION audit_stock()",
       *DAMAGE_PG)  # fmt: skip
    before = stats(warehouse_pg)
    with pytest.raises(BackupFailure, match=r"triggers would fire .*stock_audit on stock"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(plain_user_url), ["stock", "reservations"],
                       sandbox_url=url_of(ADMIN_URL))  # fmt: skip
    assert stats(warehouse_pg) == before  # stock_audit got no rows either


def test_sqlite_table_with_triggers_is_refused(warehouse_sqlite: Path, tmp_path: Path) -> None:
    manifest = backup(warehouse_sqlite, tmp_path)
    lite(warehouse_sqlite, "CREATE TABLE log (what TEXT)",
         "CREATE TRIGGER stock_log AFTER DELETE ON stock BEGIN INSERT INTO log VALUES ('deleted'); END",
         "UPDATE stock SET qty = qty + 1 WHERE product_id = 1")  # fmt: skip
    before = stats(warehouse_sqlite)
    with pytest.raises(BackupFailure, match="triggers would fire"):
        restore_tables(BackupStore(tmp_path), manifest, url_of(warehouse_sqlite), ["stock"])
    assert stats(warehouse_sqlite) == before
