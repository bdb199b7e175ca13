"""Benchmark what `dbguard run` costs over doing the same by hand: a dump, then the script in one transaction.

Issue 9, section 9. The script updates 10% of pgbench_accounts (pgbench scale 10: 1,000,000 rows).

What it measures
  1. Creates dbguard_bench_run_<random>_pristine on the server given by --url (an admin URL) with
     `pgbench --initialize --scale=--scale` (pgbench of `pg_config --bindir`). Every measured run gets its own
     fresh copy, `CREATE DATABASE ... TEMPLATE <pristine> STRATEGY FILE_COPY` (not timed), dropped right
     after: each run does exactly the same work on exactly the same pages. All databases are dropped at
     the end (DROP DATABASE ... WITH (FORCE)) in a `finally` block.
  2. The script (bench/out/run_overhead/update_10pct.sql):
         UPDATE pgbench_accounts SET filler = 'dbguard maintenance' WHERE aid % 10 = 0;
  3. Times whole processes, wall clock, from the repository root, each started by check_speed.py's
     launcher (os.wait4: peak RSS and CPU of the process tree):
         (a)   pg_dump -Fc -t pgbench_accounts -f <file> <db>, then psql -1 -f <script> <db>   (sh -c)
         (ar)  (a), then CREATE DATABASE, pg_restore of the dump into it, DROP DATABASE           (sh -c)
         (q)   dbguard run <script> --skip-dry-run --quick-verify --yes: backup verified by sha256 and
               pg_restore --list                                                   target q/a  <= 1.3
         (f)   dbguard run <script> --skip-dry-run --yes: backup verified by a restore test
                                                                                   target f/ar <= 2.0
         (d)   dbguard run <script> --yes: the whole run, its dry-run in a sandbox included (ratio printed)
     The policy (bench/out/run_overhead/policy.toml) allows --skip-dry-run and --quick-verify and raises
     max_rows_affected to 200,000. One warm-up round (not counted), then --runs measured rounds; the
     case that goes first rotates. Every run must do the real work: exit status 0, the copy then holds
     exactly scale x 10,000 marked rows, and for dbguard a COMMITTED JSON report whose UPDATE changed
     that many rows, and a VERIFIED manifest counting every row, verified by the method asked for.
  4. Memory as the table grows: a second pristine database at --large-scale (default 40: 4,000,000
     rows); (a), (q) and (f) run on copies of it --large-runs times. The peak RSS of dbguard's process
     tree must be the same at both sizes: no row passes through dbguard. q/a at that size is printed as a
     reference: dbguard's fixed costs (start-up, plan, checks) weigh less on a bigger table.
  5. Where the time goes: (q), (f) and (d) once more with dbguard's progress lines on stderr timestamped
     as they arrive, cut into phases (start-up, check and plan; dry-run; lock, count + hash and pg_dump;
     verification; script; gate; commit, journal and report); plus the count + hash of the table on its
     own (backup_speed's table_stats timing) and pg_dump at dbguard's gzip level 1 on its own.

How to run
    .venv/bin/python bench/run_overhead.py
    .venv/bin/python bench/run_overhead.py --runs 3 --scale 10 --large-scale 40 --large-runs 2 \\
        [--url postgresql://postgres@127.0.0.1:5432/postgres] [--dbguard PATH]

It needs a PostgreSQL server whose --url role may create databases, and pgbench, pg_dump, pg_restore
and psql of the server's major version. At the defaults it takes about 5 minutes on 2 cores. dbguard
defaults to the one next to sys.executable (the venv's bin/); DBGUARD_* environment variables are
dropped, and the backups, journal and manifest key live in bench/out/run_overhead/ (git-ignored).
Exit status: 0 when the measurement is complete (whether or not the targets are met), 2 when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/ is sys.path[0] when this file is run as a script: the launcher, the database helpers and the
# lookups of the other benches are reused, not copied.
import psycopg
from backup_speed import dbguard_hash_seconds, find_dbguard, find_pg_bin, mib, server_facts
from check_speed import REPO_ROOT, BenchError, Run, launch, rss_floor_kib
from dryrun_scale import drop_database, with_database
from psycopg import sql

OUT_DIR = REPO_ROOT / "bench" / "out" / "run_overhead"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLE = "pgbench_accounts"
MARKER = "dbguard maintenance"
SCRIPT = f"UPDATE {TABLE} SET filler = '{MARKER}' WHERE aid % 10 = 0;\n"
POLICY = """\
name = "run-overhead"
[thresholds]
max_rows_affected = 200000     # the script updates 10% of the table on purpose
[run]
allow_skip_dry_run = true
allow_quick_verify = true
"""
TARGET_QUICK = 1.3  # median (q) / median (a)
TARGET_FULL = 2.0  # median (f) / median (ar)

# --------------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------------


def pgbench_init(pg_bin: Path, url: str, scale: int) -> None:
    done = subprocess.run([str(pg_bin / "pgbench"), "--initialize", f"--scale={scale}", "--quiet", url],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"pgbench --initialize failed: {done.stderr.strip()[-2000:]}")


def clone(admin_url: str, template: str, name: str) -> None:
    """A fresh copy of `template`: the same pages for every run. FILE_COPY checkpoints first, so no dirty
    buffer of an earlier run is written out during the next one."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY")
                      .format(sql.Identifier(name), sql.Identifier(template)))  # fmt: skip


