"""`dbguard run` as a real process under real faults: SIGKILL during the backup, the script and the gate;
the run's backend terminated mid-script; SIGTERM and Ctrl-C mid-statement; a full disk and a corrupt
dump for the backup; a second run on the same target.

Each proves the database unchanged (every table's count and content hash equal to the pre-image), that
no process or backend of the run is left, and that the journal tells the truth (an intent without an
outcome after SIGKILL, which `journal list` and the next run report) and still verifies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbguard.journal import Journal, group_runs
from dbguard.sandbox.pgtools import find_binary
from tests.test_backup import cli
from tests.test_backup_faults import tool_child, wait_for
from tests.test_children import running
from tests.test_run import OldSnapshot, content, execute, invalid_indexes, query, sql_invariant

ROOT = Path(__file__).parent.parent
POLICY = """
name = "faults"
[timeouts]
lock_timeout = "2s"
statement_timeout = "1min"
[run]
allow_skip_dry_run = true
allow_quick_verify = true
lock_retries = 0
"""
UPDATE = "UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;\n"
SLEEPING = UPDATE + "SELECT pg_sleep(30);\n"
FAST = ("--skip-dry-run", "--quick-verify")  # where the dry-run and the restore test are beside the point


@dataclass
class Target:
    """A warehouse database with a backup store and a journal of its own, for `dbguard run` processes."""

    url: str
    tmp: Path

    @property
    def journal(self) -> Path:
        return self.tmp / "journal.jsonl"

    @property
    def store_dir(self) -> Path:
        return self.tmp / "backups"

    @property
    def database(self) -> str:
        return self.url.rsplit("/", 1)[1]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DBGUARD_BACKUP_DIR": str(self.store_dir), "DBGUARD_JOURNAL": str(self.journal),
                **extra}  # fmt: skip

    def args(self, sql: str, *options: str, invariants: str = "", top: str = "", name: str = "script.sql",
             lock_timeout: str = "2s") -> list[str]:  # fmt: skip
        """`top`: the policy's top-level settings; `invariants`: its [[invariants]]."""
        script = self.tmp / name
        script.write_text(sql)
        policy = self.tmp / f"{name}.policy.toml"
        policy.write_text(top + POLICY.replace('lock_timeout = "2s"', f'lock_timeout = "{lock_timeout}"') + invariants)
        return ["run", str(script), "--db", self.url, "--yes", "--policy", str(policy), *options]

    @contextlib.contextmanager
    def running(self, sql: str, *options: str, invariants: str = "", top: str = "", prefix: tuple[str, ...] = (),
                lock_timeout: str = "2s", **env: str) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
        """`dbguard run` in a process of its own; killed and reaped at the end if still running."""
        command = [*prefix, sys.executable, "-m", "dbguard",
                   *self.args(sql, *options, invariants=invariants, top=top, lock_timeout=lock_timeout)]  # fmt: skip
        process = subprocess.Popen(command, cwd=ROOT, env=self.env(**env), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()

    def run(self, sql: str, *options: str, name: str = "script.sql", **env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dbguard", *self.args(sql, *options, name=name)]
        return subprocess.run(command, cwd=ROOT, env=self.env(**env), capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip

    def backends(self, where: str = "true") -> list[tuple[Any, ...]]:
        """Other sessions on the database: (pid, application_name, state, wait_event_type, query)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(f"SELECT pid, application_name, state, wait_event_type, query FROM pg_stat_activity "
                                f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({where})"
                                ).fetchall()  # fmt: skip

    def backend(self, where: str, process: subprocess.Popen[str], what: str) -> int:
        """Wait for a backend matching `where` while `process` runs; its pid."""
        return int(wait_for(what, lambda: next(iter(self.backends(where)), None), process)[0])  # type: ignore[arg-type]

    def wait_until_no_backend(self, where: str) -> None:
        """The server ends a dead client's session (client_connection_check_interval, or at once when idle)."""
        wait_for("the run's backends to end", lambda: None if self.backends(where) else True, None, timeout=20)

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """run id -> its outcome's fields (None without one), after `journal verify` passes on the CLI."""
        code, output = cli("journal", "verify", "--journal", str(self.journal))
        assert code == 0 and output.startswith("journal OK"), output
        runs = group_runs(Journal(self.journal).verify().records)
        return {run.run_id: (dict(run.outcome.fields) if run.outcome else None) for run in runs}  # type: ignore[misc]

    def attempts(self) -> list[dict[str, Any]]:
        """Every attempt record's fields, in journal order."""
        return [dict(r.fields) for r in Journal(self.journal).verify().records if r.kind == "attempt"]

    def only_outcome(self) -> dict[str, Any] | None:
        (outcome,) = self.outcomes().values()
        return outcome


@pytest.fixture
def target(warehouse_pg: str, tmp_path: Path) -> Target:
    return Target(warehouse_pg, tmp_path)


DBGUARD_SESSIONS = "application_name LIKE 'dbguard%' OR application_name = 'pg_dump'"
RUN_SLEEPING = "application_name = 'dbguard' AND state = 'active' AND query LIKE '%pg_sleep(30)%'"


def assert_crash_reported(target: Target, before: dict[str, tuple[int, str]]) -> None:
    """After a SIGKILL: nothing of the run is left, nothing changed, and the journal says it crashed, in
    `journal list` and at the start of the next run, which commits."""
    target.wait_until_no_backend(DBGUARD_SESSIONS)
    assert content(target.url) == before
    (crashed,) = target.outcomes().items()
    assert crashed[1] is None
    code, listing = cli("journal", "list", "--journal", str(target.journal))
    assert code == 0 and f"{crashed[0]}  " in listing and "NO OUTCOME (crashed?)" in listing, listing
    after = target.run(UPDATE, *FAST, name="next.sql")
    assert after.returncode == 0, after.stderr
    note = f"run {crashed[0]} on this target, started "
    assert note in after.stderr and "has no outcome in the journal: it crashed or was killed" in after.stderr
    assert note in after.stdout  # the report's notes
    outcomes = target.outcomes()
    assert outcomes[crashed[0]] is None and len(outcomes) == 2


def test_sigkill_during_the_backup(target: Target) -> None:
    """pg_dump dumps the whole schema, so it waits for a session holding ACCESS EXCLUSIVE on a table it
    only describes: the run is caught mid-backup, with its EXCLUSIVE locks held and pg_dump running."""
    before = content(target.url)
    holder = psycopg.connect(target.url, application_name="schema change")
    pg_dump: int | None = None
    try:
        holder.execute("LOCK TABLE warehouses IN ACCESS EXCLUSIVE MODE")
        with target.running(UPDATE, *FAST, lock_timeout="60s") as process:
            target.backend("application_name = 'pg_dump' AND wait_event_type = 'Lock'", process, "pg_dump waiting")
            pg_dump = tool_child(process.pid, "pg_dump", "--snapshot=")
            assert pg_dump is not None
            process.kill()
            process.wait()
        orphan = pg_dump
        wait_for("pg_dump to die with dbguard", lambda: None if running(orphan) else True, None)
    finally:
        holder.close()
        if pg_dump is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pg_dump, signal.SIGKILL)
    left = sorted(p.name for p in target.store_dir.iterdir())
    assert all(name.startswith(".") and ".partial-" in name for name in left), left  # no manifest: no backup
    assert_crash_reported(target, before)


def test_sigterm_during_the_backup_stops_pg_dump_and_journals_it(target: Target) -> None:
    before = content(target.url)
    holder = psycopg.connect(target.url, application_name="schema change")
    try:
        holder.execute("LOCK TABLE warehouses IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it, as above
        with target.running(UPDATE, *FAST, lock_timeout="60s") as process:
            target.backend("application_name = 'pg_dump' AND wait_event_type = 'Lock'", process, "pg_dump waiting")
            pg_dump = tool_child(process.pid, "pg_dump", "--snapshot=")
            assert pg_dump is not None
            process.terminate()
            stdout, stderr = process.communicate(timeout=60)
    finally:
        holder.close()
    assert process.returncode == 143, stderr
    assert not running(pg_dump)
    assert stdout.startswith("NOT EXECUTED: ") and "interrupted by SIGTERM" in stdout, stdout
    assert not list(target.store_dir.iterdir())  # the partial dump removed, no manifest
    assert content(target.url) == before
    outcome = target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 143 and outcome["transaction"] == "not executed"
    assert [(a["result"], a["error"]) for a in target.attempts()] == [("rolled back", "interrupted by SIGTERM")]


def test_sigkill_during_the_script(target: Target) -> None:
    before = content(target.url)
    with target.running(SLEEPING, *FAST) as process:
        target.backend(RUN_SLEEPING, process, "the script's pg_sleep")
        process.kill()
        process.wait()
    assert_crash_reported(target, before)


def test_sigkill_during_the_gate(target: Target) -> None:
    sleeping = sql_invariant("slow", "SELECT 1 FROM pg_sleep(30) AS s(v) WHERE v::text = 'never'")
    before = content(target.url)
    with target.running(UPDATE, *FAST, invariants=sleeping) as process:
        target.backend(RUN_SLEEPING, process, "the gate's invariant")
        process.kill()
        process.wait()
    assert_crash_reported(target, before)


def test_the_run_backend_terminated_mid_script_is_resolved_on_a_new_connection(target: Target) -> None:
    before = content(target.url)
    with target.running(SLEEPING, *FAST) as process:
        pid = target.backend(RUN_SLEEPING, process, "the script's pg_sleep")
        execute(target.url, f"SELECT pg_terminate_backend({pid})")
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 6, stderr
    assert "ROLLED BACK" in stdout and "outcome learnt from the server: txid_status(" in stdout, stdout
    assert "= 'aborted', asked on a new connection" in stdout
    assert content(target.url) == before
    outcome = target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 6 and outcome["transaction"] == "rolled back"
    assert "'aborted'" in outcome["resolved_by"] and "the connection was lost" in outcome["error"]
    assert [a["result"] for a in target.attempts()] == ["connection lost"]


@pytest.mark.parametrize(("signum", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_mid_statement_cancels_it_rolls_back_and_proves_it(target: Target, signum: int, code: int,
                                                                    name: str) -> None:  # fmt: skip
    """While the run sleeps in a statement, a second run on the target refuses at once (exit 4); then the
    signal: the server cancels the statement, the run rolls back, proves it, journals it and exits."""
    before = content(target.url)
    with target.running(SLEEPING, *FAST) as process:
        pid = target.backend(RUN_SLEEPING, process, "the script's pg_sleep")
        started = time.monotonic()
        second = target.run(UPDATE, name="second.sql")  # with its dry-run: refused before it
        assert second.returncode == 4, second.stderr
        assert f"another dbguard run is running on {target.database} (backend pid {pid}, dbguard, for " in (
            second.stderr)  # fmt: skip
        assert "dry-run" not in second.stderr and time.monotonic() - started < 10
        process.send_signal(signum)
        signalled = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert time.monotonic() - signalled < 10  # not the 30 s of pg_sleep: the statement was cancelled
    assert not target.backends(RUN_SLEEPING)
    assert "step 1: ROLLBACK, then proving it" in stderr
    assert stdout.startswith("ROLLED BACK: ") and f"interrupted by {name}" in stdout, stdout
    assert "PASS                rollback proved" in stdout
    assert content(target.url) == before
    outcomes = target.outcomes()
    (outcome,) = [o for o in outcomes.values() if o and o["exit_code"] == code]
    assert outcome["transaction"] == "rolled back" and f"interrupted by {name}" in outcome["error"]
    statements = [(s["kind"], s["rows"], s["error"]) for s in outcome["statements"]]
    assert statements == [("UPDATE", 40, None), ("SELECT", None, f"interrupted by {name}")]
    assert [(a["result"], a["error"]) for a in target.attempts()] == [("rolled back", f"interrupted by {name}")]
    assert [o["exit_code"] for o in outcomes.values() if o] == [code]  # the refused run wrote no intent


def test_sigterm_during_the_gate_rolls_back_and_proves_it(target: Target) -> None:
    sleeping = sql_invariant("slow", "SELECT 1 FROM pg_sleep(30) AS s(v) WHERE v::text = 'never'")
    before = content(target.url)
    with target.running(UPDATE, *FAST, invariants=sleeping) as process:
        target.backend(RUN_SLEEPING, process, "the gate's invariant")
        process.terminate()
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert not target.backends(RUN_SLEEPING)
    assert stdout.startswith("ROLLED BACK: ") and "interrupted by SIGTERM" in stdout, stdout
    assert "PASS                rollback proved" in stdout
    assert content(target.url) == before
    outcome = target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 143 and outcome["transaction"] == "rolled back"
    assert [(s["kind"], s["rows"]) for s in outcome["statements"]] == [("UPDATE", 40)]


def test_sigterm_during_a_concurrent_index_build_drops_what_it_built(target: Target) -> None:
    """Step 2 builds an index CONCURRENTLY, outside a transaction; it waits for an older snapshot after
    making its INVALID index. SIGTERM: the build is cancelled and its index dropped; step 1 stays
    committed, and the report gives the restore command."""
    before = content(target.url)
    holder = OldSnapshot(target.url)
    try:
        sql = UPDATE + "-- dbguard: step\nCREATE INDEX CONCURRENTLY stock_qty ON stock (qty);\n"
        with target.running(sql, *FAST, top="allow_non_transactional = true\n") as process:
            target.backend("application_name = 'dbguard' AND wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX%'",
                           process, "the index build waiting")  # fmt: skip
            process.terminate()
            stdout, stderr = process.communicate(timeout=60)
    finally:
        holder.close()
    assert process.returncode == 143, stderr
    assert stdout.startswith("PARTLY COMMITTED: "), stdout
    assert "interrupted by SIGTERM; the INVALID index public.stock_qty it left was dropped" in stdout
    assert "Earlier steps stayed committed. To bring the data back:\n  dbguard restore " in stdout
    assert invalid_indexes(target.url) == [] and not query(target.url, "SELECT to_regclass('stock_qty')")[0][0]
    assert content(target.url)["public.stock"] != before["public.stock"]
    outcome = target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 143 and outcome["transaction"] == "partly committed"


@pytest.fixture
def big_target(target: Target) -> Target:
    """The warehouse with a table whose dump is about 1 MiB."""
    execute(target.url, "CREATE TABLE movements (id bigint PRIMARY KEY, note text NOT NULL);"
                        "INSERT INTO movements SELECT i, md5(i::text) || md5((-i)::text) "
                        "FROM generate_series(1, 30000) i")  # fmt: skip
    return target


def test_a_full_disk_for_the_backup_stops_the_run_before_the_script(big_target: Target) -> None:
    """`ulimit -f` (inherited by pg_dump): its write hits the file size limit, pg_dump dies of SIGXFSZ."""
    before = content(big_target.url)
    sql = "UPDATE movements SET note = 'changed' WHERE id < 10;\n"
    limited = ("bash", "-c", 'ulimit -f 256; exec "$@"', "bash")  # 256 blocks of 512 bytes: 128 KiB
    with big_target.running(sql, *FAST, prefix=limited) as process:
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 5, stderr
    assert "pg_dump was killed by SIGXFSZ" in stderr and "no backup was written" in stderr
    assert content(big_target.url) == before
    assert not [p for p in big_target.store_dir.iterdir() if not p.name.startswith(".")]
    outcome = big_target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 5 and outcome["transaction"] == "not executed"


def test_a_corrupt_backup_stops_the_run_before_the_script(target: Target, tmp_path: Path) -> None:
    """A pg_dump whose archive reaches the disk with one byte flipped in its table data (what a bad disk or
    controller does): the sha256 is taken of what was written, so only the restore test can tell."""
    real = find_binary("pg_dump", 15)
    bin_dir = tmp_path / "pg-bin"
    bin_dir.mkdir()
    for tool in ("pg_restore", "initdb", "pg_ctl", "postgres"):
        (bin_dir / tool).symlink_to(real.parent / tool)
    wrapper = bin_dir / "pg_dump"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        "{real}" "$@" || exit $?
        for arg in "$@"; do case "$arg" in --file=*) file="${{arg#--file=}}";; esac; done
        [ -z "$file" ] || exec "{sys.executable}" -c '
        import sys
        data = bytearray(open(sys.argv[1], "rb").read())
        data[len(data) - 40] ^= 0xFF  # inside the compressed rows of the last table dumped
        open(sys.argv[1], "wb").write(bytes(data))' "$file"
        """))  # fmt: skip
    wrapper.chmod(0o755)
    before = content(target.url)
    result = target.run(UPDATE, "--skip-dry-run", DBGUARD_PG_BIN=str(bin_dir))
    assert result.returncode == 5, result.stderr
    assert "failed verification: the dump does not restore: could not uncompress data" in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("nothing was executed")
    assert content(target.url) == before
    (manifest,) = target.store_dir.glob("*.json")
    assert json.loads(manifest.read_text())["verification"]["status"] == "FAILED"
    outcome = target.only_outcome()
    assert outcome is not None and outcome["exit_code"] == 5 and outcome["transaction"] == "not executed"


def test_pg_dump_waits_no_longer_than_the_lock_timeout_while_the_tables_are_locked(target: Target) -> None:
    """pg_dump describes every table, so a session holding an unrelated table would make it wait for ever,
    and the run's writers with it: past lock_timeout the attempt ends, nothing run, and is journaled."""
    before = content(target.url)
    holder = psycopg.connect(target.url, application_name="schema change")
    try:
        holder.execute("LOCK TABLE warehouses IN ACCESS EXCLUSIVE MODE")
        result = target.run(UPDATE, *FAST)
    finally:
        holder.close()
    assert result.returncode == 6, result.stderr
    assert "pg_dump waited longer than the lock timeout" in result.stdout, result.stdout
    assert content(target.url) == before
    assert [a["result"] for a in target.attempts()] == ["lock timeout"]
    assert not [p for p in target.store_dir.iterdir() if not p.name.startswith(".")]
