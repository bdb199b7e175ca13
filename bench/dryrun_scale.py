"""Benchmark: does the cost of `dbguard dry-run` grow with what the script touches, not with the database?

DESIGN.md, step 3: the sandbox copy is scoped to the full schema plus the data of the tables the script
reads or writes (and their foreign-key neighbours), so "its cost grows with what the script touches, not
with the size of the database". This bench puts a number on that claim.

What it measures
  1. Creates two throwaway databases on the server given by --url (an admin URL), named
     dbguard_bench_<random>_a and dbguard_bench_<random>_b, with rows generated server-side by
     generate_series:
         A  stock    --touched-rows rows (default 100,000): bigint primary key, a few columns and a
                     secondary index on (warehouse_id, product_id)
         B  the same stock, plus ledger: --untouched-rows rows (default 2,000,000), a few columns and a
                     primary key, and no foreign key to or from stock, so the script never touches it
     Both are VACUUM ANALYZEd. They are dropped at the end (DROP DATABASE ... WITH (FORCE)), whatever
     happens.
  2. The script under test (written to bench/out/dryrun_scale.sql) touches stock only:
         SET lock_timeout = '2s';
         UPDATE stock SET qty = qty + 1 WHERE id % 10 = 0;
  3. Times whole processes, wall clock (time.perf_counter around spawn + exit), from the repository root:
         dbguard dry-run bench/out/dryrun_scale.sql --db <A or B> --format json
     One warm-up run per database (not counted), then --runs measured runs per database, interleaved
     (the database that goes first alternates every round), so that noise on the machine hits both
     alike. The ratio of medians B/A is the figure of merit; the target is <= 1.2.
  4. Then, on database B only, times `... --full` (copies every table's data, ledger included): one
     warm-up and --runs measured runs. It prints the ratio of medians full/scoped on B, which shows what
     the scoping saves.
  5. Partitions (issue 8): two more databases, C and P, hold the same stock with --partitioned-rows
     rows (default 1,000,000): in C one table, in P a table partitioned by range of id into --partitions
     partitions of equal size (default 12), with the same columns, primary key and index. The same
     script on each, scoped, with a policy (bench/out/dryrun_scale_policy.toml) that lets one statement
     change its 100,000 rows; one warm-up and --runs measured runs, interleaved: the ratio of medians
     P/C shows what partitions cost the dry-run (the copy of each partition, the gate on each); the
     target is <= 1.2.
  6. Every run must have done the real work: exit status 0 (SAFE) or 1 (BLOCKED), and its JSON report
     must hold a statements list whose UPDATE changed a tenth of stock's rows. If the JSON renderer is
     not installed (dbguard/report/dryrun_json.py missing), the bench falls back to --format text and
     checks only the exit status and that the report is non-empty; it says so in its output.
  7. Prints the database sizes (pg_database_size) of A, B, C and P, the medians (and min/max, and the
     median of the reports' copy_seconds) and the three ratios. Last, it warns if any sandbox database named in
     dbguard's output still exists (dbguard must always remove its sandbox).

How to run
    .venv/bin/python bench/dryrun_scale.py
    .venv/bin/python bench/dryrun_scale.py --runs 5 --touched-rows 100000 --untouched-rows 2000000 \\
        --partitioned-rows 1000000 --partitions 12
    .venv/bin/python bench/dryrun_scale.py --url postgresql://postgres@127.0.0.1:5432/postgres

It needs a PostgreSQL server whose --url role may create databases, and pg_dump/pg_restore of a
matching version (dbguard finds them). At the defaults it takes about 4-6 minutes on 2 cores, most of
it the --full runs, which copy the 2M-row ledger each time, and the 1M-row runs on C and P. dbguard
defaults to the one next to sys.executable (the venv's bin/), falling back to PATH; DBGUARD_* environment
variables are dropped for the measured runs. The script and the last report of each case go to bench/out/ (git-ignored).
Exit status: 0 when the measurement is complete (whether or not the target is met), 2 when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
SCRIPT_PATH = OUT_DIR / "dryrun_scale.sql"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_RATIO = 1.2
SCRIPT = "SET lock_timeout = '2s';\nUPDATE stock SET qty = qty + 1 WHERE id % 10 = 0;\n"
# C and P: the same script changes 100,000 rows, which the default policy's max_rows_affected (10,000) blocks.
POLICY_PATH = OUT_DIR / "dryrun_scale_policy.toml"
POLICY = 'name = "dryrun-scale"\n[thresholds]\nmax_rows_affected = 100000000\n'
MISSING_JSON_RENDERER = "dbguard.report.dryrun.json"
SANDBOX_NAME = re.compile(r"dbguard_sandbox_[0-9a-f]+")
SANDBOXES_SEEN: set[str] = set()  # the scratch databases our own dbguard runs named in their output


class BenchFailure(Exception):
    """The measurement is not valid: a run failed or did not do the work it should have."""


# --------------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


STOCK = """CREATE TABLE stock (
    id bigint PRIMARY KEY,
    warehouse_id integer NOT NULL,
    product_id integer NOT NULL,
    qty integer NOT NULL,
    reserved integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
)"""


def load_stock(url: str, rows: int, partitions: int = 0) -> None:
    """The table the script touches: a primary key, a secondary index, a few columns. With `partitions`, the
    same table partitioned by range of id into that many partitions of equal size."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(STOCK + (" PARTITION BY RANGE (id)" if partitions else ""))
        size = -(-rows // partitions) if partitions else 0
        for i in range(partitions):
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF stock FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(f"stock_p{i + 1:02d}"), sql.Literal(1 + i * size), sql.Literal(1 + (i + 1) * size)
                )
            )
        conn.execute(
            """INSERT INTO stock (id, warehouse_id, product_id, qty, reserved, updated_at)
               SELECT g, g %% 50 + 1, g %% 5000 + 1, (g * 7) %% 1000, g %% 13,
                      timestamptz '2026-01-01' + g * interval '1 second'
               FROM generate_series(1, %s::bigint) AS g""",
            (rows,),
        )
        conn.execute("CREATE INDEX stock_warehouse_product_idx ON stock (warehouse_id, product_id)")
        conn.execute("VACUUM ANALYZE stock")


