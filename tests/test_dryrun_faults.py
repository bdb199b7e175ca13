"""A dry-run whose sandbox session is terminated by the server (pg_terminate_backend) is a connection
failure (exit 4) in one line: never an internal error, and the sandbox is removed all the same. The
target is opened read-only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.warehouse import ADMIN_URL


def _sandboxes_of(pid: int) -> list[str]:
    """The sandboxes `pid` made (their names carry it); other tests may run on the same server meanwhile."""
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbguard\\_sandbox\\_%'").fetchall()
    return [name for (name,) in rows if f"_{pid}_" in name]


def test_a_terminated_rehearsal_is_exit_4_and_removes_the_sandbox(warehouse_pg: str, tmp_path: Path) -> None:
    script = tmp_path / "slow.sql"
    script.write_text("UPDATE stock SET qty = qty WHERE product_id = 1;\nSELECT pg_sleep(60);\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "dbguard", "dry-run", str(script), "--db", warehouse_pg],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        terminated = 0
        deadline = time.monotonic() + 60
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            while not terminated and time.monotonic() < deadline and process.poll() is None:
                row = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname LIKE %s AND query LIKE '%%pg_sleep(60)%%' AND state = 'active'",
                    [f"dbguard\\_sandbox\\_%\\_{process.pid}\\_%"],
                ).fetchone()
                terminated = int(row[0]) if row else 0
                time.sleep(0.1)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert terminated == 1
    assert process.returncode == 4, stderr
    assert "the connection was lost during the rehearsal" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()[-1]) > 0 and "internal error" not in stderr
    assert _sandboxes_of(process.pid) == []


def test_a_target_says_whether_its_session_can_write(warehouse_pg: str) -> None:
    """What the dry-run report's "target opened read-only" is taken from: the session's own setting."""
    from dbguard.targets import open_target
    from dbguard.targets.url import DatabaseUrl

    url = DatabaseUrl.parse(warehouse_pg)
    with open_target(url, read_only=True) as reading, open_target(url) as writing:  # type: ignore[attr-defined]
        assert reading.read_only and not writing.read_only
