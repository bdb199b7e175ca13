"""`dbguard run` under load (issue 9, section 8): real pgbench TPC-B clients on loopback write to
pgbench_accounts while `run` updates 10% of its 1,000,000 rows.

While `run` holds its EXCLUSIVE lock (backup, verification, script, gate) the clients wait; that is
expected. What must not happen: a pgbench transaction that fails, a run that does not commit, a backup
that is not the pre-image, a result that lost a client's write, or a journal with a hole.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from dbguard.sandbox import children
from dbguard.sandbox.pgtools import find_binary
from tests.warehouse import scratch_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
SCALE = 10  # pgbench_accounts holds 100,000 rows per unit of scale
ACCOUNTS = 100_000 * SCALE
CLIENTS, THREADS = 4, 2
BEFORE_SECONDS = 5
WARM_SECONDS = 2  # the load runs this long before `run` starts
LOAD_SECONDS = 60  # the bound of the background load; `run` must end inside it (20-30 s on 2 cores)
MARKER = "dbguard maintenance"
SCRIPT = f"UPDATE pgbench_accounts SET filler = '{MARKER}' WHERE aid % 10 = 0;\n"
POLICY = """\
name = "load-test"
[thresholds]
max_rows_affected = 200000  # the script updates 100,000 rows on purpose
"""
PROGRESS = re.compile(r"^progress: (?P<at>[\d.]+) s, (?P<tps>[\d.]+) tps, .*?(?P<failed>\d+) failed", re.MULTILINE)


def pgbench_summary(output: str) -> dict[str, float]:
    """tps, processed and failed transactions from pgbench's report (pgbench 15 counts failures)."""
    fields = {
        "processed": r"number of transactions actually processed: (\d+)",
        "failed": r"number of failed transactions: (\d+)",
        "tps": r"tps = ([\d.]+) \(without initial connection time\)",
    }
    summary = {}
    for key, pattern in fields.items():
        found = re.search(pattern, output)
        assert found, f"pgbench printed no {key!r}:\n{output}"
        summary[key] = float(found.group(1))
    return summary


def pgbench_args(pgbench: Path, url: str, seconds: int) -> list[str]:
    return [str(pgbench), "--no-vacuum", f"--client={CLIENTS}", f"--jobs={THREADS}", f"--time={seconds}", url]