def load_ledger(url: str, rows: int) -> None:
    """The table the script never touches: no foreign key to or from stock, a primary key, a few columns."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """CREATE TABLE ledger (
                id bigint PRIMARY KEY,
                account_id integer NOT NULL,
                amount numeric(12, 2) NOT NULL,
                booked_at timestamptz NOT NULL,
                memo text NOT NULL
            )"""
        )
        conn.execute(
            """INSERT INTO ledger (id, account_id, amount, booked_at, memo)
               SELECT g, g %% 10000 + 1, ((g * 37) %% 100000) / 100.0,
                      timestamptz '2020-01-01' + g * interval '1 minute', 'ledger entry ' || g
               FROM generate_series(1, %s::bigint) AS g""",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE ledger")


def database_size(admin_url: str, name: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def existing_databases(admin_url: str, names: set[str]) -> list[str]:
    """Which of `names` still exist on the server."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        rows = admin.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (sorted(names),)).fetchall()
    return sorted(str(r[0]) for r in rows)


# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    exit_code: int
    stdout: str
    stderr: str
    copy_seconds: float | None = None  # the report's copy_seconds: creating and filling the sandbox


@dataclass
class Case:
    label: str
    database: str
    url: str
    full: bool = False
    policy: Path | None = None
    runs: list[Run] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    def summary(self) -> str:
        times = [r.seconds for r in self.runs]
        codes = sorted({r.exit_code for r in self.runs})
        copies = [r.copy_seconds for r in self.runs if r.copy_seconds is not None]
        copy = f"   (copy_seconds median {statistics.median(copies):.3f})" if copies else ""
        return (
            f"median {self.median():7.3f} s   min {min(times):7.3f}   max {max(times):7.3f}   "
            f"runs {len(times)}   exit {','.join(map(str, codes))}{copy}"
        )


def find_dbguard(explicit: str | None) -> str:
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "dbguard"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbguard")
    if found is None:
        raise BenchFailure("dbguard not found next to this Python or on PATH: pass --dbguard PATH")
    return found


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DBGUARD_")}


