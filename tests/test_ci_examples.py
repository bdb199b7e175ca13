"""The CI examples (docs/ci/) and the pre-commit hook (.pre-commit-hooks.yaml) stay true.

Each is valid YAML and passes its published schema (pre-commit's own manifest check; the JSON schemas of GitHub
workflows and .gitlab-ci.yml); every `dbguard ...` command line in them names commands, options and
option values that the real command tree (typer's click tree) has, so renaming a command, an option or
a format breaks this test; and the pre-commit hook's entry really passes a good script and fails a bad one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pre_commit.clientlib import load_manifest

from tests.commandline import dbguard_commands, problems_of

ROOT = Path(__file__).parent.parent
GITHUB = ROOT / "docs" / "ci" / "github-actions.yml"
GITLAB = ROOT / "docs" / "ci" / "gitlab-ci.yml"
PRE_COMMIT = ROOT / ".pre-commit-hooks.yaml"
EXAMPLES = [GITHUB, GITLAB, PRE_COMMIT]
COMMAND_KEYS = {"run", "script", "before_script", "after_script", "entry"}  # where each format keeps shell
DBGUARD = Path(sys.executable).parent / "dbguard"

# The inputs of the actions the workflow uses (their action.yml).
ACTION_INPUTS = {
    "github/codeql-action/upload-sarif": {"sarif_file", "checkout_path", "token", "matrix", "category",
                                          "wait-for-processing", "ref", "sha"},
    "marocchino/sticky-pull-request-comment": {"header", "append", "recreate", "delete", "only_create",
                                               "only_update", "hide_details", "hide", "hide_and_recreate",
                                               "hide_classify", "message", "path", "ignore_empty",
                                               "skip_unchanged", "follow_symbolic_links", "number", "owner",
                                               "repo", "GITHUB_TOKEN"},
}  # fmt: skip


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def shell_of(document: Any) -> Iterator[str]:
    """Every shell text under a key that holds commands, in document order."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in COMMAND_KEYS:
                yield from [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
            else:
                yield from shell_of(value)
    elif isinstance(document, list):
        for item in document:
            yield from shell_of(item)


def environment_of(document: Any) -> dict[str, str]:
    """The variables the file sets for its jobs (GitHub `env`, GitLab `variables`), all levels merged."""
    found: dict[str, str] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ("env", "variables") and isinstance(value, dict):
                found.update({str(k): str(v) for k, v in value.items()})
            else:
                found.update(environment_of(value))
    elif isinstance(document, list):
        for item in document:
            found.update(environment_of(item))
    return found


def test_every_example_is_valid_yaml_of_its_kind() -> None:
    for path in EXAMPLES:
        assert load(path), f"{path} is empty"
    workflow = load(GITHUB)
    assert "pull_request" in workflow[True], "`on:` (YAML 1.1 reads the key as true)"
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step either uses an action or runs"
            if "uses" in step:
                action, _, version = step["uses"].partition("@")
                assert version, f"{step['uses']}: pin a version"
                if action in ACTION_INPUTS:
                    assert set(step.get("with", {})) <= ACTION_INPUTS[action], step["with"]
    pipeline = load(GITLAB)
    jobs = {k: v for k, v in pipeline.items() if not k.startswith(".")}
    assert jobs and all("script" in job for job in jobs.values())
    assert pipeline["dbguard-check"]["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    (hook,) = load_manifest(str(PRE_COMMIT))  # pre-commit's own validation: InvalidManifestError if not
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == ("dbguard-check", "python", True)


@pytest.mark.parametrize(("path", "schema"), [(GITHUB, "github-workflows.json"), (GITLAB, "gitlab-ci.json")],
                         ids=["github", "gitlab"])  # fmt: skip
def test_each_pipeline_validates_against_its_published_schema(path: Path, schema: str) -> None:
    """SchemaStore's JSON schemas of GitHub workflows and of .gitlab-ci.yml, as check-jsonschema ships them
    (read from its package data, without importing it: its command line is not needed)."""
    package = importlib.util.find_spec("check_jsonschema")
    assert package is not None and package.submodule_search_locations, "pip install -e '.[dev]'"
    vendor = Path(next(iter(package.submodule_search_locations))) / "builtin_schemas" / "vendor"
    document = load(path)
    if True in document:  # YAML 1.1 (PyYAML) reads the key `on:` as true; GitHub reads YAML 1.2
        document["on"] = document.pop(True)
    published = json.loads((vendor / schema).read_text())
    validator = jsonschema.validators.validator_for(published)(published)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)] == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_dbguard_command_and_option_exists(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DBGUARD_")]:
        monkeypatch.delenv(name)  # only what the file sets counts (`--db` from DBGUARD_DB in the job's env)
    for name, value in environment_of(load(path)).items():
        monkeypatch.setenv(name, value)
    commands = [words for shell in shell_of(load(path)) for words in dbguard_commands(shell)]
    if path == PRE_COMMIT:  # pre-commit appends the hook's args and the staged files to its entry
        (hook,) = load(path)
        commands = [[*words, *hook.get("args", []), "scripts/fix_stock.sql"] for words in commands]
    assert commands, f"{path.name} has no dbguard command: the test would check nothing"
    for words in commands:
        assert problems_of(words) == [], f"{path.name}: dbguard {' '.join(words)}"


def test_the_checks_catch_what_was_renamed() -> None:
    assert problems_of(["check", "scripts/", "--format", "sarif", "--output", "x", "--fail-on", "never"]) == []
    assert problems_of(["dry-run", "$script", "--db", "$URL", "--format", "markdown", "-o", "report.md"]) == []
    assert problems_of(["chek", "scripts/"]) == ["`dbguard` has no command 'chek'"]
    assert "No such option" in problems_of(["check", "scripts/", "--formats", "sarif"])[0]
    assert "'sarifx' is not one of" in problems_of(["check", "x", "--format=sarifx"])[0]
    assert "Missing argument" in problems_of(["check", "--format", "sarif"])[0]
    assert problems_of(["journal"]) == ["`dbguard journal` is a group: name one of its commands"]
    assert problems_of(["backup", "--db", "$URL", "--tables", "stock"]) == []  # the group takes a backup itself
    assert "No such option" in problems_of(["backup", "verify", "--al"])[0]
    assert dbguard_commands('x=1; dbguard check "$f" --format gitlab > out || status=$?  # note') == [
        ["check", "$f", "--format", "gitlab"]
    ]
    assert dbguard_commands('pip install "dbguard @ git+https://example.org/dbguard"') == []


def test_the_pre_commit_hook_passes_a_good_script_and_fails_a_bad_one(tmp_path: Path) -> None:
    (hook,) = load(PRE_COMMIT)
    files = re.compile(hook["files"])
    assert files.search("scripts/fix_stock.sql") and not files.search("scripts/fix_stock.sql.orig")
    entry = shlex.split(hook["entry"])
    assert entry[0] == "dbguard" and DBGUARD.exists()
    good, bad = tmp_path / "good.sql", tmp_path / "bad.sql"
    good.write_text("UPDATE stock SET qty = 0 WHERE qty < 0;\n")
    bad.write_text("DELETE FROM reservations;\n")

    def hook_on(*paths: Path) -> subprocess.CompletedProcess[str]:  # as pre-commit runs it: entry, args, files
        argv = [str(DBGUARD), *entry[1:], *hook.get("args", []), *map(str, paths)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert hook_on(good).returncode == 0
    failed = hook_on(good, bad)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ban-delete-without-where" in failed.stdout