def marked_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE filler = %s").format(sql.Identifier(TABLE)),
                           (MARKER,)).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every case needs: the tools, the files, the server."""

    dbguard: str
    pg_bin: Path
    admin_url: str
    env: dict[str, str]
    store: Path = OUT_DIR / "store"
    journal: Path = OUT_DIR / "journal.jsonl"
    key: Path = OUT_DIR / "manifest.key"
    script: Path = OUT_DIR / "update_10pct.sql"
    policy: Path = OUT_DIR / "policy.toml"
    dump: Path = OUT_DIR / "baseline.dump"


@dataclass
class Case:
    key: str  # a, ar, q, f, d
    label: str
    argv: Callable[[Setup, str, str], list[str]]  # (setup, copy's URL, copy's name) -> argv
    method: str = ""  # words of the verification method dbguard's manifest must name ("" for the baselines)
    shown: str = ""  # how the header shows the command (default: its argv)
    runs: list[Run] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)

    def median(self, what: Callable[[Run], float] = lambda r: r.seconds) -> float:
        return statistics.median(what(r) for r in self.runs)


def baseline(restore: bool) -> Callable[[Setup, str, str], list[str]]:
    """sh -c: pg_dump, psql -1 -f; with `restore`, then CREATE DATABASE, pg_restore into it, DROP DATABASE
    (pg_restore with the flags dbguard's verification uses)."""

    def argv(setup: Setup, url: str, name: str) -> list[str]:
        bin_ = setup.pg_bin
        script = ('set -e; "$1/pg_dump" -Fc -t pgbench_accounts -f "$2" "$3"; '
                  '"$1/psql" -X -q -v ON_ERROR_STOP=1 -1 -f "$4" "$3"')  # fmt: skip
        if restore:
            script += ('; "$1/psql" -X -q -c "CREATE DATABASE \\"$6\\" TEMPLATE template0" "$5"; '
                       '"$1/pg_restore" --no-owner --no-privileges --exit-on-error -d "$7" "$2"; '
                       '"$1/psql" -X -q -c "DROP DATABASE \\"$6\\"" "$5"')  # fmt: skip
        scratch = f"{name}_restore"
        return ["sh", "-c", script, "sh", str(bin_), str(setup.dump), url, str(setup.script), setup.admin_url,
                scratch, with_database(setup.admin_url, scratch)]  # fmt: skip

    return argv


def dbguard_run(*flags: str) -> Callable[[Setup, str, str], list[str]]:
    def argv(setup: Setup, url: str, _name: str) -> list[str]:
        return [setup.dbguard, "run", str(setup.script.relative_to(REPO_ROOT)), "--db", url, "--yes",
                "--policy", str(setup.policy), "--backup-dir", str(setup.store), "--journal", str(setup.journal),
                "--manifest-key", str(setup.key), "--format", "json", *flags]  # fmt: skip

    return argv


QUICK = "quick: no restore test"
RESTORED = "restore into"


SHOWN_A = ("sh -c 'pg_dump -Fc -t pgbench_accounts -f bench/out/run_overhead/baseline.dump <copy>; "
           "psql -X -q -v ON_ERROR_STOP=1 -1 -f bench/out/run_overhead/update_10pct.sql <copy>'")  # fmt: skip
SHOWN_AR = ("sh -c '(a); psql -c \"CREATE DATABASE <copy>_restore TEMPLATE template0\"; pg_restore --no-owner "
            "--no-privileges --exit-on-error -d <copy>_restore bench/out/run_overhead/baseline.dump; "
            "psql -c \"DROP DATABASE <copy>_restore\"'")  # fmt: skip


def make_cases() -> list[Case]:
    return [
        Case("a", "pg_dump -Fc -t, psql -1 -f", baseline(restore=False), shown=SHOWN_A),
        Case("ar", "(a) + pg_restore of the dump", baseline(restore=True), shown=SHOWN_AR),
        Case("q", "dbguard run --skip-dry-run --quick-verify", dbguard_run("--skip-dry-run", "--quick-verify"), QUICK),
        Case("f", "dbguard run --skip-dry-run", dbguard_run("--skip-dry-run"), RESTORED),
        Case("d", "dbguard run (with its dry-run)", dbguard_run(), RESTORED),
    ]


def check_report(case: Case, setup: Setup, stdout: Path, rows: int) -> dict[str, Any]:
    """dbguard committed, changed rows / 10 rows, and left one VERIFIED manifest (then emptied from the store)."""
    try:
        report = json.loads(stdout.read_text("utf-8"))
    except json.JSONDecodeError as error:
        raise BenchError(f"({case.key}) the report is not JSON: {error}") from None
    changed = [s["rows"] for step in report["steps"] for s in step["statements"]]
    if report["verdict"] != "COMMITTED" or changed != [rows // 10]:
        raise BenchError(f"({case.key}) {report['verdict']}, rows {changed}: {report['reasons']}")
    manifests = list(setup.store.glob("*.json"))
    if len(manifests) != 1:
        raise BenchError(f"({case.key}) expected one manifest in {setup.store}, found {len(manifests)}")
    manifest = json.loads(manifests[0].read_text("utf-8"))
    counted = manifest["tables"][f"public.{TABLE}"]["rows"]
    verification = manifest["verification"]
    if counted != rows or verification["status"] != "VERIFIED" or case.method not in verification["method"]:
        raise BenchError(f"({case.key}) manifest: {counted} rows, {verification}")
    shutil.rmtree(setup.store)
    return report


def run_case(case: Case, setup: Setup, template: str, rows: int) -> tuple[Run, str]:
    """One timed run on a fresh copy of `template`, checked."""
    name = f"{template.removesuffix('_pristine')}_{case.key}"
    url = with_database(setup.admin_url, name)
    clone(setup.admin_url, template, name)
    try:
        stdout, stderr = OUT_DIR / f"{case.key}_stdout.txt", OUT_DIR / f"{case.key}_stderr.txt"
        run = launch(case.argv(setup, url, name), stdout, stderr, setup.env)
        if run.returncode != 0:
            tail = stderr.read_text("utf-8", errors="replace")[-2000:]
            raise BenchError(f"({case.key}) exited {run.returncode}\n{tail}")
        marked = marked_rows(url)
        if marked != rows // 10:
            raise BenchError(f"({case.key}) {marked} rows marked, expected {rows // 10}")
        note = f"{marked:,} rows updated"
        if case.method:
            report = check_report(case, setup, stdout, rows)
            case.reports.append(report)
            note += f", backup VERIFIED ({'quick' if case.method == QUICK else 'restored'}), timings " + \
                    ", ".join(f"{k} {v:.2f}" for k, v in report["timings"].items())  # fmt: skip
        return run, note
    finally:
        drop_database(setup.admin_url, name)
        drop_database(setup.admin_url, f"{name}_restore")  # (ar)'s, if it failed half-way
        setup.dump.unlink(missing_ok=True)


def show(prefix: str, case: Case, run: Run, note: str) -> None:
    print(f"  {prefix:<8} ({case.key:>2}) {run.seconds:7.3f} s  {mib(run.max_rss_kib):>6} MiB   {note}", flush=True)


def measure(cases: Sequence[Case], setup: Setup, template: str, rows: int, runs: int) -> None:
    for case in cases:  # warm-up: page cache, .pyc files, the server's caches
        show("warm-up", case, *run_case(case, setup, template, rows))
    for i in range(runs):  # interleaved; the first case of a round rotates
        for case in [*cases[i % len(cases) :], *cases[: i % len(cases)]]:
            run, note = run_case(case, setup, template, rows)
            case.runs.append(run)
            show(f"run {i + 1}", case, run, note)


# --------------------------------------------------------------------------------------------------
# Where the time goes
# --------------------------------------------------------------------------------------------------

# A phase starts at the first progress line that begins with its mark; phases a run lacks are skipped.
PHASES: tuple[tuple[str, str], ...] = (
    ("start-up, check, plan", ""),
    ("dry-run in a sandbox", "dbguard: dry-run in a sandbox"),
    ("plan, confirmation", "Plan for "),
    ("backup: lock, count + hash, pg_dump", "dbguard: locking"),
    ("verification", "dbguard: verifying backup"),
    ("script + gate", "dbguard: step 1: running"),
    ("commit, journal, report, exit", "dbguard: step 1: every check holds: COMMIT"),
)


def traced(argv: list[str], env: dict[str, str]) -> tuple[list[tuple[float, str]], float, str]:
    """Run argv; each stderr line with the second it arrived at, the total, and stdout."""
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    with subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:  # fmt: skip
        assert process.stderr is not None and process.stdout is not None
        for line in process.stderr:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        stdout = process.stdout.read()
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv[:2])} exited {process.returncode}: {lines[-3:]}")
    return lines, time.perf_counter() - start, stdout


