"""Peer review: `dbguard approve` / `dbguard approvals` on real files, and `run` with `[run] require_approvals`
on real PostgreSQL (the realistic schema) and SQLite.

What must hold: a sign-off is bound to the script's bytes (one changed byte voids it); a reviewer counts
once however spelt; the OS user running `run` never counts; a run without enough sign-offs stops before it
touches the target (no dry-run, no backup, no journal record) and the target is unchanged; a damaged
approvals file is refused, never read as approved.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dbguard.backup.store import BackupStore
from dbguard.cli import app
from dbguard.errors import InputError, UsageError
from dbguard.inputs import Source, read_file
from dbguard.journal import Journal, group_runs
from dbguard.journal.entries import Subject
from dbguard.pipeline.run import RunOptions, run_script
from dbguard.policy.policy import load_policy, parse_policy
from dbguard.review.approvals import (
    approvals_path,
    count_approvals,
    list_approvals,
    read_approvals,
    record_approval,
)
from dbguard.targets.url import DatabaseUrl
from tests.realschema import load_real_schema
from tests.test_run import content
from tests.warehouse import scratch_database

ME = Subject.operator()["user"]  # the OS user these tests run as: the author of every run here
SQL = "UPDATE sales.customer SET name = name || ' (checked)' WHERE id <= 3;\n"
WHEN = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)


def script_file(tmp_path: Path, sql: str = SQL, name: str = "fix.sql") -> Path:
    path = tmp_path / name
    path.write_text(sql)
    return path


def approve(script: Path, reviewer: str, note: str = "") -> None:
    record_approval(script, reviewer, note, recorded_by=ME, now=WHEN)


# --- the approvals file ---------------------------------------------------------------------------------


def test_approve_records_a_signoff_bound_to_the_scripts_sha256_and_lists_it(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    approve(script, "  Ana   Lima ", note="rows match ticket OPS-112")
    approve(script, "Bo")
    document = json.loads(approvals_path(script).read_text())
    sha256 = hashlib.sha256(script.read_bytes()).hexdigest()
    assert document["format"] == "dbguard-approvals" and document["version"] == 1
    assert document["approvals"][0] == {"reviewer": "Ana Lima", "approved_at": "2026-11-30T01:02:03Z",
                                        "script_sha256": sha256, "note": "rows match ticket OPS-112",
                                        "recorded_by": ME}  # fmt: skip
    listing = list_approvals(script)
    assert listing.script_sha256 == sha256 and [a.reviewer for a in listing.approvals] == ["Ana Lima", "Bo"]
    assert all(listing.matches(a) for a in listing.approvals) and listing.reviewers_matching == 2
    assert listing.count is None


def test_one_changed_byte_voids_every_approval(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    approve(script, "Ana")
    approve(script, "Bo")
    assert count_approvals(read_approvals(script), read_file(script).sha256, 2, ME).met
    data = bytearray(script.read_bytes())
    data[data.index(b"3")] = ord("4")  # WHERE id <= 4: one byte
    script.write_bytes(bytes(data))
    listing = list_approvals(script, required=2, author=ME)
    assert not any(listing.matches(a) for a in listing.approvals)
    assert listing.count is not None and not listing.count.met and listing.count.stale == 2
    assert "0 of 2 required approvals" in listing.count.summary()
    assert "2 approvals of an earlier version no longer count" in listing.count.summary()


def test_a_byte_order_mark_changes_the_bytes_and_so_voids_it(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    approve(script, "Ana")
    script.write_bytes(b"\xef\xbb\xbf" + script.read_bytes())  # the same text once decoded, other bytes
    assert read_file(script).text == SQL
    assert not count_approvals(read_approvals(script), read_file(script).sha256, 1, ME).met


def test_a_reviewer_counts_once_however_the_name_is_spelt(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    for name in ("Ana Lima", "ana lima", "  ANA\tLIMA  "):
        approve(script, name)
    count = count_approvals(read_approvals(script), read_file(script).sha256, 2, ME)
    assert len(count.matching) == 3 and [a.reviewer for a in count.counted] == ["Ana Lima"] and not count.met
    approve(script, "Jos\u00e9")
    approve(script, "JOSE\u0301")  # the same name, its accent a combining character
    count = count_approvals(read_approvals(script), read_file(script).sha256, 3, ME)
    assert [a.reviewer for a in count.counted] == ["Ana Lima", "Jos\u00e9"] and not count.met
    approve(script, "Bo")
    assert count_approvals(read_approvals(script), read_file(script).sha256, 3, ME).met


def test_the_author_does_not_count_as_a_reviewer(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    approve(script, ME.upper())  # the OS user running the run, in any case
    approve(script, "Ana")
    count = count_approvals(read_approvals(script), read_file(script).sha256, 2, ME)
    assert [a.reviewer for a in count.counted] == ["Ana"] and count.author_excluded and not count.met
    assert f"{ME} runs it and does not count as their own reviewer" in count.summary()
    assert count_approvals(read_approvals(script), read_file(script).sha256, 2, "someone else").met


@pytest.mark.parametrize(("text", "says"), [
    ("{", "not JSON"),
    ("[]", 'not a dbguard-approvals document'),
    ('{"format": "dbguard-approvals", "version": 2, "approvals": []}', "version 2"),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": {}}', '"approvals" is not a list'),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": [{"reviewer": "Ana"}]}', "exactly the fields"),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": [{"reviewer": "Ana", "approved_at": '
     '"2026-11-30T01:02:03Z", "script_sha256": "XYZ", "note": "", "recorded_by": ""}]}', "64 lowercase hex"),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": [{"reviewer": "Ana", "approved_at": '
     '"2026-11-30T01:02:03+02:00", "script_sha256": "' + "a" * 64 + '", "note": "", "recorded_by": ""}]}',
     "not in UTC"),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": [{"reviewer": "Ana\\u001b[2J", "approved_at": '
     '"2026-11-30T01:02:03Z", "script_sha256": "' + "a" * 64 + '", "note": "", "recorded_by": ""}]}',
     "control character"),
    ('{"format": "dbguard-approvals", "version": 1, "approvals": [{"reviewer": 7, "approved_at": '
     '"2026-11-30T01:02:03Z", "script_sha256": "' + "a" * 64 + '", "note": "", "recorded_by": ""}]}',
     "not a string"),
])  # fmt: skip
def test_a_corrupt_approvals_file_is_refused_whole_and_left_as_it_is(tmp_path: Path, text: str, says: str) -> None:
    script = script_file(tmp_path)
    approvals_path(script).write_text(text)
    with pytest.raises(InputError, match="corrupt approvals file") as refused:
        read_approvals(script)
    assert says in str(refused.value) and refused.value.exit_code == 3
    with pytest.raises(InputError):
        approve(script, "Ana")  # nothing is appended to a file that cannot be read
    assert approvals_path(script).read_text() == text


@pytest.mark.parametrize(("reviewer", "note", "says"), [
    ("", "", "the reviewer name is empty"),
    (" \t ", "", "the reviewer name is empty"),
    ("Ana\x1b[31m", "", "control character (U+001B)"),
    ("Ana\u202eamiL", "", "control character (U+202E)"),  # a bidirectional override
    ("Ana", "line one\nline two", "the note holds a control character (U+000A)"),
    ("A" * 201, "", "at most 200"),
])  # fmt: skip
def test_bad_reviewer_names_and_notes_are_usage_errors(tmp_path: Path, reviewer: str, note: str, says: str) -> None:
    script = script_file(tmp_path)
    with pytest.raises(UsageError) as refused:
        record_approval(script, reviewer, note)
    assert says in str(refused.value) and refused.value.exit_code == 2
    assert not approvals_path(script).exists()


def test_what_run_would_refuse_cannot_be_approved(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        record_approval(tmp_path / "missing.sql", "Ana")
    binary = tmp_path / "binary.sql"
    binary.write_bytes(b"SELECT 1;\x00")
    with pytest.raises(InputError, match="binary data"):
        record_approval(binary, "Ana")
    assert not approvals_path(binary).exists()


def test_approvals_recorded_at_once_are_all_kept(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    threads = [threading.Thread(target=approve, args=(script, f"reviewer {n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.reviewer for a in read_approvals(script)) == [f"reviewer {n}" for n in range(8)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


# --- the commands -----------------------------------------------------------------------------------------


def invoke(*words: str) -> Any:
    return CliRunner().invoke(app, list(words), env={"COLUMNS": "200", "DBGUARD_POLICY": "", "DBGUARD_JOURNAL": ""})


def test_the_commands_approve_and_list_with_their_exit_codes(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text("[run]\nrequire_approvals = 2\n")
    result = invoke("approve", str(script), "--reviewer", "Ana Lima", "--note", "ok")
    assert result.exit_code == 0 and result.output.startswith("approved by Ana Lima at "), result.output
    invoke("approve", str(script), "-r", ME)  # the author's own: listed, never counted
    listed = invoke("approvals", str(script))
    assert listed.exit_code == 0, listed.output
    assert "Ana Lima" in listed.output and "yes" in listed.output and "2 of 2 match" in listed.output
    short = invoke("approvals", str(script), "--policy", str(policy))
    assert short.exit_code == 1 and "NOT APPROVED: 1 of 2 required approvals" in short.output, short.output
    invoke("approve", str(script), "-r", "Bo")
    met = invoke("approvals", str(script), "--policy", str(policy), "--format", "json")
    document = json.loads(met.output)
    assert met.exit_code == 0 and document["requirement"]["met"] is True
    assert document["requirement"]["counted"] == ["Ana Lima", "Bo"] and document["requirement"]["author_excluded"]
    script.write_text(SQL + "-- one more line\n")
    changed = json.loads(invoke("approvals", str(script), "--format", "json").output)
    assert [a["matches"] for a in changed["approvals"]] == [False, False, False]


def test_the_commands_bad_input_is_one_line_with_its_exit_code(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    cases = [
        (["approve", str(tmp_path / "missing.sql"), "-r", "Ana"], 3, "missing.sql: no such file"),
        (["approve", str(script), "-r", ""], 2, "the reviewer name is empty"),
        (["approve", str(script), "-r", "Ana\x07"], 2, "control character (U+0007)"),
        (["approve", "-", "-r", "Ana"], 2, "not - (stdin)"),
        (["approve", str(script)], 2, "Missing option '--reviewer'"),
    ]
    for words, code, says in cases:
        result = invoke(*words)
        assert result.exit_code == code and says in result.output, (words, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    approvals_path(script).write_text("not json")
    result = invoke("approvals", str(script))
    assert result.exit_code == 3 and "corrupt approvals file" in result.output and "Traceback" not in result.output


# --- run with [run] require_approvals ------------------------------------------------------------------

POLICY = """
[run]
require_approvals = {required}
allow_skip_dry_run = true
allow_quick_verify = true
"""


def policy_file(tmp_path: Path, required: int) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY.format(required=required))
    return path


def run(tmp_path: Path, url: str, script: Path, required: int, options: RunOptions = RunOptions(),
        said: list[str] | None = None) -> Any:  # fmt: skip
    return run_script(read_file(script), DatabaseUrl.parse(url), load_policy(policy_file(tmp_path, required)),
                      BackupStore(tmp_path / "backups"), Journal(tmp_path / "journal.jsonl"), lambda _plan: True,
                      options, progress=(said if said is not None else []).append)  # fmt: skip


def test_postgres_run_refused_with_one_approval_too_few_then_runs_with_enough(tmp_path: Path) -> None:
    with scratch_database() as url:
        load_real_schema(url)
        script = script_file(tmp_path)
        approve(script, "Ana")
        approve(script, "ana ")  # the same reviewer again
        approve(script, ME)  # the author
        before = content(url)
        said: list[str] = []
        refused = run(tmp_path, url, script, required=2, said=said)  # a full run: dry-run, restore test
        assert refused.verdict == "BLOCKED" and refused.exit_code == 1 and not refused.journaled
        (reason,) = refused.reasons
        assert reason.startswith("not approved: 1 of 2 required approvals match the script's sha256 "), reason
        assert f"{ME} runs it and does not count as their own reviewer" in reason
        assert refused.dry_run is None and not said  # stopped before the dry-run: no sandbox, not a word of progress
        assert content(url) == before
        assert not (tmp_path / "journal.jsonl").exists() or not (tmp_path / "journal.jsonl").read_text()
        assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())

        approve(script, "Bo")
        # the dry-run finds the trigger writing audit.log, so the backup covers it; no restore test needed here
        report = run(tmp_path, url, script, required=2, options=RunOptions(quick_verify=True))
        assert report.exit_code == 0 and report.verdict == "COMMITTED", report.reasons
        after = content(url)
        assert after["sales.customer"] != before["sales.customer"] and after["audit.log"] != before["audit.log"]
        assert "approved by Ana (2026-11-30T01:02:03Z), Bo (2026-11-30T01:02:03Z)" in report.notes
        verification = Journal(tmp_path / "journal.jsonl").verify()
        assert verification.ok, verification.problems
        (journaled,) = group_runs(verification.records)
        intent = journaled.records[0].fields
        assert intent["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
        assert [(a["reviewer"], a["approved_at"], a["recorded_by"]) for a in intent["approvals"]] == [
            ("Ana", "2026-11-30T01:02:03Z", ME), ("Bo", "2026-11-30T01:02:03Z", ME)]  # fmt: skip


def test_sqlite_run_refused_after_a_changed_byte_and_on_a_corrupt_file(warehouse_sqlite: Path,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    url = f"sqlite:///{warehouse_sqlite}"
    script = script_file(tmp_path, "-- dbguard: dialect=sqlite\nUPDATE stock SET qty = qty + 1 WHERE product_id = 1;\n")
    approve(script, "Ana")
    before = content(url)
    script.write_text(script.read_text().replace("qty + 1", "qty + 2"))  # changed after the sign-off
    refused = run(tmp_path, url, script, required=1)
    assert refused.exit_code == 1 and refused.reasons[0].startswith("not approved: 0 of 1 required approval ")
    assert "; 1 approval of an earlier version no longer counts (see `dbguard approvals " in refused.reasons[0]
    assert content(url) == before

    approve(script, "Ana")
    fast = RunOptions(skip_dry_run=True, quick_verify=True)
    original = approvals_path(script).read_bytes()
    approvals_path(script).write_bytes(original.replace(b'"reviewer": "Ana"', b'"reviewer": ["Ana"]', 1))
    with pytest.raises(InputError, match="corrupt approvals file"):
        run(tmp_path, url, script, required=1, options=fast)
    assert content(url) == before

    approvals_path(script).write_bytes(original)
    report = run(tmp_path, url, script, required=1, options=fast)
    assert report.exit_code == 0 and report.verdict == "COMMITTED", report.reasons
    assert content(url) != before


def test_a_script_from_stdin_cannot_meet_an_approval_requirement(warehouse_sqlite: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{warehouse_sqlite}"
    source = Source("<stdin>", "-- dbguard: dialect=sqlite\nUPDATE stock SET qty = 1 WHERE product_id = 1;\n")
    before = content(url)
    with pytest.raises(UsageError, match="a script from stdin has none"):
        run_script(
            source,
            DatabaseUrl.parse(url),
            load_policy(policy_file(tmp_path, 1)),
            BackupStore(tmp_path / "backups"),
            Journal(tmp_path / "journal.jsonl"),
            lambda _plan: True,
        )
    assert content(url) == before
    zero = run_script(source, DatabaseUrl.parse(url), load_policy(policy_file(tmp_path, 0)),
                      BackupStore(tmp_path / "backups"), Journal(tmp_path / "journal.jsonl"), lambda _plan: True,
                      RunOptions(skip_dry_run=True, quick_verify=True))  # fmt: skip
    assert zero.exit_code == 0, zero.reasons  # no requirement: stdin runs as before


def test_the_run_command_says_why_in_one_reason_and_exits_1(warehouse_sqlite: Path, tmp_path: Path) -> None:
    script = script_file(tmp_path, "-- dbguard: dialect=sqlite\nUPDATE stock SET qty = 3 WHERE product_id = 1;\n")
    approve(script, "Ana")
    result = CliRunner().invoke(app, ["run", str(script), "--db", f"sqlite:///{warehouse_sqlite}", "--yes",
                                      "--policy", str(policy_file(tmp_path, 2)), "--journal",
                                      str(tmp_path / "journal.jsonl"), "--backup-dir", str(tmp_path / "b")],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "not approved: 1 of 2 required approvals" in result.output and "Traceback" not in result.output
    assert "load_policy" not in result.output and load_policy(None).run.require_approvals == 0


def test_approve_with_a_journal_appends_a_hash_chained_approval_record(tmp_path: Path) -> None:
    script = script_file(tmp_path)
    journal = tmp_path / "journal.jsonl"
    result = invoke("approve", str(script), "-r", "Ana Lima", "-n", "ok", "--journal", str(journal))
    assert result.exit_code == 0, result.output
    verification = Journal(journal).verify()
    assert verification.ok, verification.problems
    (record,) = verification.records
    assert record.kind == "approval" and record.fields["reviewer"] == "Ana Lima" and record.fields["user"] == ME
    assert record.fields["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert record.fields["approved_at"] == read_approvals(script)[0].approved_at
    (listed,) = group_runs(verification.records)
    assert listed.result == "approved by Ana Lima"

    journal.write_text(journal.read_text().replace('"Ana Lima"', '"Eve"'))  # an edited record: the chain breaks
    before = approvals_path(script).read_bytes()
    refused = invoke("approve", str(script), "-r", "Bo", "--journal", str(journal))
    assert refused.exit_code == 5 and "does not verify" in refused.output, refused.output
    assert approvals_path(script).read_bytes() == before  # nothing recorded that the journal would lack


@pytest.mark.parametrize("value", ["-1", "1.5", "true", '"2"'])
def test_require_approvals_is_a_whole_number_checked_when_the_policy_loads(value: str) -> None:
    with pytest.raises(UsageError, match=r"run\.require_approvals must be a non-negative whole number") as refused:
        parse_policy(f"[run]\nrequire_approvals = {value}\n", "p.toml")
    assert refused.value.exit_code == 2
    assert parse_policy("[run]\nrequire_approvals = 3\n", "p.toml").run.require_approvals == 3
    assert load_policy(None).run.require_approvals == 0 and load_policy("strict").run.require_approvals == 0
