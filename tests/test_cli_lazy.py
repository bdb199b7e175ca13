"""`dbguard <command>` imports only that command's module: a PostgreSQL `check` never loads the drivers or sqlglot.

Start-up time matters in pre-commit hooks; its figures live in bench/README.md, not here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dbguard.cli import COMMANDS, load

HEAVY = ("psycopg", "sqlalchemy", "sqlglot")
_PROBE = """
import sys
from dbguard.cli import main
sys.argv = ["dbguard", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
print("EXIT", code)
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(*args: str) -> list[str]:
    probe = _PROBE.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[-2] in ("EXIT 0", "EXIT 1"), result.stdout + result.stderr  # checked: passed, or findings
    return lines[-1].split()[1:]


def test_every_command_is_in_the_lazy_map() -> None:
    app = load()
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert commands | {g.name for g in app.registered_groups} == set(COMMANDS)


def test_a_postgres_check_loads_neither_drivers_nor_sqlglot(tmp_path: Path) -> None:
    script = tmp_path / "one.sql"
    script.write_text("ALTER TABLE stock ADD COLUMN note text;\n")
    assert _loaded("check", str(script)) == []


def test_a_tautology_and_a_sqlite_check_load_sqlglot_when_they_need_it(tmp_path: Path) -> None:
    script = tmp_path / "t.sql"
    script.write_text("DELETE FROM stock WHERE 1 = 1;\n")
    assert _loaded("check", str(script)) == ["sqlglot"]
    assert _loaded("check", "--dialect", "sqlite", str(script)) == ["sqlglot"]


def test_help_registers_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "dbguard", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert f" {name} " in result.stdout
