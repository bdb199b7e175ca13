"""Every value of a policy is checked when the policy is loaded: type and unit. A bad one is a usage error
(exit 2), one line naming the file and the key, before any script is read or any database touched."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.errors import UsageError
from dbguard.policy.policy import MAX_POLICY_BYTES, load_policy, parse_policy

runner = CliRunner()

ROW_COUNT = '[[invariants]]\nname = "n"\nkind = "row_count"\ntable = "stock"\n'
UNIQUE = '[[invariants]]\nname = "u"\nkind = "unique"\ntable = "stock"\n'

# (policy text, the key the error must name, a word of what it expects)
BAD = [
    ('[timeouts]\nlock_timeout = "banana"', "timeouts.lock_timeout", "duration"),
    ('[timeouts]\nstatement_timeout = "5 minutes"', "timeouts.statement_timeout", "duration"),
    ('[timeouts]\nlock_timeout = "-1s"', "timeouts.lock_timeout", "duration"),
    ('[timeouts]\nlock_timeout = "2S"', "timeouts.lock_timeout", "duration"),  # PostgreSQL's units are case-sensitive
    ('[timeouts]\nlock_timeout = "30d"', "timeouts.lock_timeout", "2147483647"),  # beyond what the server accepts
    ("[timeouts]\nlock_timeout = 1.5", "timeouts.lock_timeout", "duration"),
    ("[timeouts]\nlock_timeout = true", "timeouts.lock_timeout", "duration"),
    ('[thresholds]\nmax_rows_affected = "10"', "thresholds.max_rows_affected", "whole number"),
    ("[thresholds]\nmax_rows_affected = 10.5", "thresholds.max_rows_affected", "whole number"),
    ("[thresholds]\nmax_rows_affected = -1", "thresholds.max_rows_affected", "non-negative"),
    ("[thresholds]\nmax_delete_percent = 150", "thresholds.max_delete_percent", "percentage"),
    ("[thresholds]\nmax_delete_percent = nan", "thresholds.max_delete_percent", "number"),
    ("[thresholds]\nmax_delete_percent = true", "thresholds.max_delete_percent", "number"),
    ('[run]\nlock_retries = "3"', "run.lock_retries", "whole number"),
    ('[run]\nallow_skip_dry_run = "yes"', "run.allow_skip_dry_run", "true or false"),
    ('allow_non_transactional = "false"', "allow_non_transactional", "true or false"),
    ('protected_tables = "stock"', "protected_tables", "list of names"),
    ("protected_tables = [1, 2]", "protected_tables", "list of names"),
    ("fail_on = 1", "fail_on", "error, warning, info, off"),
    ('fail_on = "never"', "fail_on", "error, warning, info, off"),
    ("[rules]\nban-truncate = false", "rules.ban-truncate", "error, warning, info, off"),
    ("name = 7", "name", "string"),
    ("description = []", "description", "string"),
    ("[thresholds]\nmax_rows = 5", "max_rows", "unknown key"),
    (UNIQUE + 'columns = "qty"', "columns", "list of names"),
    (UNIQUE + "columns = []", "columns", "at least one column"),
    (UNIQUE, "unique", "column or columns"),
    (UNIQUE + 'column = "a"\ncolumns = ["b"]', "unique", "column or columns"),
    (ROW_COUNT + 'max_delta = "a"', "max_delta", "whole number"),
    (ROW_COUNT + "min_delta = 1.5", "min_delta", "whole number"),
    (ROW_COUNT + "max_delete_percent = 101", "max_delete_percent", "percentage"),
    (ROW_COUNT, "row_count", "at least one of"),
    (ROW_COUNT + 'max_delta = 1\ncolumn = "qty"', "row_count", "takes no 'column'"),
    ('[[invariants]]\nkind = "sql"\nsql = 5', "sql", "string"),
    ('[[invariants]]\nkind = "sql"\nsql = ""', "sql", "string"),
    ('[[invariants]]\nkind = ["sql"]\nsql = "SELECT 1"', "kind", "one of"),
    ('[[invariants]]\nkind = "accepted_values"\ntable = "t"\ncolumn = "c"\nvalues = "open"', "values", "list"),
    ('[[invariants]]\nkind = "accepted_values"\ntable = "t"\ncolumn = "c"\nvalues = [1979-05-27]', "values", "list"),
    ('[[invariants]]\nkind = "not_null"\ntable = "t"\ncolumn = ["c"]', "column", "string"),
    ("a = " + "[" * 5_000 + "]" * 5_000, "too deeply", "nests"),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD, ids=[case[1] + ":" + case[2] for case in BAD])
def test_a_bad_value_is_a_usage_error_naming_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    policy = tmp_path / "bad-policy.toml"
    policy.write_text(text + "\n")
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    result = runner.invoke(app, ["check", str(script), "--policy", str(policy)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    error = result.stderr
    assert error.count("\n") == 1 and "Traceback" not in error, error
    assert f"policy {policy}" in error and key in error and expected in error, error


GOOD = [
    ('[timeouts]\nlock_timeout = "2s"\nstatement_timeout = "5min"', "timeouts", ("2s", "5min")),
    ('[timeouts]\nlock_timeout = "100ms"\nstatement_timeout = "1.5h"', "timeouts", ("100ms", "1.5h")),
    ('[timeouts]\nlock_timeout = 500\nstatement_timeout = "0"', "timeouts", ("500", "0")),
    ('[timeouts]\nlock_timeout = " 3 s "\nstatement_timeout = "250us"', "timeouts", ("3 s", "250us")),
]


@pytest.mark.parametrize(("text", "section", "expected"), GOOD)
def test_durations_in_every_documented_form(text: str, section: str, expected: tuple[str, str]) -> None:
    timeouts = parse_policy(text, "p.toml").timeouts
    assert (timeouts.lock_timeout, timeouts.statement_timeout) == expected


def test_every_invariant_kind_loads() -> None:
    policy = parse_policy(
        """
