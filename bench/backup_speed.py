"""Benchmark `dbguard backup` against a plain `pg_dump -Fc` of the same table, and its memory as the table grows.

DESIGN.md ("Content hashes: cheap enough to take every time", and step 4) wants a backup to cost little
more than the dump itself: the row counts and hashes are computed in the database, in the dump's own
exported snapshot, with an order-independent aggregate. This bench puts numbers on that.

What it measures
  1. Creates a throwaway database dbguard_bench_backup_<random> on the server given by --url (an admin
     URL) with one table, bench_rows, of --rows rows (default 1,000,000) generated server-side with
     generate_series: a bigint identity primary key, two integers, a text, a numeric(12,2) and a
     timestamptz. It is VACUUM ANALYZEd. The database is dropped at the end (DROP DATABASE ... WITH
     (FORCE)) in a `finally` block, whatever happens.
  2. Times three whole processes, wall clock, from the repository root:
         (a) pg_dump -Fc -t bench_rows -f <file> <db>                          the baseline
         (b) dbguard backup --db <db> --tables bench_rows --backup-dir <dir>   dump + hashes + verification
         (c) dbguard backup ... --no-verify                                     dump + hashes
     pg_dump is the one in `pg_config --bindir` (the version-matched binary dbguard itself picks, not
     Debian's pg_wrapper). One warm-up round (not counted), then --runs measured rounds; in each round
     all three run, and the one that goes first rotates. The dump file and the backup directory are
     deleted after every run, so disk use stays bounded. Every run must do the real work: exit status
     0, a non-empty dump, and for (b)/(c) a manifest that counts --rows rows and says VERIFIED (b) or
     UNVERIFIED (c). Targets: median b / median a <= 2.5, median c / median a <= 1.3.
  3. Peak memory: each measured process is started by check_speed.py's tiny launcher, which reaps it
     with os.wait4 (Linux copies a parent's peak RSS into a child's ru_maxrss across fork + exec, so
     this ~50 MiB bench must not start them itself). For dbguard, the figure is the largest of dbguard
     and the pg_dump / pg_restore it waited for (wait4 reports the max over the reaped process tree;
     the PostgreSQL server's own memory is not included). CPU time is likewise the tree's user + system.
  4. Where (b)'s time goes: each stage of `dbguard backup` timed on its own, --breakdown-runs times
     (median): Python start-up and dbguard's imports; dbguard's own count + hash (its
     PostgresTarget.table_stats, run through the venv's Python) on the source; the dump (= (a)); the
     sha256 of the dump (dbguard reads it twice: when writing, and when verifying); pg_restore --list;
     CREATE DATABASE from template0; pg_restore with dbguard's flags; count + hash on the restored
     copy; DROP DATABASE. The dump restored is one dbguard wrote with --no-verify. The remainder
     against median (b) is connections, version checks, manifest writes and dbguard's 0.2 s polling of
     pg_dump's progress, less what dbguard saves: it dumps at gzip level 1, and it counts and hashes
     while pg_dump runs (the two stages overlap).
  5. Memory as the table grows: adds a second table, bench_rows_small, of --small-rows rows (default
     250,000), and runs (c) and (b) on it --small-runs times (default 3). Hashes are computed on the
     server and the dump is streamed by pg_dump, so dbguard's peak RSS must be the same at both sizes.

How to run
    .venv/bin/python bench/backup_speed.py
    .venv/bin/python bench/backup_speed.py --runs 5 --rows 1000000 --small-rows 250000 \\
        [--url postgresql://postgres@127.0.0.1:5432/postgres] [--dbguard PATH]

It needs a PostgreSQL server whose --url role may create databases, and pg_dump/pg_restore of the
server's major version. At the defaults it takes about 2 minutes on 2 cores. dbguard defaults to the one
next to sys.executable (the venv's bin/), falling back to PATH; DBGUARD_* environment variables are
dropped for the measured runs. The outputs of the last run of each case go to bench/out/backup_speed/
(git-ignored). Exit status: 0 when the measurement is complete (whether or not the targets are met), 2
when it is not.
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
from urllib.parse import urlsplit

# check_speed: bench/ is sys.path[0] when this file is run as a script. Its launcher gives per-process peak RSS.
import psycopg
from check_speed import REPO_ROOT, BenchError, Run, launch, rss_floor_kib
from dryrun_scale import create_database, drop_database, with_database
from psycopg import sql

from dbguard.backup.store import sha256_of

OUT_DIR = REPO_ROOT / "bench" / "out" / "backup_speed"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLE = "bench_rows"
SMALL_TABLE = "bench_rows_small"
TARGET_VERIFY = 2.5  # median (b) / median (a)
TARGET_NO_VERIFY = 1.3  # median (c) / median (a)

# --------------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------------


def load_table(url: str, table: str, rows: int) -> int:
    """A table of `rows` rows generated on the server; returns its total size in bytes (with the index)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                """CREATE TABLE {} (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    account_id integer NOT NULL,
                    qty integer NOT NULL,
                    label text NOT NULL,
                    amount numeric(12, 2) NOT NULL,
                    created_at timestamptz NOT NULL
                )"""
            ).format(sql.Identifier(table))
        )
        conn.execute(
            sql.SQL(
                """INSERT INTO {} (account_id, qty, label, amount, created_at)
                   SELECT (g * 7919) % 50000 + 1, (g * 7) % 1000,
                          'sku-' || lpad((g % 20000)::text, 6, '0') || ' ' || substr(md5(g::text), 1, 8),
                          ((g * 37) % 1000000) / 100.0,
                          timestamptz '2026-01-01 00:00:00+00' + g * interval '17 seconds'
                   FROM generate_series(1, {}::bigint) AS g"""
            ).format(sql.Identifier(table), sql.Literal(rows))
        )
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    assert row is not None
    return int(row[0])


