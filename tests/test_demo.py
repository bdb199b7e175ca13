"""`dbguard demo` end to end, on real SQLite and real PostgreSQL: the story's facts as the demo's claims,
the reports it prints, its own databases and directories gone afterwards (on Ctrl-C too), and a demo
whose story does not hold exits 1."""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import psycopg
import pytest
from rich.console import Console
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.demo.demo import DemoResult, run_demo
from dbguard.demo.narration import Narrator
from dbguard.journal import Journal, group_runs
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL

ROOT = Path(__file__).parent.parent
# The claims each step must make and keep (their start: counts and ids follow).
STORY = [
    (1, "check blocks the rogue script"),
    (1, "ban-tautological-where names"),
    (1, "ban-disabling-integrity names"),
    (1, "ban-column-type-change names"),
    (2, "check passes it"),
    (2, 'the dry-run is BLOCKED: invariant "stock on hand is never negative" fails on the real data'),
    (2, "the target was only read"),
    (3, 'the integrity gate fails: "stock on hand is never negative"'),
    (3, "the run rolled back by itself (ROLLED BACK, exit 6)"),
    (3, "run proved the rollback"),
    (3, "the data is unchanged: all 6 tables' counts and hashes equal before and after"),
    (4, "check passes it"),
    (4, "its dry-run is SAFE"),
    (4, "a backup was taken in the run's transaction and verified"),
    (4, "the run committed (COMMITTED, exit 0)"),
    (4, "the journal holds its intent and its outcome"),
    (4, "no order is left picked"),
    (5, "the drill passed, restore time measured"),
    (5, "the backup restored into a scratch database"),
    (5, "the journal verifies"),
    (5, "it records step 3 as ROLLED BACK, step 4 as COMMITTED, and the drill"),
]


def narrator() -> tuple[Narrator, io.StringIO, list[str]]:
    out = io.StringIO()
    progress: list[str] = []
    told = Narrator(Console(file=out, width=100, highlight=False), Console(file=io.StringIO()), progress.append)
    return told, out, progress


def assert_story_held(result: DemoResult, output: str) -> None:
    told = [(claim.step, claim.text) for claim in result.claims]
    for step, start in STORY:
        assert any(s == step and text.startswith(start) for s, text in told), (step, start, told)
    assert result.ok, [c for c in result.claims if not c.held]
    # the reports themselves, as the commands print them
    for line in ("BLOCKED: dry-run of scripts/demo/ship_picked_orders.sql", "ROLLED BACK: scripts/demo/ship_picked",
                 "rollback proved", "COMMITTED: scripts/demo/ship_covered_orders.sql", "drill PASSED", "RTO",
                 "journal OK", "All 21 claims held."):  # fmt: skip
        assert line in output, line
    assert "DIFFERENT" not in output


def demo_databases() -> set[str]:
    """This process's demo databases on the test server."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbguard\\_demo\\_%'").fetchall()
    return {name for (name,) in rows if f"_{os.getpid()}" in name}


def test_the_whole_story_on_sqlite_at_the_default_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user"  # the user's project, where dbguard's own .dbguard/ would go
    user.mkdir()
    monkeypatch.chdir(user)
    told, out, _ = narrator()
    result = run_demo(told, workdir=tmp_path / "demo")
    assert_story_held(result, out.getvalue())
    assert result.rows > 40_000
    # --workdir keeps the files; the journal there holds the three runs, the user's .dbguard/ nothing new
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {"warehouse.db", "restored.db", "journal.jsonl",
                                                               "backups", "manifest.key"}  # fmt: skip
    runs = group_runs(Journal(tmp_path / "demo" / "journal.jsonl").verify().records)
    assert [run.result.split(" (")[0] for run in runs] == ["ROLLED BACK", "COMMITTED", "drill PASSED"]
    assert list(user.iterdir()) == []


def test_the_whole_story_on_postgresql_in_a_database_of_its_own_dropped_afterwards(tmp_path: Path) -> None:
    # trust authentication ignores the password: it is there to prove it never shows, nor lands in a file
    server = make_url(ADMIN_URL).set(password="demo-secret-pw").render_as_string(hide_password=False)
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--db", server, "--scale", "0.2", "--workdir", str(workdir)],
                                env={"COLUMNS": "100"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "All 21 claims held." in result.stdout
    assert "dbguard_demo_" in result.stdout and f"_{os.getpid()}" in result.stdout
    for line in ("ROLLED BACK: scripts/demo/ship_picked_orders.sql on postgresql://", "rollback proved",
                 "COMMITTED: scripts/demo/ship_covered_orders.sql", "drill PASSED", "journal OK"):  # fmt: skip
        assert line in result.stdout, line
    assert demo_databases() == set()
    assert "demo-secret-pw" not in result.output
    files = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.name == "journal.jsonl" for path in files)
    assert not [path for path in files if b"demo-secret-pw" in path.read_bytes()]


def test_ctrl_c_drops_the_demo_databases_and_removes_its_directory() -> None:
    told, out, seen = narrator()

    def interrupt_at_the_backup(message: str) -> None:
        seen.append(message)
        if "taking the backup" in message:
            assert len(demo_databases()) == 2  # the warehouse and the restore's scratch database
            raise KeyboardInterrupt

    told.on_progress = interrupt_at_the_backup
    with pytest.raises(KeyboardInterrupt):
        run_demo(told, DatabaseUrl.parse(ADMIN_URL), scale=0.1)
    assert any("taking the backup" in message for message in seen)
    assert demo_databases() == set()
    workdir = re.search(r"its journal and backups are in\s+(\S+)\.\s", out.getvalue())
    assert workdir is not None and workdir.group(1).startswith(tempfile.gettempdir())
    assert not Path(workdir.group(1)).exists()


def test_a_story_that_does_not_hold_exits_1(tmp_path: Path) -> None:
    """Without the invariant, nothing catches the subtle script: the demo says which claims failed."""
    policy = (ROOT / "policies" / "demo.toml").read_text()
    head, _, rest = policy.partition('[[invariants]]\nname = "stock on hand is never negative"')
    assert rest, "the demo policy names the invariant"
    weakened = tmp_path / "weakened.toml"
    weakened.write_text(head + "[[invariants]]" + rest.split("[[invariants]]", 1)[1])
    told, out, _ = narrator()
    result = run_demo(told, scale=0.1, policy_path=weakened)
    assert not result.ok
    failed = {claim.text.split(":")[0] for claim in result.claims if not claim.held}
    assert "the dry-run is BLOCKED" in failed
    assert "the run rolled back by itself (ROLLED BACK, exit 6)" in failed
    assert "claims did NOT hold." in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "0"], "--scale must be above 0"),
        (["--db", "sqlite:///x.db"], "--db takes a PostgreSQL server"),
        (["--workdir", str(ROOT / "README.md")], "must be a new or empty directory"),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["demo", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_a_server_that_refuses_create_database_is_a_one_line_exit_4() -> None:
    role = f"dbguard_demo_nocreatedb_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        url = make_url(ADMIN_URL).set(username=role).render_as_string(hide_password=False)
        result = CliRunner().invoke(app, ["demo", "--db", url, "--scale", "0.1"])
        assert result.exit_code == 4, result.output
        assert "cannot create the demo database" in result.output and "permission denied" in result.output
        assert "internal error" not in result.output and len(result.output.strip().splitlines()) == 1
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP ROLE "{role}"')