def one_row(url: str, query: str) -> tuple[object, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def dumped_accounts(pg_restore: Path, dump: Path) -> tuple[int, int]:
    """Rows of pgbench_accounts in a custom-format dump, and how many of them carry MARKER (streamed)."""
    rows = marked = 0
    args = [pg_restore, "--data-only", "--table=pgbench_accounts", "--file=-", dump]
    with children.started(args, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        lines = iter(process.stdout)
        for line in lines:
            if line.startswith(b"COPY public.pgbench_accounts "):
                break
        for line in lines:
            if line == b"\\.\n":
                break
            rows += 1
            marked += MARKER.encode() in line
        process.stdout.read()
        assert process.wait() == 0
    return rows, marked


def test_run_commits_under_pgbench_load_and_no_client_fails(tmp_path: Path) -> None:
    with scratch_database("dbguard_load") as url:
        major = int(str(one_row(url, "SHOW server_version_num")[0])) // 10000
        pgbench = find_binary("pgbench", major)
        started = time.monotonic()
        init = children.run([pgbench, "--initialize", f"--scale={SCALE}", "--quiet", url], timeout=300)
        assert init.returncode == 0, init.stderr
        print(f"\npgbench -i -s {SCALE}: {time.monotonic() - started:.1f} s")

        before = children.run(pgbench_args(pgbench, url, BEFORE_SECONDS), timeout=BEFORE_SECONDS + 60)
        assert before.returncode == 0, before.stderr
        alone = pgbench_summary(before.stdout)
        assert alone["failed"] == 0

        (tmp_path / "maintenance.sql").write_text(SCRIPT)
        (tmp_path / "policy.toml").write_text(POLICY)
        store, journal = tmp_path / "backups", tmp_path / "journal.jsonl"
        load_args = [*pgbench_args(pgbench, url, LOAD_SECONDS), "--progress=1", "--progress-timestamp"]
        with children.started(load_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as load:
            time.sleep(WARM_SECONDS)
            assert load.poll() is None, "pgbench ended before the run started"
            run_started = time.time()
            run = children.run([sys.executable, "-m", "dbguard", "run", str(tmp_path / "maintenance.sql"),
                                "--db", url, "--yes", "--policy", str(tmp_path / "policy.toml"),
                                "--backup-dir", str(store), "--journal", str(journal), "--format", "json"],
                               cwd=ROOT, timeout=LOAD_SECONDS)  # fmt: skip
            run_ended = time.time()
            under_load = load.poll() is None
            out, err = load.communicate(timeout=LOAD_SECONDS + 60)
        assert run.returncode == 0, run.stderr
        assert under_load, f"the run ({run_ended - run_started:.1f} s) outlasted the {LOAD_SECONDS} s of load"
        assert load.returncode == 0, err.decode()
        during = pgbench_summary(out.decode())
        assert during["failed"] == 0, out.decode()
        assert during["processed"] > 0
        seconds = [(float(m["at"]), float(m["tps"]), int(m["failed"])) for m in PROGRESS.finditer(err.decode())]
        assert seconds and not any(failed for _, _, failed in seconds)
        window = [tps for at, tps, _ in seconds if run_started <= at <= run_ended + 1]
        print(f"pgbench {CLIENTS} clients, TPS before the run: {alone['tps']:.0f} ({BEFORE_SECONDS} s)")
        print(f"pgbench TPS while the run ran ({run_ended - run_started:.1f} s): {sum(window) / len(window):.0f}; "
              f"per second: {' '.join(f'{tps:.0f}' for tps in window)}")  # fmt: skip
        print(f"pgbench TPS over the whole load ({LOAD_SECONDS} s): {during['tps']:.0f}; "
              f"{during['processed']:.0f} transactions, {during['failed']:.0f} failed")  # fmt: skip

        report = json.loads(run.stdout)
        assert (report["verdict"], report["exit_code"]) == ("COMMITTED", 0)
        assert [s["rows"] for step in report["steps"] for s in step["statements"]] == [ACCOUNTS // 10]

        # The backup is the pre-image: every account, none of them marked, verified by a restore.
        manifest = json.loads((store / f"{report['backup']['id']}.json").read_text())
        assert manifest["tables"]["public.pgbench_accounts"]["rows"] == ACCOUNTS
        assert manifest["verification"]["status"] == "VERIFIED"
        assert "restore into" in manifest["verification"]["method"]
        assert dumped_accounts(find_binary("pg_restore", major), store / manifest["dump_file"]) == (ACCOUNTS, 0)

        # The result: exactly the 10% update, and every pgbench transaction whole (TPC-B's balances agree:
        # a client write lost or applied twice would break the sums).
        assert one_row(url, f"SELECT count(*), count(*) FILTER (WHERE filler = '{MARKER}'), count(*) FILTER "
                            f"(WHERE filler = '{MARKER}' AND aid % 10 = 0) FROM pgbench_accounts") == (
            ACCOUNTS, ACCOUNTS // 10, ACCOUNTS // 10)  # fmt: skip
        accounts, branches, tellers, history, transactions = one_row(url, (
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches), "
            "(SELECT sum(tbalance) FROM pgbench_tellers), (SELECT coalesce(sum(delta), 0) FROM pgbench_history), "
            "(SELECT count(*) FROM pgbench_history)"))  # fmt: skip
        assert accounts == branches == tellers == history
        assert transactions == alone["processed"] + during["processed"]

        # The journal: intent, the attempts (a LOCK TABLE refused under load is retried), and the outcome,
        # on an unbroken chain.
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        mine = [r for r in records if r["run_id"] == report["run_id"]]
        intent, *attempts, outcome = mine
        assert (intent["kind"], outcome["kind"]) == ("intent", "outcome")
        assert [a["result"] for a in attempts] == ["lock timeout"] * (len(attempts) - 1) + ["committed"]
        assert attempts[-1]["backup_id"] == report["backup"]["id"]
        assert (outcome["transaction"], outcome["exit_code"]) == ("committed", 0)
        verify = children.run([sys.executable, "-m", "dbguard", "journal", "verify", "--journal", str(journal)],
                              cwd=ROOT, timeout=60)  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
