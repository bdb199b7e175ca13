"""What `dbguard verify` costs on a big table, whole and with `--sample`, against one sequential scan.

What it measures
  1. Creates a throwaway database dbguard_bench_verify_<random> on the server given by --url with a parent
     table (1,000 rows) and a child table of --rows rows (default 2,000,000) generated with generate_series:
     a bigint primary key, a foreign key to the parent, two CHECK constraints and a text column. It is
     VACUUM ANALYZEd. The database is dropped at the end (DROP DATABASE ... WITH (FORCE)), whatever happens.
  2. Runs, --runs rounds after one warm-up, the order rotating each round:
         (a) SELECT count(*) FROM child, timed around the query on an open connection: one sequential scan
         (b) dbguard verify --db <db> --format json                      every row, every check
         (c) dbguard verify --db <db> --format json --sample 10          a 10% sample of the pages
     For (b) and (c) the time compared is the report's own `duration_seconds` (connect, catalogs, every
     check), not the process's: Python's start-up and imports (about 0.6 s here) do not grow with the
     table. The process's wall clock is printed beside it. Each verify must exit 0 and report every
     row-by-row check PASS.
  3. Prints the medians and the ratios b/(3a) and c/b. verify reads the table once per row-by-row check
     (two CHECKs and one foreign-key anti-join here: 3), so the first ratio is its cost per check in
     sequential scans. Targets: b/(3a) <= 2.5, c/b <= 0.5.

How to run
    .venv/bin/python bench/verify_cost.py [--rows 2000000] [--runs 3] [--url postgresql://postgres@127.0.0.1:5432/postgres]

Exit status: 0 when the measurement is complete (whether or not the targets are met), 2 when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = """
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO parent SELECT i, 'parent ' || i FROM generate_series(1, 1000) i;
CREATE TABLE child (id bigint PRIMARY KEY, parent_id int NOT NULL REFERENCES parent,
                    qty int NOT NULL CHECK (qty >= 0), price numeric(12, 2) CHECK (price BETWEEN 0 AND 1e6),
                    note text);
INSERT INTO child SELECT i, 1 + i % 1000, i % 97, (i % 5000) / 3.0, 'note ' || i FROM generate_series(1, %(rows)s) i;
"""


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    return time.perf_counter() - start, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    dbguard = shutil.which("dbguard", path=str(Path(sys.executable).parent)) or shutil.which("dbguard")
    if dbguard is None:
        print("needs dbguard", file=sys.stderr)
        return 2
    name = f"dbguard_bench_verify_{secrets.token_hex(4)}"
    base, _, _ = args.url.rpartition("/")
    url = f"{base}/{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBGUARD_")}
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA.replace("%(rows)s", str(args.rows)))  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE")
        cases = {
            "count(*)": [],
            "verify": [dbguard, "verify", "--db", url, "--format", "json", "--backup-dir", str(ROOT / "bench/out/x")],
            "verify --sample 10": [dbguard, "verify", "--db", url, "--format", "json", "--sample", "10",
                                   "--backup-dir", str(ROOT / "bench/out/x")],
        }
        times: dict[str, list[float]] = {case: [] for case in cases}
        walls: dict[str, list[float]] = {case: [] for case in cases}
        order = list(cases)
        for round_number in range(args.runs + 1):
            for case in order[round_number % 3:] + order[: round_number % 3]:
                if not cases[case]:
                    with psycopg.connect(url) as conn:
                        start = time.perf_counter()
                        conn.execute("SELECT count(*) FROM child").fetchone()
                        seconds = time.perf_counter() - start
                    if round_number:
                        times[case].append(seconds)
                        walls[case].append(seconds)
                    continue
                wall, done = _timed(cases[case], env)
                if done.returncode != 0:
                    print(f"{case}: exit {done.returncode}\n{done.stdout}{done.stderr}", file=sys.stderr)
                    return 2
                if case.startswith("verify"):
                    report = json.loads(done.stdout)
                    rows = [c for c in report["checks"] if c["check"] in ("check constraint", "foreign key")]
                    if len(rows) != 3 or any(c["status"] != "pass" for c in rows):
                        print(f"{case}: not every row-by-row check passed: {rows}", file=sys.stderr)
                        return 2
                if round_number:  # the first round warms the cache up
                    times[case].append(float(report["duration_seconds"]))
                    walls[case].append(wall)
        medians = {case: statistics.median(values) for case, values in times.items()}
        for case, median in medians.items():
            print(f"{case:22} median {median:6.3f} s  ({', '.join(f'{t:.3f}' for t in times[case])}); "
                  f"process wall clock median {statistics.median(walls[case]):.2f} s")
        per_check = medians["verify"] / (3 * medians["count(*)"])
        sampled = medians["verify --sample 10"] / medians["verify"]
        print(f"verify / (3 checks x count(*))  {per_check:.2f}  (target <= 2.5)")
        print(f"verify --sample 10 / verify     {sampled:.2f}  (target <= 0.5)")
        return 0
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
