"""Connection parameters cannot redirect dbguard: not the URL's query, not a password holding libpq syntax,
not the libpq environment. Every connection proves where it landed (issue: the target is never written by
accident)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dbguard.errors import ConnectionFailure, UsageError
from dbguard.sandbox.marker import SandboxMarker, set_marker
from dbguard.targets import postgres
from dbguard.targets.url import STEERING_ENVIRONMENT, DatabaseUrl


def _count(url: str, table: str = "t") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def shop(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50)")
    return pg_url


@pytest.mark.parametrize(
    "query",
    ["dbname=shop", "user=postgres", "service=prod", "servicefile=/tmp/x",
     "options=-csession_replication_role%3Dreplica", "hostaddr=127.0.0.1", "target_session_attrs=any",
     "host=127.0.0.1,localhost", "unknown_knob=1"],
)
def test_a_query_that_steers_the_connection_is_a_usage_error(query: str) -> None:
    with pytest.raises(UsageError) as caught:
        DatabaseUrl.parse(f"postgresql://postgres:SEKRET@127.0.0.1:5432/shop?{query}")
    assert "SEKRET" not in str(caught.value) and "may not set" in str(caught.value)


def test_host_and_port_in_the_query_only_where_the_url_leaves_them_out() -> None:
    assert DatabaseUrl.parse("postgresql://u@/db?host=/run/postgresql&port=5433").connect_params()["host"] == (
        "/run/postgresql"
    )
    with pytest.raises(UsageError, match="already in the URL"):
        DatabaseUrl.parse("postgresql://u@127.0.0.1/db?host=/run/postgresql")


def test_dbguard_decides_database_host_port_and_user() -> None:
    params = DatabaseUrl.parse("postgresql://bob:pw@127.0.0.1:5433/shop?sslmode=disable").connect_params()
    assert params == {"host": "127.0.0.1", "port": "5433", "dbname": "shop", "user": "bob", "password": "pw",
                      "sslmode": "disable"}  # fmt: skip


def test_the_dry_run_repro_is_refused_and_the_target_keeps_its_rows(shop: str, tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("DELETE FROM t WHERE id <= 10;\n")
    name = DatabaseUrl.parse(shop).database
    result = subprocess.run(
        [sys.executable, "-m", "dbguard", "dry-run", str(script), "--db", f"{shop}?dbname={name}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "may not set 'dbname'" in result.stderr and "Traceback" not in result.stderr
    assert _count(shop) == 50


@pytest.mark.parametrize("password", ["pw\tdbname=postgres", "pw\rdbname=postgres", "pw\ndbname=postgres",
                                      "pw' dbname='postgres", "pw\\' dbname=postgres"])  # fmt: skip
def test_a_password_holding_libpq_syntax_stays_a_password(shop: str, password: str) -> None:
    """Trust authentication ignores the password: what matters is that it cannot start a parameter."""
    base = DatabaseUrl.parse(shop)
    url = DatabaseUrl(base.url.set(password=password))
    with postgres.connect(url) as target:
        row = target.conn.execute("SELECT current_database()").fetchone()
        assert row is not None and row[0] == base.database
    env = url.libpq_env()
    assert env["PGPASSWORD"] == password and env["PGDATABASE"] == base.database


def test_the_libpq_environment_cannot_steer_a_connection(
    shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text("[evil]\ndbname=postgres\noptions=-c work_mem=1234kB\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGSERVICE", "evil")
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1234kB")
    monkeypatch.setenv("PGDATABASE", "postgres")
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.2")  # would override the address of the URL's host
    with postgres.connect(DatabaseUrl.parse(shop)) as target:
        row = target.conn.execute("SELECT current_database(), current_setting('work_mem')").fetchone()
    assert row is not None and row[0] == DatabaseUrl.parse(shop).database and row[1] != "1234kB"
    env = postgres.scrub_libpq_environment()
    assert not set(STEERING_ENVIRONMENT) & set(env)


def test_a_sandbox_url_refuses_a_database_without_its_marker(shop: str) -> None:
    url = DatabaseUrl.parse(shop)
    with pytest.raises(ConnectionFailure, match="not the sandbox dbguard made"):
        postgres.connect(url.expecting_sandbox("feedfacecafebeef"))
    marker = SandboxMarker.new()
    with psycopg.connect(shop, autocommit=True) as conn:
        set_marker(conn, url.database, marker)
    with pytest.raises(ConnectionFailure, match="not the sandbox dbguard made"):
        postgres.connect(url.expecting_sandbox("another-runs-token"))
    with postgres.connect(url.expecting_sandbox(marker.token)) as sandbox:
        assert sandbox.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_read_only_connection_cannot_write(shop: str) -> None:
    with postgres.connect(DatabaseUrl.parse(shop), read_only=True) as target:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            target.conn.execute("DELETE FROM t")
        target.conn.rollback()
    assert _count(shop) == 50


def test_a_sandbox_url_carries_its_marker_and_nothing_else_answers_to_it(shop: str) -> None:
    from dbguard.sandbox import open_sandbox

    target = DatabaseUrl.parse(shop)
    with open_sandbox(target, "server", {"public.t"}) as sandbox:
        assert sandbox.marker is not None and sandbox.url.sandbox_token == sandbox.marker.token
        with postgres.connect(sandbox.url) as copy:
            row = copy.conn.execute("SELECT count(*) FROM t").fetchone()
            assert row is not None and row[0] == 50
        redirected = DatabaseUrl(sandbox.url.url.set(database=target.database), sandbox.url.sandbox_token)
        with pytest.raises(ConnectionFailure, match="not the sandbox dbguard made"):
            postgres.connect(redirected)


def test_a_child_program_gets_no_steering_libpq_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbguard.sandbox import children

    monkeypatch.setenv("PGSERVICE", "evil")
    monkeypatch.setenv("PGOPTIONS", "-c session_replication_role=replica")
    result = children.run(["env"], env={"PGDATABASE": "chosen"})
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert "PGSERVICE" not in seen and "PGOPTIONS" not in seen and seen["PGDATABASE"] == "chosen"
