"""The scoped copy and the "server" sandbox, on real PostgreSQL with the real pg_dump and pg_restore.

Removal is checked against pg_database itself: after a normal exit, after an error inside the `with`,
after a failed copy, and after a real SIGTERM to a real process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox import copy_scoped, open_sandbox
from dbguard.sandbox.server import drop_database
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL

# The foreign-key closure of public.stock in the warehouse: what it references (warehouses, products),
# what references it (reservations), and what that needs (orders). order_lines is outside it.
STOCK_CLOSURE = {"public.stock", "public.warehouses", "public.products", "public.reservations", "public.orders"}
WAREHOUSE = {*STOCK_CLOSURE, "public.order_lines"}
EXTRA_SQL = """
CREATE TABLE audit_log (id bigserial PRIMARY KEY, happened_at timestamptz NOT NULL DEFAULT now(), note text);
INSERT INTO audit_log (note) SELECT 'event ' || i FROM generate_series(1, 1000) i;
CREATE SEQUENCE invoice_numbers;
SELECT setval('invoice_numbers', 500);
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Mixed.Case*" (id int PRIMARY KEY, label text);
INSERT INTO "Odd Schema"."Mixed.Case*" SELECT i, 'row ' || i FROM generate_series(1, 7) i;
CREATE TABLE "Odd Schema"."mixed.case" (id int PRIMARY KEY);
INSERT INTO "Odd Schema"."mixed.case" SELECT generate_series(1, 5);
CREATE INDEX audit_log_note ON audit_log (note);
"""
ODD = "Odd Schema.Mixed.Case*"
ODD_LOOKALIKE = "Odd Schema.mixed.case"
ALL_TABLES = {*WAREHOUSE, "public.audit_log", ODD, ODD_LOOKALIKE}


@pytest.fixture
def target(warehouse_pg: str) -> DatabaseUrl:
    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        conn.execute(EXTRA_SQL)
    return DatabaseUrl.parse(warehouse_pg)


@pytest.fixture
def empty_copy(target: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """An empty database to copy into, dropped afterwards."""
    name = f"dbguard_test_copy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield target.with_database(name)
    finally:
        drop_database(DatabaseUrl.parse(ADMIN_URL), name)


def rows(url: DatabaseUrl, table: str) -> int:
    schema, _, name = table.partition(".")
    with psycopg.connect(url.conninfo()) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()
    assert row is not None
    return int(row[0])


def content(url: DatabaseUrl, table: str) -> str:
    schema, _, name = table.partition(".")
    with psycopg.connect(url.conninfo()) as conn:
        row = conn.execute(f'SELECT md5(string_agg(t::text, \'|\' ORDER BY t::text)) FROM "{schema}"."{name}" t')
        return str(row.fetchone())


def schema_of(url: DatabaseUrl) -> set[tuple[str, ...]]:
    """Every user table, column, constraint and index, as text."""
    query = """
        SELECT 'column', table_schema || '.' || table_name, column_name || ' ' || data_type
          FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
        UNION ALL SELECT 'constraint', conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
        UNION ALL SELECT 'index', schemaname || '.' || tablename, indexdef
          FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
    """
    with psycopg.connect(url.conninfo()) as conn:
        return {tuple(row) for row in conn.execute(query).fetchall()}


def database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


class NameRecorder:
    """An on_progress callback that remembers the sandbox database name the server provider announces."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)

    @property
    def database(self) -> str:
        found = [m.split('"')[1] for m in self.messages if m.startswith("creating the sandbox database")]
        assert len(found) == 1, self.messages
        return found[0]


def test_scoped_copy_has_the_full_schema_and_only_the_scoped_rows(target: DatabaseUrl, empty_copy: DatabaseUrl) -> None:
    stats = copy_scoped(target, empty_copy, {*STOCK_CLOSURE, ODD}, None, None)

    assert schema_of(empty_copy) == schema_of(target)
    assert sorted(stats.tables_copied) == sorted({*STOCK_CLOSURE, ODD})
    assert stats.bytes_dumped > 0 and stats.seconds > 0
    for table in [*STOCK_CLOSURE, ODD]:
        assert rows(empty_copy, table) == rows(target, table) > 0, table
        assert content(empty_copy, table) == content(target, table), table
    assert rows(target, "public.audit_log") == 1000
    for table in ["public.audit_log", "public.order_lines", ODD_LOOKALIKE]:
        assert rows(empty_copy, table) == 0, table


def test_full_copy_copies_every_table(target: DatabaseUrl, empty_copy: DatabaseUrl) -> None:
    stats = copy_scoped(target, empty_copy, None, None, None)

    assert set(stats.tables_copied) == ALL_TABLES
    for table in ALL_TABLES:
        assert content(empty_copy, table) == content(target, table), table
    assert rows(empty_copy, "public.audit_log") == 1000


def test_empty_scope_copies_the_schema_only(target: DatabaseUrl, empty_copy: DatabaseUrl) -> None:
    stats = copy_scoped(target, empty_copy, set(), None, None)

    assert stats.tables_copied == []
    assert schema_of(empty_copy) == schema_of(target)
    assert all(rows(empty_copy, table) == 0 for table in ALL_TABLES)


