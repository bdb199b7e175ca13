"""CLI behaviour: every exit code, every bad input, stdin, --output, config precedence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app

runner = CliRunner()
SCRIPTS = Path(__file__).parent.parent / "scripts"


def run(*args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_clean_script_exits_0(tmp_path: Path) -> None:
    script = tmp_path / "ok.sql"
    script.write_text("SET lock_timeout = '2s';\nDELETE FROM reservations WHERE expires_at < now();\n")
    code, out, _ = run("check", str(script))
    assert code == 0, out
    assert "PASSED" in out


def test_blocking_findings_exit_1_and_name_the_location() -> None:
    code, out, _ = run("check", str(SCRIPTS / "rogue_cleanup.sql"))
    assert code == 1
    assert "rogue_cleanup.sql:" in out and "ban-delete-without-where" in out and "BLOCKED" in out


@pytest.mark.parametrize(("fail_on", "expected"), [("error", 1), ("warning", 1), ("never", 0), ("off", 0)])
def test_fail_on(tmp_path: Path, fail_on: str, expected: int) -> None:
    script = tmp_path / "x.sql"
    script.write_text("DELETE FROM stock;\n")
    assert run("check", str(script), "--fail-on", fail_on)[0] == expected


def test_fail_on_warning_blocks_on_a_warning_only(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("CREATE TABLE t (id integer PRIMARY KEY);\n")  # prefer-bigint-identity-key: a warning
    assert run("check", str(script))[0] == 0
    assert run("check", str(script), "--fail-on", "warning")[0] == 1


def test_stdin_with_dialect() -> None:
    code, out, _ = run("check", "-", "--dialect", "sqlite", "--format", "json", input="DELETE FROM sessions;\n")
    assert code == 1
    report = json.loads(out)
    assert report["files"][0]["path"] == "<stdin>"
    assert report["files"][0]["dialect"] == "sqlite"
    assert [f["rule"] for f in report["files"][0]["findings"]] == ["ban-delete-without-where"]


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "results.sarif"
    code, out, err = run("check", str(SCRIPTS), "--format", "sarif", "--output", str(target))
    assert code == 1
    assert out == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"
    assert "report written to" in err


def test_unparseable_statement_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\nDELETE FROM WHERE;\nUPDATE t SET a = 1 WHERE id = 2;\n")
    code, out, _ = run("check", str(script), "--format", "json")
    assert code == 1
    rules = [f["rule"] for f in json.loads(out)["files"][0]["findings"]]
    assert rules == ["unrecognized-statement"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "empty.sql").write_text(""), "empty script"),
        (lambda d: (d / "blank.sql").write_text("  \n\n"), "empty script"),
        (lambda d: (d / "latin1.sql").write_bytes("SELECT 'caf\xe9';".encode("latin-1")), "not valid UTF-8"),
        (lambda d: (d / "bin.sql").write_bytes(b"\x00\x01\x02SELECT"), "binary data"),
        (lambda d: (d / "sub").mkdir(), "holds no .sql files"),
    ],
    ids=["empty", "blank", "not-utf8", "binary", "dir-without-sql"],
)
def test_bad_input_exits_3_with_one_line(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    setup(tmp_path)
    target = next(tmp_path.iterdir())
    code, out, err = run("check", str(target))
    assert code == 3
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_missing_path_exits_3() -> None:
    code, _, err = run("check", "/no/such/script.sql")
    assert code == 3
    assert "no such file" in err


def test_huge_script_exits_3(tmp_path: Path) -> None:
    big = tmp_path / "big.sql"
    line = "UPDATE stock SET qty = qty + 1 WHERE product_id = 1;\n"
    big.write_text(line * (50 * 1024 * 1024 // len(line) + 1))
    code, _, err = run("check", str(big))
    assert code == 3
    assert "MiB" in err and "split the script" in err


def test_unknown_dialect_exits_2(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    code, _, err = run("check", str(script), "--dialect", "oracle")
    assert code == 2
    assert "unknown dialect 'oracle'" in err


def test_broken_policy_toml_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("fail_on = \n")
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    code, _, err = run("check", str(script), "--policy", str(policy))
    assert code == 2
    assert "not valid TOML" in err and "line 1" in err


def test_unknown_rule_in_policy_exits_2_with_a_suggestion(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[rules]\nban-truncat = "off"\n')
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    code, _, err = run("check", str(script), "--policy", str(policy))
    assert code == 2
    assert "unknown rule 'ban-truncat'" in err and "ban-truncate" in err


def test_policy_turns_a_rule_off(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[rules]\nban-truncate = "off"\n')
    script = tmp_path / "x.sql"
    script.write_text("SET lock_timeout = '2s';\nTRUNCATE staging;")
    assert run("check", str(script))[0] == 1
    assert run("check", str(script), "--policy", str(policy))[0] == 0


def test_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;")
    assert run("check", str(script), "--format", "yaml")[0] == 2


def test_config_file_then_env_then_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dbguard.toml").write_text('dialect = "sqlite"\nformat = "json"\n')
    (tmp_path / "x.sql").write_text("VACUUM;")
    monkeypatch.chdir(tmp_path)
    _, out, _ = run("check", "x.sql")
    assert json.loads(out)["files"][0]["dialect"] == "sqlite"  # from the config file
    monkeypatch.setenv("DBGUARD_DIALECT", "mysql")
    _, out, _ = run("check", "x.sql")
    assert json.loads(out)["files"][0]["dialect"] == "mysql"  # env beats the file
    _, out, _ = run("check", "x.sql", "--dialect", "postgres")
    assert json.loads(out)["files"][0]["dialect"] == "postgres"  # the flag beats both


def test_tool_dbguard_in_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dbguard]\nfail_on = "never"\n')
    (tmp_path / "x.sql").write_text("DELETE FROM stock;")
    monkeypatch.chdir(tmp_path)
    assert run("check", "x.sql")[0] == 0


def test_unknown_config_key_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dbguard.toml").write_text('dialekt = "sqlite"\n')
    (tmp_path / "x.sql").write_text("SELECT 1;")
    monkeypatch.chdir(tmp_path)
    code, _, err = run("check", "x.sql")
    assert code == 2 and "dialekt" in err


def test_rules_list_and_explain() -> None:
    code, out, _ = run("rules", "list")
    assert code == 0 and "ban-delete-without-where" in out
    code, out, _ = run("rules", "explain", "ban-delete-without-where")
    assert code == 0 and "Bad:" in out and "Good:" in out


def test_rules_explain_unknown_rule_suggests() -> None:
    code, _, err = run("rules", "explain", "ban-delete-without-wher")
    assert code == 2 and "did you mean ban-delete-without-where" in err


def test_dialect_directive_in_the_script(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("-- dbguard: dialect=sqlite\nVACUUM;\n")
    _, out, _ = run("check", str(script), "--format", "json")
    assert json.loads(out)["files"][0]["dialect"] == "sqlite"


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("dbguard ")


def test_the_dialect_flag_beats_the_scripts_directive(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("-- dbguard: dialect=sqlite\nVACUUM;\n")
    _, out, _ = run("check", str(script), "--format", "json", "--dialect", "postgres")
    assert json.loads(out)["files"][0]["dialect"] == "postgres"


def test_a_directive_inside_a_body_is_not_a_directive(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\nDO $$ BEGIN\n-- dbguard: dialect=sqlite\nEND $$;\n")
    _, out, _ = run("check", str(script), "--format", "json")
    assert json.loads(out)["files"][0]["dialect"] == "postgres"


def test_dry_run_of_a_directory_is_a_usage_error() -> None:
    code, _, err = run("dry-run", str(SCRIPTS), "--db", "sqlite:///nowhere.db")
    assert code == 2 and "dry-run takes one script" in err


def test_fail_on_info(tmp_path: Path) -> None:
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    assert run("check", str(script), "--fail-on", "info")[0] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [(["check", "x.sql", "--fail-on", "sometimes"], "Invalid value for '--fail-on'"),
     (["check", "x.sql", "--polcy", "strict"], "No such option: --polcy"),
     (["run", "x.sql"], "Missing option '--db'"),
     (["nosuch"], "No such command 'nosuch'")],
)  # fmt: skip
def test_a_usage_error_is_one_line_with_exit_2(args: list[str], said: str) -> None:
    result = subprocess.run([sys.executable, "-m", "dbguard", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("dbguard: error: ") and said in line and "Value error" not in line


def test_a_reader_that_goes_away_is_not_an_error() -> None:
    """`dbguard ... | head`: the pipe closes before dbguard writes; it ends quietly with 0, not 70."""
    journal = Path(__file__).parent / "fixtures" / "journal" / "sample.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "dbguard", "journal", "list", "--journal", str(journal)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "internal error" not in stderr, stderr


def test_only_the_policy_key_names_a_built_in_one(tmp_path: Path) -> None:
    """A folder called "default" under backup_dir is a path like any other, relative to the config file."""
    from dbguard.config import discover

    (tmp_path / "dbguard.toml").write_text('policy = "strict"\nbackup_dir = "default"\n')
    config = discover(tmp_path)
    assert config.policy == "strict" and config.backup_dir == str((tmp_path / "default").resolve())


def test_a_message_with_a_driver_detail_is_shown_on_one_line() -> None:
    from dbguard.cli.base import _one_line

    message = 'invalid input syntax for type integer: "x"\nDETAIL:  Token "x" is invalid.\n  HINT: quote it\n'
    assert _one_line(message) == 'invalid input syntax for type integer: "x"; DETAIL:  Token "x" is invalid.; ' \
        "HINT: quote it"


@pytest.mark.parametrize("command", [
    ["verify", "--db", "postgresql://postgres@127.0.0.1:1/nowhere"],  # nothing listens: it would be exit 4
    ["drill", "--db", "postgresql://postgres@127.0.0.1:1/nowhere"],  # no backup: it would be exit 5
    ["dry-run", "scripts/safe_add_stock_index.sql", "--db", "postgresql://postgres@127.0.0.1:1/nowhere"],
    ["run", "scripts/safe_add_stock_index.sql", "--db", "postgresql://postgres@127.0.0.1:1/nowhere", "--yes"],
])  # fmt: skip
def test_an_output_that_cannot_be_written_is_refused_before_any_work(command: list[str], tmp_path: Path) -> None:
    store = ["--backup-dir", str(tmp_path / "store")] if command[0] == "drill" else []
    for output, why in ((tmp_path, "it is a directory"), (tmp_path / "missing" / "r.txt", "is not a directory")):
        result = runner.invoke(app, [*command, *store, "--output", str(output)])
        assert result.exit_code == 2, result.output
        assert why in result.output and len(result.output.strip().splitlines()) == 1, result.output