def run_dry_run(dbguard: str, case: Case, fmt: str, env: dict[str, str]) -> Run:
    argv = [dbguard, "dry-run", str(SCRIPT_PATH.relative_to(REPO_ROOT)), "--db", case.url, "--format", fmt]
    if case.full:
        argv.append("--full")
    if case.policy:
        argv += ["--policy", str(case.policy.relative_to(REPO_ROOT))]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    SANDBOXES_SEEN.update(SANDBOX_NAME.findall(proc.stdout + proc.stderr))
    return Run(seconds, proc.returncode, proc.stdout, proc.stderr)


def json_renderer_missing(run: Run) -> bool:
    return run.exit_code not in (0, 1) and MISSING_JSON_RENDERER in run.stderr


def _dicts_under(value: Any, key: str) -> Iterator[list[Any]]:
    """Every list found under `key`, anywhere in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, list):
                yield v
            yield from _dicts_under(v, key)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts_under(item, key)


ROW_KEYS = ("rows", "rows_affected", "row_count", "rowcount", "rows_changed")
TEXT_KEYS = ("kind", "text", "sql", "statement", "command")


def update_rows(report: Any) -> list[int]:
    """The row counts of the UPDATE statements in a dry-run JSON report's statements list(s)."""
    found: list[int] = []
    for statements in _dicts_under(report, "statements"):
        for entry in statements:
            if not isinstance(entry, dict):
                continue
            words = " ".join(str(entry.get(k, "")) for k in TEXT_KEYS).lower()
            if "update" not in words:
                continue
            rows = next((entry[k] for k in ROW_KEYS if isinstance(entry.get(k), int)), None)
            if rows is not None:
                found.append(rows)
    return found


def verify(run: Run, case: Case, fmt: str, expected_rows: int) -> str:
    """Check the run did the real work; returns a one-line description of what was checked."""
    if run.exit_code not in (0, 1):
        tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise BenchFailure(f"{case.label}: dbguard exited {run.exit_code}: {tail}")
    if not run.stdout.strip():
        raise BenchFailure(f"{case.label}: dbguard exited {run.exit_code} with an empty report")
    if fmt == "text":
        return f"exit {run.exit_code}, text report of {len(run.stdout.splitlines())} lines"
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError as error:
        raise BenchFailure(f"{case.label}: the report is not JSON: {error}") from error
    if not isinstance(report, dict) or not any(True for _ in _dicts_under(report, "statements")):
        raise BenchFailure(f"{case.label}: the JSON report has no statements list")
    if report.get("scoped") is case.full:  # the report says whether the copy was scoped
        raise BenchFailure(f"{case.label}: the report says scoped={report.get('scoped')}, expected {not case.full}")
    if isinstance(report.get("copy_seconds"), int | float):
        run.copy_seconds = float(report["copy_seconds"])
    rows = update_rows(report)
    if expected_rows not in rows:
        said = rows or "none"
        raise BenchFailure(f"{case.label}: expected an UPDATE of {expected_rows} rows, the report says {said}")
    copied = report.get("tables_copied")
    if isinstance(copied, list) and len(copied) > 3:  # a partitioned table: its partitions, counted
        copied = [*copied[:2], f"... {len(copied)} tables in all"]
    extra = f", tables_copied {copied}" if isinstance(copied, list) else ""
    return (
        f"exit {run.exit_code}, verdict {report.get('verdict', '?')}, scoped {report.get('scoped')}, "
        f"UPDATE changed {expected_rows} rows{extra}"
    )


def save_last(case: Case, run: Run, fmt: str) -> None:
    stem = f"dryrun_scale_{case.label.lower().replace(' ', '_')}"
    (OUT_DIR / f"{stem}.{'json' if fmt == 'json' else 'txt'}").write_text(run.stdout)
    (OUT_DIR / f"{stem}_stderr.txt").write_text(run.stderr)


