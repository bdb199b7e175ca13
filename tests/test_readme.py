"""The README is the user's manual: its commands run and print what it shows, and its rule list is current."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app, rules_markdown
from dbguard.policy.policy import load_policy
from tests.warehouse import make_sqlite_warehouse

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _console_examples() -> list[tuple[str, list[str]]]:
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README, re.DOTALL):
        command, *output = block.rstrip("\n").split("\n")
        assert command.startswith("$ dbguard "), command
        examples.append((command[2:], output))
    return examples


def test_rule_table_is_current() -> None:
    table = README.split("<!-- rules:start", 1)[1].split("-->", 1)[1].split("<!-- rules:end -->")[0]
    assert table.strip() == rules_markdown(load_policy(None)).strip(), "run `dbguard rules list --markdown`"


def test_every_command_is_documented() -> None:
    for command in app.registered_commands:
        assert f"dbguard {command.name or command.callback.__name__}" in README  # type: ignore[union-attr]
    for group in app.registered_groups:
        assert f"dbguard {group.name}" in README


@pytest.mark.parametrize(("command", "expected"), _console_examples(), ids=lambda v: str(v)[:60])
def test_console_example_prints_what_the_readme_shows(
    command: str, expected: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    # what a `run` example writes goes to this test's own store and journal, not the checkout's
    monkeypatch.setenv("DBGUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("DBGUARD_JOURNAL", str(tmp_path / "journal.jsonl"))
    demo_db = ROOT / ".dbguard" / "demo" / "warehouse.db"
    if str(demo_db.relative_to(ROOT)) in command and not demo_db.exists():  # `make demo` makes it; so may we
        demo_db.parent.mkdir(parents=True, exist_ok=True)
        make_sqlite_warehouse(demo_db)
    words = shlex.split(command)[1:]
    stdin = None
    if "<" in words:
        at = words.index("<")
        stdin = (ROOT / words[at + 1]).read_text()
        words = words[:at] + words[at + 2 :]
    result = CliRunner().invoke(app, words, input=stdin, env={**os.environ, "COLUMNS": "100"})
    actual = (result.stdout + result.stderr).splitlines()
    position = 0
    for line in expected:
        if line == "...":
            continue
        while position < len(actual) and actual[position].rstrip() != line.rstrip():
            position += 1
        assert position < len(actual), f"README shows a line the command does not print, in order: {line!r}"
        position += 1
