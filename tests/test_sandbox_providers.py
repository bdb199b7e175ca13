"""The "local", "container" and "sqlite" sandboxes, and finding the PostgreSQL programs, for real.

The local cluster really runs initdb and pg_ctl (as the postgres OS user when the tests run as root);
the container sandbox is tested end to end only where a Docker engine answers, and skipped elsewhere.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
import pytest

from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox import open_sandbox, provider_for
from dbguard.sandbox.container import docker_engine_problem
from dbguard.sandbox.pgtools import PG_BIN_ENV, binary_major, check_dump_compatible, find_binary, run_tool
from dbguard.targets.url import DatabaseUrl

STOCK_CLOSURE = {"public.stock", "public.warehouses", "public.products", "public.reservations", "public.orders"}


def count(url: DatabaseUrl, table: str) -> int:
    with psycopg.connect(url.conninfo()) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    assert row is not None
    return int(row[0])


def server_major(url: DatabaseUrl) -> int:
    with psycopg.connect(url.conninfo()) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_local_sandbox_runs_a_throwaway_cluster_and_leaves_nothing_behind(warehouse_pg: str) -> None:
    target = DatabaseUrl.parse(warehouse_pg)
    with open_sandbox(target, "local", STOCK_CLOSURE) as sandbox:
        workdir = Path(str(sandbox.url.url.host))
        postmaster_pid = int((workdir / "data" / "postmaster.pid").read_text().split()[0])
        assert sandbox.provider == "local" and str(workdir) in sandbox.description
        assert pid_alive(postmaster_pid)
        assert count(sandbox.url, "stock") == 120 and count(sandbox.url, "order_lines") == 0
        assert server_major(sandbox.url) == server_major(target)
        if os.geteuid() == 0:
            assert (workdir / "data").stat().st_uid != 0  # initdb ran as the postgres OS user
    assert not workdir.exists()
    assert not pid_alive(postmaster_pid)


def test_local_sandbox_is_removed_after_an_error_inside_the_block(warehouse_pg: str) -> None:
    target = DatabaseUrl.parse(warehouse_pg)
    with pytest.raises(KeyboardInterrupt), open_sandbox(target, "local", set()) as sandbox:
        workdir = Path(str(sandbox.url.url.host))
        postmaster_pid = int((workdir / "data" / "postmaster.pid").read_text().split()[0])
        raise KeyboardInterrupt
    assert not workdir.exists()
    assert not pid_alive(postmaster_pid)


def test_local_sandbox_without_initdb_says_where_it_looked(warehouse_pg: str, tmp_path: Path) -> None:
    with (
        pytest.raises(ConnectionFailure, match=r"initdb not found in .*postgresql-\d+\) or pass --pg-bin DIR"),
        open_sandbox(DatabaseUrl.parse(warehouse_pg), "local", None, pg_bin=tmp_path),
    ):
        pytest.fail("must not be yielded")


def test_container_sandbox_without_docker_says_so(warehouse_pg: str) -> None:
    if docker_engine_problem() is None:
        pytest.skip("a Docker engine is present: the end-to-end container test covers it")
    with (
        pytest.raises(ConnectionFailure, match=r"no Docker engine found \(testcontainers needs one\)"),
        open_sandbox(DatabaseUrl.parse(warehouse_pg), "container", STOCK_CLOSURE),
    ):
        pytest.fail("must not be yielded")


def test_container_sandbox_end_to_end(warehouse_pg: str) -> None:
    problem = docker_engine_problem()
    if problem is not None:
        pytest.skip(f"no Docker engine: {problem}")
    target = DatabaseUrl.parse(warehouse_pg)
    with open_sandbox(target, "container", STOCK_CLOSURE) as sandbox:
        assert count(sandbox.url, "stock") == 120
        assert server_major(sandbox.url) == server_major(target)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(sandbox.url.conninfo(), connect_timeout=3).close()


def test_sqlite_sandbox_copies_the_whole_file_and_deletes_it(warehouse_sqlite: Path) -> None:
    target = DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}")
    assert provider_for(target.dialect, "server") == "sqlite"
    with open_sandbox(target, "sqlite", {"stock"}) as sandbox:
        copy = sandbox.url.sqlite_path
        assert copy != warehouse_sqlite and "whole database" in sandbox.description
        assert sandbox.copy is not None and "order_lines" in sandbox.copy.tables_copied
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM order_lines").fetchone() == (60,)
            conn.execute("DELETE FROM stock")
        with sqlite3.connect(warehouse_sqlite) as conn:
            assert conn.execute("SELECT count(*) FROM stock").fetchone() == (120,)
    assert not copy.exists() and not copy.parent.exists()


def test_sqlite_sandbox_refuses_the_target_file_and_an_existing_file(warehouse_sqlite: Path, tmp_path: Path) -> None:
    target = DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}")
    itself = DatabaseUrl.parse(f"sqlite:///{tmp_path}/./warehouse.db")
    with pytest.raises(UsageError, match="target database itself"), open_sandbox(target, "sqlite", None, itself):
        pytest.fail("must not be yielded")
    existing = tmp_path / "precious.db"
    existing.write_bytes(b"someone's data")
    elsewhere = DatabaseUrl.parse(f"sqlite:///{existing}")
    with pytest.raises(UsageError, match="exists"), open_sandbox(target, "sqlite", None, elsewhere):
        pytest.fail("must not be yielded")
    assert existing.read_bytes() == b"someone's data"


def test_sqlite_sandbox_at_a_named_file_is_deleted_afterwards(warehouse_sqlite: Path, tmp_path: Path) -> None:
    target = DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}")
    named = tmp_path / "sandbox.db"
    with open_sandbox(target, "sqlite", None, DatabaseUrl.parse(f"sqlite:///{named}")) as sandbox:
        assert sandbox.url.sqlite_path == named and named.exists()
    assert not named.exists()


def test_a_provider_for_the_other_kind_of_database_is_refused(warehouse_sqlite: Path) -> None:
    target = DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}")
    with (
        pytest.raises(UsageError, match="--sandbox server does not work for sqlite"),
        open_sandbox(target, "server", None),
    ):
        pytest.fail("must not be yielded")


def test_find_binary_honours_an_explicit_directory_strictly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConnectionFailure) as missing:
        find_binary("pg_dump", 15, tmp_path)
    assert str(missing.value) == (
        f"pg_dump not found in {tmp_path}: install the PostgreSQL client (postgresql-client-15) or pass --pg-bin DIR"
    )
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    with pytest.raises(ConnectionFailure, match="pg_restore not found in"):
        find_binary("pg_restore")
    monkeypatch.delenv(PG_BIN_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_binary("pg_dump", 15).parent == Path("/usr/lib/postgresql/15/bin")


def test_pg_dump_version_is_read_and_checked(warehouse_pg: str) -> None:
    major = server_major(DatabaseUrl.parse(warehouse_pg))
    pg_dump = find_binary("pg_dump", major)
    assert binary_major(pg_dump) >= major
    check_dump_compatible(pg_dump, major)
    with pytest.raises(ConnectionFailure, match=r"pg_dump 99 or newer is needed"):
        check_dump_compatible(pg_dump, 99)


def test_run_tool_reports_the_tools_stderr_without_the_password() -> None:
    env = DatabaseUrl.parse("postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere").libpq_env()
    pg_dump = find_binary("pg_dump")
    with pytest.raises(ConnectionFailure, match=r"dumping the schema failed \(pg_dump\): .*port 1 failed") as failure:
        run_tool([pg_dump, "--schema-only"], env, "dumping the schema")
    assert "s3cret-pw" not in str(failure.value)
