"""The README is the user's manual: its commands run and print what it shows, and its rule list is current.

Which blocks run (the README says the same under "The README is tested"):

- every ```console block: its first line is `$ dbguard ...`, the rest is what that command prints, in
  order (`...` stands for lines left out); the command runs and must print those lines;
- every ```sh block right after a `<!-- runnable -->` line: each of its dbguard commands runs and must
  exit 0;
- every other dbguard command in a code block (```sh examples with `$URL` and the like) is parsed by
  the real command line: its commands, options and choices must exist.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app, rules_markdown
from dbguard.policy.policy import load_policy
from tests.commandline import dbguard_commands, problems_of
from tests.warehouse import make_sqlite_warehouse

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


RUNNABLE_SH = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.DOTALL)


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
    if str(demo_db.relative_to(ROOT)) in command and not demo_db.exists():  # the README says how to make it; so may we
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


def _runnable_sh_commands() -> list[str]:
    commands = []
    for block in RUNNABLE_SH.findall(README):
        lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert lines and all(line.startswith("dbguard ") for line in lines), f"a runnable block runs dbguard: {block}"
        commands += [line.split("  #")[0].strip() for line in lines]
    return commands


def test_runnable_blocks_are_marked_as_documented() -> None:
    assert "<!-- runnable -->" in README and _runnable_sh_commands(), "the README marks at least one sh block"
    for marked in re.findall(r"<!-- runnable -->\n(.{0,8})", README):
        assert marked.startswith("```sh"), f"<!-- runnable --> marks a ```sh block, not {marked!r}"


@pytest.mark.parametrize("command", _runnable_sh_commands(), ids=lambda v: v[:60])
def test_runnable_sh_command_exits_0(command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DBGUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("DBGUARD_JOURNAL", str(tmp_path / "journal.jsonl"))
    result = CliRunner().invoke(app, shlex.split(command)[1:], env={**os.environ, "COLUMNS": "100"})
    assert result.exit_code == 0, f"{command}: exit {result.exit_code}\n{result.stdout}{result.stderr}"


RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()


def _documented_commands(text: str = README) -> list[list[str]]:
    """Every dbguard command line in a manual's code blocks (the first line only of a console block)."""
    commands = []
    for language, block in re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL):
        lines = block.splitlines()[:1] if language == "console" else block.splitlines()
        for line in (line.strip() for line in lines):  # a block inside a list item is indented
            if line.startswith(("dbguard ", "$ dbguard ", "- run: dbguard ")):
                commands += dbguard_commands(line.removeprefix("$ ").removeprefix("- run: "))
    return commands


@pytest.mark.parametrize(("text", "least"), [(README, 20), (RUNBOOK, 8)], ids=["README", "runbook"])
def test_every_documented_command_and_option_exists(text: str, least: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DBGUARD_")]:
        monkeypatch.delenv(name)  # a `--db` the README leaves out must not come from the environment
    commands = _documented_commands(text)
    assert len(commands) >= least, "the examples were not found"
    problems = {" ".join(words): problems_of(words) for words in commands}
    assert {command: found for command, found in problems.items() if found} == {}


def test_every_test_the_readme_names_exists() -> None:
    """The guarantees name their tests: a renamed or deleted test must not stay named."""
    named = re.findall(r"`(tests/\w+\.py)(?:::(\w+))?`", README)
    assert len(named) > 15, "the guarantees name their tests"
    for path, test in named:
        source = ROOT / path
        assert source.exists(), f"README names {path}, which does not exist"
        if test:
            assert re.search(rf"^def {test}\(", source.read_text(), re.MULTILINE), f"{path} has no {test}"