def phases(lines: list[tuple[float, str]], total: float) -> list[tuple[str, float]]:
    starts: list[tuple[str, float]] = []
    for name, mark in PHASES:
        at = 0.0 if not mark else next((t for t, line in lines if line.startswith(mark)), None)
        if at is not None:
            starts.append((name, at))
    ends = [at for _, at in starts[1:]] + [total]
    return [(name, end - at) for (name, at), end in zip(starts, ends, strict=True)]


def breakdown(cases: Sequence[Case], setup: Setup, template: str, rows: int) -> None:
    for case in cases:
        name = f"{template.removesuffix('_pristine')}_trace"
        url = with_database(setup.admin_url, name)
        clone(setup.admin_url, template, name)
        try:
            lines, total, stdout = traced(case.argv(setup, url, name), setup.env)
        finally:
            drop_database(setup.admin_url, name)
            shutil.rmtree(setup.store, ignore_errors=True)
        statement = json.loads(stdout)["steps"][0]["statements"][0]["seconds"]
        print(f"  ({case.key}) {case.label}: {total:.3f} s")
        for phase, seconds in phases(lines, total):
            if phase == "script + gate":
                print(f"      {'script (the UPDATE, from the report)':<40} {statement:7.3f}")
                phase, seconds = "gate (integrity checks, drift, coverage)", seconds - statement
            print(f"      {phase:<40} {seconds:7.3f}")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time dbguard run against pg_dump + psql -1 -f of the same script.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"admin URL of the server (default {DEFAULT_URL})")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--scale", type=int, default=10, help="pgbench scale of the main table (default 10: 1M rows)")
    parser.add_argument("--large-scale", type=int, default=40, help="pgbench scale for memory (default 40: 4M rows)")
    parser.add_argument("--large-runs", type=int, default=2, help="runs of (a), (q), (f) at --large-scale (default 2)")
    parser.add_argument("--dbguard", default=None, help="dbguard executable (default: the venv's)")
    args = parser.parse_args(argv)
    if min(args.runs, args.scale, args.large_scale, args.large_runs) < 1:
        parser.error("--runs, --scale, --large-scale and --large-runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dbguard, pg_bin = find_dbguard(args.dbguard), find_pg_bin()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    python = str(Path(dbguard).parent / "python") if (Path(dbguard).parent / "python").exists() else sys.executable
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    OUT_DIR.mkdir(parents=True)
    setup = Setup(dbguard, pg_bin, args.url, {k: v for k, v in os.environ.items() if not k.startswith("DBGUARD_")})
    setup.script.write_text(SCRIPT)
    setup.policy.write_text(POLICY)
    prefix = f"dbguard_bench_run_{secrets.token_hex(4)}"
    pristine, large = f"{prefix}_pristine", f"{prefix}l_pristine"
    rows, large_rows = args.scale * 100_000, args.large_scale * 100_000
    cases = make_cases()
    by_key = {case.key: case for case in cases}
    large_cases = [Case(f"{k}4", f"{by_key[k].label}, {large_rows:,} rows", by_key[k].argv, by_key[k].method)
                   for k in ("a", "q", "f")]  # fmt: skip
    started = time.perf_counter()
    try:
        print(f"run_overhead  {time.strftime('%Y-%m-%d')}  {platform.node()}  {os.cpu_count()} CPUs  "
              f"load average {os.getloadavg()[0]:.2f} at start  Python {platform.python_version()}")  # fmt: skip
        print(f"server        {server_facts(args.url)}")
        print(f"dbguard       {dbguard}")
        print(f"tools         {pg_bin}/{{pgbench,pg_dump,psql,pg_restore}}")
        print(f"script        {setup.script.relative_to(REPO_ROOT)}: {SCRIPT.strip()}")
        try:
            for name, scale in ((pristine, args.scale), (large, args.large_scale)):
                began = time.perf_counter()
                with psycopg.connect(args.url, autocommit=True) as admin:
                    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
                pgbench_init(pg_bin, with_database(args.url, name), scale)
                print(f"database      {name}: pgbench scale {scale}, {scale * 100_000:,} rows in {TABLE} "
                      f"(setup {time.perf_counter() - began:.1f} s); each run gets a fresh copy")  # fmt: skip
            floor = rss_floor_kib(setup.env)
            if floor is not None:
                print(f"peak RSS      per process tree (os.wait4 via check_speed's launcher); floor {mib(floor)} MiB")
            for case in cases:
                shown = case.shown or " ".join(case.argv(setup, "<copy>", "<copy>")).replace(str(REPO_ROOT) + "/", "")
                print(f"  ({case.key}) {shown}")

            print(f"\n1 warm-up round + {args.runs} measured rounds, interleaved (the first case rotates)", flush=True)
            measure(cases, setup, pristine, rows, args.runs)

            print(f"\nmemory as the table grows: {large_rows:,} rows, {args.large_runs} runs each", flush=True)
            for _ in range(args.large_runs):
                for case in large_cases:
                    run, note = run_case(case, setup, large, large_rows)
                    case.runs.append(run)
                    show("", case, run, note)

            print("\nwhere the time goes: one traced run each (progress lines timestamped as they arrive)", flush=True)
            breakdown([by_key["q"], by_key["f"], by_key["d"]], setup, pristine, rows)
            hashing = statistics.median(dbguard_hash_seconds(python, with_database(args.url, pristine), TABLE, rows)
                                        for _ in range(3))  # fmt: skip
            level1 = OUT_DIR / "level1.dump"
            dump_runs = [launch([str(pg_bin / "pg_dump"), "-Fc", "-Z1", "-t", TABLE, "-f", str(level1),
                                 with_database(args.url, pristine)], OUT_DIR / "z1_stdout.txt",
                                OUT_DIR / "z1_stderr.txt", setup.env).seconds for _ in range(3)]  # fmt: skip
            print(f"  on its own: count + hash of {TABLE} (table_stats) {hashing:.3f} s; pg_dump -Fc -Z1 -t "
                  f"{statistics.median(dump_runs):.3f} s (medians of 3)")  # fmt: skip
        finally:
            for name in (pristine, large):
                drop_database(args.url, name)
            shutil.rmtree(setup.store, ignore_errors=True)
    except (BenchError, psycopg.Error) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2

    print(f"\nresults ({rows:,} rows; wall time of the whole process; total bench time "
          f"{time.perf_counter() - started:.0f} s)")  # fmt: skip
    header = ("case", "median s", "min s", "max s", "cpu s", "peak RSS MiB (median, max)")
    table = [header]
    for case in [*cases, *large_cases]:
        seconds = [r.seconds for r in case.runs]
        rss = f"{mib(case.median(lambda r: r.max_rss_kib))}, {mib(max(r.max_rss_kib for r in case.runs))}"
        table.append((f"({case.key}) {case.label}", f"{statistics.median(seconds):.3f}", f"{min(seconds):.3f}",
                      f"{max(seconds):.3f}", f"{case.median(lambda r: r.cpu_seconds):.3f}", rss))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        print("  " + "  ".join(cells))
    a, ar, q, f, d = (case.median() for case in cases)
    for case, big in zip((by_key["q"], by_key["f"]), large_cases[1:], strict=True):
        small_rss, big_rss = case.median(lambda r: r.max_rss_kib), big.median(lambda r: r.max_rss_kib)
        print(f"peak RSS of ({case.key}): {mib(small_rss)} MiB at {rows:,} rows, {mib(big_rss)} MiB at "
              f"{large_rows:,} rows ({big_rss / small_rss:.2f}x for {large_rows / rows:.0f}x the rows)")  # fmt: skip
    a4, q4, _ = (case.median() for case in large_cases)
    print(f"ratio q/a at {large_rows:,} rows (median wall time): {q4 / a4:.2f}  (reference: the fixed costs shrink)")
    print(f"ratio d/a (the whole run, with its dry-run) (median wall time): {d / a:.2f}  (no target)")
    print(f"ratio d/ar (the whole run, with its dry-run) (median wall time): {d / ar:.2f}  (no target)")
    for label, ratio, target in (("q/a (quick verification)", q / a, TARGET_QUICK),
                                 ("f/ar (restore verification)", f / ar, TARGET_FULL)):  # fmt: skip
        print(f"ratio {label} (median wall time): {ratio:.2f}  target <= {target}: "
              f"{'met' if ratio <= target else 'not met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