def test_a_partitioned_table_in_scope_brings_its_partitions_rows(target: DatabaseUrl, empty_copy: DatabaseUrl) -> None:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE events (id int, year int) PARTITION BY RANGE (year);
            CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM (2024) TO (2025);
            CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM (2025) TO (2026);
            INSERT INTO events SELECT i, 2024 + i % 2 FROM generate_series(1, 10) i;
        """)
    stats = copy_scoped(target, empty_copy, {"public.events"}, None, None)

    assert stats.tables_copied == ["public.events", "public.events_2024", "public.events_2025"]
    assert rows(empty_copy, "public.events") == 10 and rows(empty_copy, "public.events_2025") == 5


def test_sequence_values_are_copied_so_new_ids_do_not_collide(target: DatabaseUrl) -> None:
    with open_sandbox(target, "server", STOCK_CLOSURE) as sandbox, psycopg.connect(sandbox.url.conninfo()) as conn:
        new_id = conn.execute("INSERT INTO orders (customer, status) VALUES ('new', 'open') RETURNING id").fetchone()
        invoice = conn.execute("SELECT nextval('invoice_numbers')").fetchone()
        # audit_log's rows were not copied, but its sequence value was.
        audit_id = conn.execute("INSERT INTO audit_log (note) VALUES ('x') RETURNING id").fetchone()
    assert new_id == (31,)
    assert invoice == (501,)
    assert audit_id == (1001,)


def test_server_sandbox_is_dropped_after_a_normal_exit(target: DatabaseUrl) -> None:
    names = NameRecorder()
    with open_sandbox(target, "server", STOCK_CLOSURE, on_progress=names) as sandbox:
        assert sandbox.provider == "server"
        assert sandbox.url.database == names.database
        assert database_exists(names.database)
        assert names.database in sandbox.description and "5 table(s)" in sandbox.description
        assert rows(sandbox.url, "public.stock") == 120
    assert not database_exists(names.database)


def test_server_sandbox_is_dropped_after_an_error_inside_the_block(target: DatabaseUrl) -> None:
    names = NameRecorder()
    with pytest.raises(RuntimeError, match="script failed"), open_sandbox(target, "server", set(), on_progress=names):
        # A session still connected to the sandbox must not keep it alive (DROP ... WITH (FORCE)).
        lingering = psycopg.connect(target.with_database(names.database).conninfo())
        raise RuntimeError("script failed")
    assert not database_exists(names.database)
    lingering.close()


def test_server_sandbox_is_dropped_when_the_copy_fails(target: DatabaseUrl, tmp_path: Path) -> None:
    names = NameRecorder()
    with (
        pytest.raises(ConnectionFailure, match=r"pg_dump not found in .*--pg-bin DIR"),
        open_sandbox(target, "server", STOCK_CLOSURE, pg_bin=tmp_path, on_progress=names),
    ):
        pytest.fail("a sandbox without pg_dump must not be yielded")
    assert not database_exists(names.database)


def test_server_sandbox_on_a_named_admin_database(target: DatabaseUrl) -> None:
    admin = DatabaseUrl.parse("postgresql://postgres@localhost:5432/postgres")
    with open_sandbox(target, "server", STOCK_CLOSURE, sandbox_url=admin) as sandbox:
        assert sandbox.url.url.host == "localhost" and sandbox.url.database.startswith("dbguard_sandbox_")
        assert rows(sandbox.url, "public.products") == 40
    assert not database_exists(sandbox.url.database)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_sandbox_url_pointing_at_the_target_is_refused(target: DatabaseUrl, host: str) -> None:
    itself = DatabaseUrl.parse(f"postgresql://postgres@{host}:5432/{target.database}")
    with (
        pytest.raises(UsageError, match="is the target database itself"),
        open_sandbox(target, "server", None, sandbox_url=itself),
    ):
        pytest.fail("must not be yielded")


def test_a_role_that_may_not_create_databases_is_told_what_to_do(target: DatabaseUrl) -> None:
    role = f"dbguard_nocreatedb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        as_role = DatabaseUrl.parse(f"postgresql://{role}@127.0.0.1:5432/{target.database}")
        with (
            pytest.raises(ConnectionFailure, match=f'role "{role}" may not create databases.*--sandbox local'),
            open_sandbox(as_role, "server", None),
        ):
            pytest.fail("must not be yielded")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')


def test_a_password_stays_out_of_errors(target: DatabaseUrl) -> None:
    unreachable = DatabaseUrl.parse("postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(ConnectionFailure) as failure:
        copy_scoped(unreachable, target, None, None, None)
    assert "s3cret-pw" not in str(failure.value)


DRIVER = """
import sys, time
from dbguard.sandbox import open_sandbox
from dbguard.sandbox.signals import install_sigterm_handler
from dbguard.targets.url import DatabaseUrl

install_sigterm_handler()
target, when = DatabaseUrl.parse(sys.argv[1]), sys.argv[2]
name = ""

def announce(message):
    global name
    if message.startswith("creating the sandbox database"):
        name = message.split('"')[1]
    if when != "inside" and message.startswith(when):
        print(name, flush=True)

with open_sandbox(target, "server", None, on_progress=announce) as sandbox:
    if when == "inside":
        print(sandbox.url.database, flush=True)
    time.sleep(60)
"""


# The signal lands while the sandbox is in use, while CREATE DATABASE runs (signals are held until it is
# done, so the DROP finds the database), and while pg_restore runs (a child process, killed on the way out).
@pytest.mark.parametrize("when", ["inside", "creating the sandbox database", "restoring the schema"])
def test_a_real_sigterm_removes_the_sandbox(target: DatabaseUrl, tmp_path: Path, when: str) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen(
        [sys.executable, str(driver), str(target.url.render_as_string(hide_password=False)), when],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    try:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert name.startswith("dbguard_sandbox_"), process.stderr.read() if process.stderr else ""
        if when == "inside":
            assert database_exists(name)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143
    finally:
        process.kill()
        process.wait()
    assert not database_exists(name)