[[invariants]]
name = "never negative"
sql = "SELECT * FROM stock WHERE qty < 0"

[[invariants]]
kind = "not_null"
table = "products"
columns = ["name", "unit_price"]

[[invariants]]
kind = "unique"
table = "products"
column = "sku"

[[invariants]]
kind = "accepted_values"
table = "orders"
column = "status"
values = ["open", 1, 2.5, true]

[[invariants]]
kind = "row_count"
table = "stock"
min_delta = -5
max_delete_percent = 1.0
""",
        "p.toml",
    )
    sql, not_null, unique, accepted, row_count = policy.invariants
    assert (sql.kind, sql.name, sql.sql) == ("sql", "never negative", "SELECT * FROM stock WHERE qty < 0")
    assert not_null.columns == ("name", "unit_price") and not_null.name == "not_null #2"
    assert unique.columns == ("sku",)
    assert accepted.values == ("open", 1, 2.5, True)
    assert (row_count.min_delta, row_count.max_delta, row_count.max_delete_percent) == (-5, None, 1.0)


@pytest.mark.parametrize("name", ["default", "strict"])
def test_the_built_in_policies_and_their_copies_load(name: str) -> None:
    built_in = load_policy(name)
    copy = load_policy(Path(__file__).parent.parent / "policies" / f"{name}.toml")
    assert built_in.timeouts == copy.timeouts and built_in.invariants == copy.invariants


def test_dry_run_refuses_a_bad_timeout_before_touching_anything(tmp_path: Path) -> None:
    """`lock_timeout = "banana"` used to pass `check` and crash `dry-run` with exit 70."""
    policy = tmp_path / "p.toml"
    policy.write_text('[timeouts]\nlock_timeout = "banana"\n')
    script = tmp_path / "x.sql"
    script.write_text("SELECT 1;\n")
    database = tmp_path / "target.db"
    result = runner.invoke(app, ["dry-run", str(script), "--db", f"sqlite:///{database}", "--policy", str(policy)])
    assert result.exit_code == 2, result.output
    assert "timeouts.lock_timeout" in result.stderr
    assert not database.exists()


def test_a_policy_read_from_a_fifo_stops_at_the_limit(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)

    def writer() -> None:
        try:
            with open(fifo, "wb") as pipe:
                while True:
                    pipe.write(b"# a comment that never ends\n" * 1000)
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with pytest.raises(UsageError, match=f"larger than {MAX_POLICY_BYTES // 1024} KiB"):
        load_policy(fifo)
    thread.join(timeout=30)
    assert not thread.is_alive()
