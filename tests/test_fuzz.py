"""Fuzzing `dbguard check`: a few hundred mutated scripts, with a fixed seed, in every dialect.

The seeds are the repository's own scripts and every case of the rule fixtures. Each mutant gets a few
token-level edits (deletions, duplicates, swaps, quotes, dollar quotes, comments, parentheses, control
characters, huge numbers, long chains, deep nesting) and goes through the check and every report format.
No mutant may raise (the CLI's exit 70) and every output must stay valid; a sample also goes through the real
command line. A failure names the mutant's number: `FUZZ_ONLY=<n>` replays it alone.

The time limit is a hang guard for the whole run, not a speed measurement (that is bench/'s job).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import load_policy
from dbguard.report.check import github as render_github
from dbguard.report.check import gitlab as render_gitlab
from dbguard.report.check import json as render_json
from dbguard.report.check import junit as render_junit
from dbguard.report.check import markdown as render_markdown
from dbguard.report.check import sarif as render_sarif
from dbguard.report.check import text as render_text
from dbguard.report.check.model import CheckReport

SEED = 20261129
MUTANTS = 300  # each one checked in all three dialects
TOTAL_GUARD_SECONDS = 60
ROOT = Path(__file__).parent.parent
_TOKEN = re.compile(r"\s+|\w+|'[^']*'|\"[^\"]*\"|\$\w*\$|--[^\n]*|/\*|\*/|.", re.DOTALL)


def seeds() -> list[str]:
    scripts = [path.read_text("utf-8") for path in sorted((ROOT / "scripts").rglob("*.sql"))]
    cases = []
    for fixture in sorted((ROOT / "tests" / "fixtures" / "rules").glob("*.toml")):
        data = tomllib.loads(fixture.read_text("utf-8"))
        cases += [case["sql"] for group in ("fires", "passes") for case in data.get(group, [])]
    return scripts + cases


INSERTIONS = [
    "'", '"', "`", "$$", "$body$", "$x", "E'\\'", "--", "/*", "*/", "/*!", "#", "(", ")", ";", ",", ".",
    "\\", "\\i other.sql\n", "\n", "\r", "\r\n", "\t", "\x1b[31m", "\x1b]0;title\x07", "\x07", "\u202e",
    "\x00", "\x7f", "\x9b", "\ufeff", "\u2028", "\udcff", "é", "9" * 400, "1e999999", "-0.0e-7", "0x", "NULL",
    " WHERE ", " AND ", " OR 1=1 ", " NOT ", " CASCADE ", " CONCURRENTLY ", " BEGIN ", " END ", " DO ",
    " CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW BEGIN ", " LANGUAGE plpgsql ", " EXECUTE ",
    " -- dbguard: allow ban-truncate reason=\"r\"\n", " -- dbguard: allow nope\n", " -- dbguard: dialect=mysql\n",
]  # fmt: skip


def _huge(rng: random.Random) -> str:
    """Long chains and deep nesting, the shapes that once took minutes or blew the stack."""
    n = rng.choice([300, 1_000, 3_000])
    return rng.choice([
        " OR ".join(f"c{i} = {i}" for i in range(n)),
        " + ".join(f"c{i}" for i in range(n)),
        "(" * (n // 3) + "x" + ")" * (n // 3),
        "NOT " * (n // 3) + "x",
        "abs(" * (n // 3) + "1" + ")" * (n // 3),
        "(SELECT " * (n // 10) + "1" + ")" * (n // 10),
    ])  # fmt: skip


def mutate(text: str, rng: random.Random, donors: list[str]) -> str:
    tokens = _TOKEN.findall(text) or [text]
    for _ in range(rng.randint(1, 4)):
        spot = rng.randrange(len(tokens))
        edit = rng.random()
        if edit < 0.15 and len(tokens) > 1:
            del tokens[spot]
        elif edit < 0.30:
            tokens.insert(spot, tokens[spot])
        elif edit < 0.45:
            other = rng.randrange(len(tokens))
            tokens[spot], tokens[other] = tokens[other], tokens[spot]
        elif edit < 0.85:
            tokens.insert(spot, rng.choice(INSERTIONS))
        elif edit < 0.95:
            donor = _TOKEN.findall(rng.choice(donors))
            start = rng.randrange(len(donor)) if donor else 0
            tokens[spot:spot] = donor[start : start + rng.randint(1, 30)]
        else:
            tokens.insert(spot, _huge(rng))
    return "".join(tokens)


def mutants() -> list[str]:
    rng = random.Random(SEED)
    pool = seeds()
    return [mutate(rng.choice(pool), rng, pool) for _ in range(MUTANTS)]


POLICY = load_policy(None)
FORMATS: dict[str, Callable[[CheckReport], None]] = {
    "text": lambda r: _no_raw_escape(render_text.render(r)),
    "text-color": lambda r: _no_raw_escape(re.sub(r"\x1b\[[0-9;]*m", "", render_text.render(r, color=True))),
    "json": lambda r: json.loads(render_json.render(r)),
    "sarif": lambda r: json.loads(render_sarif.render(r)),
    "junit": lambda r: ET.fromstring(render_junit.render(r).encode("utf-8")),
    "markdown": lambda r: _no_raw_escape(render_markdown.render(r)),
    "github": lambda r: _no_raw_escape(render_github.render(r)),
    "gitlab": lambda r: json.loads(render_gitlab.render(r)),
}


def _no_raw_escape(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    output.encode("utf-8")


def test_mutated_scripts_never_crash_and_every_format_stays_valid() -> None:
    only = os.environ.get("FUZZ_ONLY")
    started = time.monotonic()
    checked = 0
    for number, sql in enumerate(mutants()):
        if only is not None and number != int(only):
            continue
        for dialect in Dialect:
            try:
                report = CheckReport(policy=POLICY, files=(check_text(sql, dialect, POLICY, f"mutant-{number}.sql"),))
                for render in FORMATS.values():
                    render(report)
            except Exception as error:
                pytest.fail(f"mutant {number} ({dialect.value}): {type(error).__name__}: {error}\n{sql[:2000]!r}")
            checked += 1
    elapsed = time.monotonic() - started
    assert checked == (1 if only is not None else MUTANTS) * len(Dialect)
    assert elapsed < TOTAL_GUARD_SECONDS, f"{checked} checks took {elapsed:.0f} s"


# What fuzzing found once: each was an exit 70, or a write dbguard did not see.
FOUND = [
    "CREATE INDEX i ON t (c) garbage;",  # MySQL: reparsed itself until RecursionError
    "PRAGMA = '2s';",  # a PRAGMA naming no setting
    "ALTER TABLE (x) stock ADD COLUMN w int;",  # sqlglot reads a subquery where the table name belongs
    "DELETE FROM (SELECT 1);",
    "INSERT INTO (SELECT 1) VALUES (1);",
    "DELETE FROM stock WHERE id = 1\x00; DROP TABLE stock;",  # libpg_query stopped reading at the NUL
    "DELETE FROM stock WHERE note = '\udcff';",  # a lone surrogate, which pglast cannot encode
]


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("sql", FOUND)
def test_what_fuzzing_found_is_unrecognized(sql: str, dialect: Dialect) -> None:
    report = check_text(sql, dialect, POLICY)
    assert not report.script.statements[0].recognized
    assert "unrecognized-statement" in {f.rule_id for f in report.findings}
    for render in FORMATS.values():
        render(CheckReport(policy=POLICY, files=(report,)))


def test_a_sample_through_the_command_line(tmp_path: Path) -> None:
    """The real command: exit 0, 1 or 3 (a file it cannot read), never 70, and never a traceback."""
    runner = CliRunner()
    for number, sql in enumerate(mutants()[::15]):
        script = tmp_path / f"mutant-{number}.sql"
        script.write_bytes(sql.encode("utf-8", "surrogateescape"))
        for dialect in Dialect:
            for output_format in ("text", "sarif"):
                result = runner.invoke(app, ["check", str(script), "-d", dialect.value, "-f", output_format])
                where = f"mutant {number * 15} ({dialect.value}, {output_format})"
                assert result.exit_code in (0, 1, 3), f"{where}: exit {result.exit_code}: {result.stderr}"
                # CliRunner catches an exception that escapes the command and reports it as exit 1, with no
                # traceback in the output: only `exception` tells it from a real exit 1 (findings).
                assert result.exception is None or isinstance(result.exception, SystemExit), (
                    f"{where}: {type(result.exception).__name__}: {result.exception}")  # fmt: skip
                assert "Traceback" not in result.output and "internal error" not in result.stderr, where