def server_facts(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()
        buffers = admin.execute("SHOW shared_buffers").fetchone()
    assert version is not None and buffers is not None
    return f"PostgreSQL {version[0]}, shared_buffers {buffers[0]}"


# --------------------------------------------------------------------------------------------------
# Measured runs
# --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    key: str  # a, b, c
    label: str
    argv: list[str]
    check: Callable[[Case], str]  # validates the last run's output, cleans up; returns a one-line note
    runs: list[Run] = field(default_factory=list)
    dump_bytes: int = 0

    @property
    def stdout_path(self) -> Path:
        return OUT_DIR / f"{self.key}_stdout.txt"

    @property
    def stderr_path(self) -> Path:
        return OUT_DIR / f"{self.key}_stderr.txt"

    def median(self, what: Callable[[Run], float]) -> float:
        return statistics.median(what(r) for r in self.runs)


def run_case(case: Case, env: dict[str, str]) -> tuple[Run, str]:
    run = launch(case.argv, case.stdout_path, case.stderr_path, env)
    if run.returncode != 0:
        tail = case.stderr_path.read_text("utf-8", errors="replace")[-2000:]
        raise BenchError(f"({case.key}) exited {run.returncode}: {' '.join(case.argv)}\n{tail}")
    return run, case.check(case)


def check_dump_file(path: Path) -> Callable[[Case], str]:
    def check(case: Case) -> str:
        if not path.is_file() or path.stat().st_size == 0:
            raise BenchError(f"({case.key}) wrote no dump at {path}")
        case.dump_bytes = path.stat().st_size
        path.unlink()
        return f"dump {case.dump_bytes / 2**20:.1f} MiB"

    return check


def check_backup(store: Path, table: str, rows: int, status: str, keep: bool = False) -> Callable[[Case], str]:
    """The backup in `store` must count `rows` rows in public.<table> and be in `status`; then empty the store."""

    def check(case: Case) -> str:
        manifests = sorted(store.glob("*.json"))
        if len(manifests) != 1:
            raise BenchError(f"({case.key}) expected one manifest in {store}, found {len(manifests)}")
        manifest = json.loads(manifests[0].read_text("utf-8"))
        counted = manifest["tables"].get(f"public.{table}", {}).get("rows")
        got = manifest["verification"]["status"]
        if counted != rows or got != status:
            raise BenchError(f"({case.key}) manifest counts {counted} rows, status {got}; expected {rows}, {status}")
        case.dump_bytes = int(manifest["dump_bytes"])
        if not keep:
            shutil.rmtree(store)
        return f"{got}, {counted:,} rows, dump {case.dump_bytes / 2**20:.1f} MiB"

    return check


def measure(cases: Sequence[Case], runs: int, env: dict[str, str]) -> None:
    for case in cases:  # warm-up: page cache, .pyc files, the server's caches
        run, note = run_case(case, env)
        print(f"  warm-up  ({case.key}) {run.seconds:7.3f} s  {run.max_rss_kib / 1024:6.1f} MiB   {note}", flush=True)
    for i in range(runs):  # interleaved; the first case of a round rotates
        for case in [*cases[i % len(cases) :], *cases[: i % len(cases)]]:
            run, note = run_case(case, env)
            case.runs.append(run)
            print(f"  run {i + 1}    ({case.key}) {run.seconds:7.3f} s  {run.max_rss_kib / 1024:6.1f} MiB   {note}",
                  flush=True)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Where the time goes
# --------------------------------------------------------------------------------------------------

_IMPORTS = "import dbguard.cli, dbguard.backup.take, dbguard.backup.verify, dbguard.sandbox.server, psycopg"
_HASH = """\
import sys, time
from dbguard.targets.postgres import connect
from dbguard.targets.url import DatabaseUrl
target = connect(DatabaseUrl.parse(sys.argv[1]))
try:
    start = time.perf_counter()
    stats = target.table_stats([sys.argv[2]])
    print(time.perf_counter() - start, stats[sys.argv[2]].rows)
finally:
    target.close()
"""


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def dbguard_hash_seconds(python: str, url: str, table: str, rows: int) -> float:
    """dbguard's own count + hash of public.<table> (PostgresTarget.table_stats), timed inside the process."""
    done = subprocess.run([python, "-c", _HASH, url, f"public.{table}"], capture_output=True, text=True, check=False)
    try:
        seconds, counted = done.stdout.split()
    except ValueError:
        raise BenchError(f"table_stats failed:\n{done.stderr.strip()[-2000:]}") from None
    if int(counted) != rows:
        raise BenchError(f"table_stats counted {counted} rows, expected {rows}")
    return float(seconds)


def run_tool(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")


def breakdown_round(python: str, pg_bin: Path, admin_url: str, db_url: str, dump: Path, rows: int) -> dict[str, float]:
    """One timing of every stage of `dbguard backup` (the dump itself is timed by the measured (a) runs)."""
    stages: dict[str, float] = {}
    imports = launch([python, "-c", _IMPORTS], OUT_DIR / "imports_stdout.txt", OUT_DIR / "imports_stderr.txt",
                     dict(os.environ))  # fmt: skip
    stages["start-up"] = imports.seconds
    stages["hash source"] = dbguard_hash_seconds(python, db_url, TABLE, rows)
    stages["sha256"] = timed(lambda: sha256_of(dump))
    listing = OUT_DIR / "restore.list"
    stages["list"] = timed(lambda: run_tool([str(pg_bin / "pg_restore"), "--list", f"--file={listing}", str(dump)]))
    scratch = f"{urlsplit(db_url).path.lstrip('/')}_restore"
    try:
        stages["create db"] = timed(lambda: create_database(admin_url, scratch))
        scratch_url = with_database(admin_url, scratch)
        stages["restore"] = timed(lambda: run_tool([
            str(pg_bin / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
            f"--use-list={listing}", f"--dbname={scratch_url}", str(dump),
        ]))  # fmt: skip
        stages["hash restored"] = dbguard_hash_seconds(python, scratch_url, TABLE, rows)
    finally:
        stages["drop db"] = timed(lambda: drop_database(admin_url, scratch))
    return stages


STAGES: tuple[tuple[str, str, str], ...] = (
    # key, label, which cases include it
    ("start-up", "Python start-up + dbguard's imports", "b c"),
    ("hash source", "count + hash in the source (table_stats)", "b c"),
    ("dump", "pg_dump -Fc (= median of (a))", "b c"),
    ("sha256", "sha256 of the dump, on writing", "b c"),
    ("sha256 again", "sha256 of the dump, on verifying", "b"),
    ("list", "pg_restore --list", "b"),
    ("create db", "CREATE DATABASE ... TEMPLATE template0", "b"),
    ("restore", "pg_restore into it (with the primary key)", "b"),
    ("hash restored", "count + hash in the restored copy", "b"),
    ("drop db", "DROP DATABASE ... WITH (FORCE)", "b"),
)


def print_breakdown(stages: dict[str, float], median_b: float, median_c: float) -> None:
    print(f"  {'stage':<44} {'seconds':>8}  {'share of b':>10}  in")
    for key, label, where in STAGES:
        print(f"  {label:<44} {stages[key]:8.3f}  {stages[key] / median_b:10.0%}  {where}")
    for case, median in (("b", median_b), ("c", median_c)):
        total = sum(stages[key] for key, _, where in STAGES if case in where.split())
        print(f"  sum of the stages of ({case}) {total:.3f} s; median ({case}) {median:.3f} s; "
              f"remainder {median - total:+.3f} s")  # fmt: skip
    print("  (remainder: connections, version checks, the manifest, dbguard's 0.2 s polling of pg_dump; it is")
    print("  negative because dbguard dumps at gzip level 1 (see a1) and counts and hashes while pg_dump runs)")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def find_dbguard(explicit: str | None) -> str:
    beside = Path(sys.executable).parent / "dbguard"  # the venv's bin/ when run with .venv/bin/python
    candidate = explicit or (str(beside) if beside.exists() else "dbguard")
    found = shutil.which(candidate)
    if found is None:
        raise BenchError(f"{candidate} is not an executable (use --dbguard)")
    return str(Path(found).absolute())


def find_pg_bin() -> Path:
    try:
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        raise BenchError("pg_config --bindir failed: pg_dump's directory is unknown") from None
    return Path(done.stdout.strip())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time dbguard backup against pg_dump -Fc of the same table.")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"admin URL of the server (default {DEFAULT_URL})")
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the main table (default 1000000)")
    parser.add_argument("--small-rows", type=int, default=250_000, help="rows of the small table (default 250000)")
    parser.add_argument("--small-runs", type=int, default=3, help="runs of (b) and (c) on the small table")
    parser.add_argument("--breakdown-runs", type=int, default=3, help="timings of each stage (default 3)")
    parser.add_argument("--dbguard", default=None, help="dbguard executable (default: the venv's)")
    args = parser.parse_args(argv)
    if min(args.runs, args.rows, args.small_rows, args.small_runs, args.breakdown_runs) < 1:
        parser.error("--runs, --rows, --small-rows, --small-runs and --breakdown-runs must be at least 1")
    return args


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dbguard = find_dbguard(args.dbguard)
        pg_bin = find_pg_bin()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    python = str(Path(dbguard).parent / "python") if (Path(dbguard).parent / "python").exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBGUARD_")}
    name = f"dbguard_bench_backup_{secrets.token_hex(4)}"
    db_url = with_database(args.url, name)
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    OUT_DIR.mkdir(parents=True)
    store = OUT_DIR / "store"
    baseline_file = OUT_DIR / "baseline.dump"

    def backup(table: str, *extra: str) -> list[str]:
        return [dbguard, "backup", "--db", db_url, "--tables", table, "--backup-dir", str(store), *extra]

    cases = [
        Case("a", "pg_dump -Fc -t", [str(pg_bin / "pg_dump"), "-Fc", "-t", TABLE, "-f", str(baseline_file), db_url],
             check_dump_file(baseline_file)),
        Case("b", "dbguard backup", backup(TABLE), check_backup(store, TABLE, args.rows, "VERIFIED")),
        Case("c", "dbguard backup --no-verify", backup(TABLE, "--no-verify"),
             check_backup(store, TABLE, args.rows, "UNVERIFIED")),
        # Reference: dbguard dumps with gzip level 1 (see dbguard/backup/postgres.py); this is pg_dump alone
        # at that level, so the reader sees dbguard's own overhead too.
        Case("a1", "pg_dump -Fc -Z1 -t (reference)", [str(pg_bin / "pg_dump"), "-Fc", "-Z1", "-t", TABLE, "-f",
             str(baseline_file), db_url], check_dump_file(baseline_file)),
    ]  # fmt: skip
    small = [
        Case("c-small", "dbguard backup --no-verify", backup(SMALL_TABLE, "--no-verify"),
             check_backup(store, SMALL_TABLE, args.small_rows, "UNVERIFIED")),
        Case("b-small", "dbguard backup", backup(SMALL_TABLE), check_backup(store, SMALL_TABLE, args.small_rows,
                                                                            "VERIFIED")),
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        print(f"backup_speed  {time.strftime('%Y-%m-%d')}  {platform.node()}  {os.cpu_count()} CPUs  "
              f"load average {os.getloadavg()[0]:.2f} at start  Python {platform.python_version()}")  # fmt: skip
        print(f"server        {server_facts(args.url)}")
        print(f"dbguard       {dbguard}")
        print(f"pg_dump       {pg_bin / 'pg_dump'}")
        create_database(args.url, name)
        try:
            setup = time.perf_counter()
            size = load_table(db_url, TABLE, args.rows)
            print(f"database      {name}: {TABLE} {args.rows:,} rows, {size / 2**20:.1f} MiB with its primary key "
                  f"(setup {time.perf_counter() - setup:.1f} s)")  # fmt: skip
            floor = rss_floor_kib(env)
            if floor is not None:
                print(f"peak RSS      per process tree (os.wait4 via check_speed's launcher); launcher floor "
                      f"{mib(floor)} MiB")  # fmt: skip
            for case in cases:
                shown = " ".join([Path(case.argv[0]).name, *case.argv[1:]]).replace(str(REPO_ROOT) + "/", "")
                print(f"  ({case.key}) {shown}")
            print(f"\n1 warm-up round + {args.runs} measured rounds, interleaved (the first case rotates)", flush=True)
            measure(cases, args.runs, env)

            print(f"\nwhere the time of (b) goes: each stage on its own, median of {args.breakdown_runs}", flush=True)
            keep = check_backup(store, TABLE, args.rows, "UNVERIFIED", keep=True)
            run_case(replace_check(cases[2], keep), env)  # a dump for the restore stages
            dump = next(store.glob("*.dump"))
            rounds = [breakdown_round(python, pg_bin, args.url, db_url, dump, args.rows)
                      for _ in range(args.breakdown_runs)]  # fmt: skip
            shutil.rmtree(store)
            stages = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            stages["sha256 again"] = stages["sha256"]
            stages["dump"] = cases[0].median(lambda r: r.seconds)
            print_breakdown(stages, cases[1].median(lambda r: r.seconds), cases[2].median(lambda r: r.seconds))

            size = load_table(db_url, SMALL_TABLE, args.small_rows)
            print(f"\nmemory as the table grows: {SMALL_TABLE} {args.small_rows:,} rows, {size / 2**20:.1f} MiB; "
                  f"{args.small_runs} runs each", flush=True)  # fmt: skip
            for _ in range(args.small_runs):
                for case in small:
                    run, note = run_case(case, env)
                    case.runs.append(run)
                    print(f"  ({case.key}) {run.seconds:7.3f} s  {mib(run.max_rss_kib):>6} MiB   {note}", flush=True)
        finally:
            drop_database(args.url, name)
            shutil.rmtree(store, ignore_errors=True)
            baseline_file.unlink(missing_ok=True)
    except (BenchError, psycopg.Error) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2

    print(f"\nresults ({args.rows:,} rows; wall time of the whole process; total bench time "
          f"{time.perf_counter() - started:.0f} s)")  # fmt: skip
    header = ("case", "median s", "min s", "max s", "cpu s", "peak RSS MiB (median, max)", "dump MiB")
    rows = [header]
    for case in [*cases, *small]:
        seconds = [r.seconds for r in case.runs]
        rss = f"{mib(case.median(lambda r: r.max_rss_kib))}, {mib(max(r.max_rss_kib for r in case.runs))}"
        rows.append((f"({case.key}) {case.label}", f"{statistics.median(seconds):.3f}", f"{min(seconds):.3f}",
                     f"{max(seconds):.3f}", f"{case.median(lambda r: r.cpu_seconds):.3f}", rss,
                     f"{case.dump_bytes / 2**20:.1f}"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        print("  " + "  ".join(cells))
    a, b, c, a1 = (case.median(lambda r: r.seconds) for case in cases)
    big_rss, small_rss = cases[2].median(lambda r: r.max_rss_kib), small[0].median(lambda r: r.max_rss_kib)
    growth = args.rows / args.small_rows
    print(f"\npeak RSS of (c): {mib(big_rss)} MiB at {args.rows:,} rows, {mib(small_rss)} MiB at "
          f"{args.small_rows:,} rows ({big_rss / small_rss:.2f}x for {growth:.0f}x the rows)")  # fmt: skip
    ratios = (("b/a (verified)", b / a, TARGET_VERIFY), ("c/a (--no-verify)", c / a, TARGET_NO_VERIFY))
    print(f"reference, against pg_dump at dbguard's own gzip level 1: b/a1 {b / a1:.2f}, c/a1 {c / a1:.2f}")
    for label, ratio, target in ratios:
        print(f"ratio {label} (median wall time): {ratio:.2f}  target <= {target}: "
              f"{'met' if ratio <= target else 'not met'}")  # fmt: skip
    return 0


def replace_check(case: Case, check: Callable[[Case], str]) -> Case:
    """The same command with another check (and no runs recorded)."""
    return Case(case.key, case.label, case.argv, check)


if __name__ == "__main__":
    sys.exit(main())