def measure(
    dbguard: str, cases: list[Case], runs: int, fmt: str, env: dict[str, str], expected_rows: int
) -> dict[str, str]:
    """One warm-up per case, then `runs` rounds, the case that goes first rotating every round."""
    checked: dict[str, str] = {}
    for case in cases:
        warm = run_dry_run(dbguard, case, fmt, env)
        checked[case.label] = verify(warm, case, fmt, expected_rows)
        print(f"  warm-up  {case.label:<12} {warm.seconds:7.3f} s   {checked[case.label]}", flush=True)
    for round_no in range(runs):
        shift = round_no % len(cases)
        for case in cases[shift:] + cases[:shift]:
            run = run_dry_run(dbguard, case, fmt, env)
            verify(run, case, fmt, expected_rows)
            case.runs.append(run)
            print(f"  run {round_no + 1}    {case.label:<12} {run.seconds:7.3f} s   exit {run.exit_code}", flush=True)
    for case in cases:
        save_last(case, case.runs[-1], fmt)
    return checked


def pick_format(dbguard: str, case: Case, env: dict[str, str], wait_seconds: float) -> str:
    """json, unless the JSON renderer is missing even after waiting `wait_seconds` for it: then text."""
    deadline = time.monotonic() + wait_seconds
    while True:
        probe = run_dry_run(dbguard, case, "json", env)
        if not json_renderer_missing(probe):
            return "json"
        if time.monotonic() >= deadline:
            print(
                "NOTE: --format json fails (dbguard/report/dryrun_json.py is missing); falling back to "
                "--format text: only the exit status and a non-empty report are checked",
                flush=True,
            )
            return "text"
        print("  --format json is not available yet (no dbguard/report/dryrun_json.py); waiting 30 s", flush=True)
        time.sleep(30)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case, after 1 warm-up (default 5)")
    parser.add_argument("--touched-rows", type=int, default=100_000, help="rows of stock (default 100,000)")
    parser.add_argument(
        "--untouched-rows", type=int, default=2_000_000, help="rows of ledger in database B (default 2,000,000)"
    )
    parser.add_argument(
        "--partitioned-rows", type=int, default=1_000_000, help="rows of stock in databases C and P (default 1,000,000)"
    )
    parser.add_argument("--partitions", type=int, default=12, help="partitions of stock in database P (default 12)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"admin URL of the server (default {DEFAULT_URL})")
    parser.add_argument("--dbguard", default=None, help="the dbguard executable (default: the venv's)")
    parser.add_argument(
        "--wait-for-json",
        type=float,
        default=0.0,
        help="seconds to wait for the JSON renderer to appear before falling back to text (default 0)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or min(args.touched_rows, args.partitioned_rows) < 10 or args.untouched_rows < 1:
        parser.error("--runs must be >= 1, --touched-rows and --partitioned-rows >= 10, --untouched-rows >= 1")
    if args.partitions < 2:
        parser.error("--partitions must be >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbguard = find_dbguard(args.dbguard)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    SCRIPT_PATH.write_text(SCRIPT)
    POLICY_PATH.write_text(POLICY)
    expected_rows = args.touched_rows // 10
    env = clean_env()
    prefix = f"dbguard_bench_{secrets.token_hex(4)}"
    small, large, plain, partitioned = f"{prefix}_a", f"{prefix}_b", f"{prefix}_c", f"{prefix}_p"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"dryrun_scale  {date.today()}  {platform.node()}  {os.cpu_count()} CPUs  load average {load:.2f} at start")
    print(f"dbguard       {dbguard}")
    print(f"script        {SCRIPT_PATH.relative_to(REPO_ROOT)}: {SCRIPT.strip().replace(chr(10), ' ')}")
    created: list[str] = []
    try:
        started = time.perf_counter()
        for name in (small, large):
            create_database(args.url, name)
            created.append(name)
            load_stock(with_database(args.url, name), args.touched_rows)
        load_ledger(with_database(args.url, large), args.untouched_rows)
        for name, partitions in ((plain, 0), (partitioned, args.partitions)):
            create_database(args.url, name)
            created.append(name)
            load_stock(with_database(args.url, name), args.partitioned_rows, partitions)
        print(f"setup         {time.perf_counter() - started:.1f} s (four databases, rows by generate_series)")
        size_a, size_b = database_size(args.url, small), database_size(args.url, large)
        print(f"A  {small:<28} stock {args.touched_rows:>11,} rows                          {mib(size_a):>12}")
        print(
            f"B  {large:<28} stock {args.touched_rows:>11,} rows + ledger {args.untouched_rows:>11,} rows "
            f"{mib(size_b):>12}  ({size_b / size_a:.1f}x A)"
        )
        size_c, size_p = database_size(args.url, plain), database_size(args.url, partitioned)
        print(f"C  {plain:<28} stock {args.partitioned_rows:>11,} rows                          {mib(size_c):>12}")
        print(f"P  {partitioned:<28} stock {args.partitioned_rows:>11,} rows in {args.partitions} partitions "
              f"{mib(size_p):>15}")  # fmt: skip

        case_a = Case("A scoped", small, with_database(args.url, small))
        case_b = Case("B scoped", large, with_database(args.url, large))
        case_full = Case("B full", large, with_database(args.url, large), full=True)
        fmt = pick_format(dbguard, case_a, env, args.wait_for_json)
        print(f"\nscoped dry-run, --format {fmt}: 1 warm-up + {args.runs} runs per database, interleaved", flush=True)
        checked = measure(dbguard, [case_a, case_b], args.runs, fmt, env, expected_rows)
        print(f"\nfull dry-run (--full) on B, --format {fmt}: 1 warm-up + {args.runs} runs", flush=True)
        checked |= measure(dbguard, [case_full], args.runs, fmt, env, expected_rows)
        case_c = Case("C scoped", plain, with_database(args.url, plain), policy=POLICY_PATH)
        case_p = Case("P scoped", partitioned, with_database(args.url, partitioned), policy=POLICY_PATH)
        print(f"\nscoped dry-run, {args.partitioned_rows:,} rows unpartitioned (C) and in {args.partitions} partitions "
              f"(P), --format {fmt}: 1 warm-up + {args.runs} runs per database, interleaved", flush=True)  # fmt: skip
        checked |= measure(dbguard, [case_c, case_p], args.runs, fmt, env, args.partitioned_rows // 10)

        scale = case_b.median() / case_a.median()
        full_ratio = case_full.median() / case_b.median()
        partition_ratio = case_p.median() / case_c.median()
        print("\nresults (wall time of the whole dbguard process)")
        for case in (case_a, case_b, case_full, case_c, case_p):
            print(f"  {case.label:<10} {case.summary()}")
            print(f"  {'':<10} checked: {checked[case.label]}")
        print(f"  database size  A {mib(size_a)}   B {mib(size_b)}   B/A {size_b / size_a:.1f}x   C {mib(size_c)}   "
              f"P {mib(size_p)}")  # fmt: skip
        verdict = "met" if scale <= TARGET_RATIO else "not met"
        print(f"  ratio B/A scoped    {scale:.3f}   (target <= {TARGET_RATIO}: {verdict})")
        print(f"  ratio full/scoped   {full_ratio:.3f}   (on B)")
        verdict = "met" if partition_ratio <= TARGET_RATIO else "not met"
        print(f"  ratio P/C scoped    {partition_ratio:.3f}   ({args.partitions} partitions against none; target <= "
              f"{TARGET_RATIO}: {verdict})")  # fmt: skip
        if fmt == "text":
            print("  NOTE: --format json was not available; runs were checked by exit status and a non-empty report")
        return 0
    except BenchFailure as error:
        print(f"\nbench failed: {error}", file=sys.stderr)
        return 2
    finally:
        for name in created:
            drop_database(args.url, name)
        leaked = existing_databases(args.url, SANDBOXES_SEEN) if SANDBOXES_SEEN else []
        if leaked:
            print(f"WARNING: dbguard left its sandbox database(s) behind: {', '.join(leaked)}", file=sys.stderr)
        else:
            print(
                f"cleanup       dropped {', '.join(created) or 'nothing'}; {len(SANDBOXES_SEEN)} sandboxes all removed"
            )


if __name__ == "__main__":
    sys.exit(main())
