"""The audit journal: a real file, real processes appending at once, real edits, a SIGKILL mid-stream and a
full disk. Every kind of tampering is named by `journal verify`, with its line."""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbguard.cli import app
from dbguard.errors import JournalFailure, UsageError
from dbguard.inputs import Source
from dbguard.journal import (
    GENESIS,
    Attempt,
    AttemptResult,
    Breakage,
    DryRunSummary,
    FindingEntry,
    Intent,
    Journal,
    LockWait,
    Outcome,
    Record,
    StatementEntry,
    Subject,
    Transaction,
    find_run,
    group_runs,
    new_run_id,
    unfinished_runs,
)
from dbguard.journal.record import canonical_json
from dbguard.pipeline.dryrun import dry_run
from dbguard.policy.policy import load_policy
from dbguard.targets.url import DatabaseUrl

ROOT = Path(__file__).parent.parent
TARGET = DatabaseUrl.parse("postgresql://ops:s3cret-pw@127.0.0.1:5432/warehouse")
SUBJECT = Subject.for_run(TARGET, "scripts/safe_fix_negative_stock.sql", "a" * 64, "default", "b" * 64)
runner = CliRunner()


def intent(subject: Subject = SUBJECT) -> Intent:
    waived = FindingEntry(rule="ban-truncate", severity="error", line=4, statement=2, message="TRUNCATE empties",
                          blocking=False, waived=True, waiver_reason="staging table, rebuilt nightly")  # fmt: skip
    return Intent(subject=subject, dialect="postgres", findings=(waived,), dry_run=None, skip_dry_run=True,
                  backup_id="2026-11-27T10-00-00.000000Z-stock",
                  command="dbguard run x.sql --skip-dry-run")  # fmt: skip


def attempt(rows: int = 3, result: AttemptResult = AttemptResult.COMMITTED) -> Attempt:
    statement = StatementEntry(index=1, line=2, kind="UPDATE", rows=rows, seconds=0.012)
    return Attempt(step=1, attempt=1, result=result, statements=(statement,), txid=7281, seconds=0.05,
                   lock_waits=(LockWait(statement=1, seconds=2.0, blocking_pids=(4242,)),))  # fmt: skip


def outcome(subject: Subject = SUBJECT) -> Outcome:
    return Outcome(subject=subject, transaction=Transaction.COMMITTED, verdict="COMMITTED", exit_code=0,
                   statements=(StatementEntry(index=1, line=2, kind="UPDATE", rows=3, seconds=0.012),),
                   attempts=2, retries=1, lock_wait_seconds=2.0, timings={"execute": 0.05, "total": 4.2})  # fmt: skip


def whole_run(journal: Journal, run_id: str | None = None) -> str:
    run_id = run_id or new_run_id()
    for entry in (intent(), attempt(), outcome()):
        journal.append(run_id, entry)
    return run_id


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """Two whole runs: six records, lines 1 to 6."""
    chosen = Journal(tmp_path / "journal.jsonl")
    whole_run(chosen)
    whole_run(chosen)
    return chosen


def lines_of(journal: Journal) -> list[bytes]:
    return journal.path.read_bytes().splitlines(keepends=True)


def rewrite(journal: Journal, lines: list[bytes]) -> None:
    journal.path.write_bytes(b"".join(lines))


def forged(line: bytes, **changes: object) -> bytes:
    """The record on `line` with `changes`, and its own sha256 recomputed, as a forger would."""
    body = {**json.loads(line), **changes}
    record = Record.parse(canonical_json(body).encode())
    return replace(record, sha256=record.digest()).to_line()


def problems(journal: Journal, expect_head: str | None = None) -> list[tuple[Breakage, int | None]]:
    return [(p.breakage, p.line) for p in journal.verify(expect_head).problems]


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def die_with_parent() -> None:
    """In a child process: the kernel sends it SIGKILL when the test process dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# --- writing and reading -------------------------------------------------------------------------------------


def test_records_round_trip_and_chain(tmp_path: Path) -> None:
    chosen = Journal(tmp_path / "new" / "dir" / "journal.jsonl")  # directories are made
    run_id = new_run_id()
    written = [chosen.append(run_id, entry) for entry in (intent(), attempt(), outcome())]
    verification = chosen.verify()
    assert verification.ok, verification.problems
    assert [r.seq for r in verification.records] == [1, 2, 3]
    assert [r.kind for r in verification.records] == ["intent", "attempt", "outcome"]
    assert verification.records[0].prev_sha256 == GENESIS
    for before, after in zip(verification.records, verification.records[1:], strict=False):
        assert after.prev_sha256 == before.sha256
    for mine, read in zip(written, verification.records, strict=True):
        assert (mine.sha256, dict(mine.fields)) == (read.sha256, dict(read.fields))
    assert verification.head is not None and verification.head.sha256 == written[-1].sha256
    first = verification.records[0].fields
    assert first["user"] == SUBJECT.user and first["script_sha256"] == "a" * 64 and first["skip_dry_run"] is True
    assert first["findings"][0]["waiver_reason"] == "staging table, rebuilt nightly"
    assert verification.records[1].fields["lock_waits"] == [{"statement": 1, "seconds": 2.0, "blocking_pids": [4242]}]
    assert verification.records[2].fields["transaction"] == "committed"
    for line in lines_of(chosen):  # each line is exactly its canonical JSON
        assert line == Record.parse(line).to_line()


def test_no_password_reaches_the_journal(tmp_path: Path) -> None:
    chosen = Journal(tmp_path / "journal.jsonl")
    run_id = new_run_id()
    chosen.append(run_id, replace(intent(), command="dbguard run x.sql --db postgresql://ops:s3cret-pw@db/w"))
    lost = "connection to postgresql://ops:s3cret-pw@db/w lost during COMMIT; password=s3cret-pw"
    failed = replace(outcome(), transaction=Transaction.UNKNOWN, verdict="UNKNOWN", exit_code=7, error=lost)
    chosen.append(run_id, failed)
    text = chosen.path.read_text()
    assert "s3cret-pw" not in text
    assert "postgresql://ops:***@127.0.0.1:5432/warehouse" in text
    assert chosen.verify().ok


def test_an_intent_from_a_real_check_and_dry_run(warehouse_sqlite: Path, tmp_path: Path) -> None:
    """The converters take dbguard's own report objects: a real dry-run on a SQLite warehouse."""
    sql = ('-- dbguard: allow ban-delete-without-where reason="reservations are rebuilt by the nightly import"\n'
           "DELETE FROM reservations;\nUPDATE stock SET reserved = 0 WHERE reserved > 0;\n")  # fmt: skip
    target = DatabaseUrl.parse(f"sqlite:///{warehouse_sqlite}")
    policy = load_policy(None)
    report = dry_run(Source("reset.sql", sql), target, policy)
    findings = tuple(FindingEntry.from_finding(f, report.check.threshold) for f in report.check.findings)
    subject = Subject.for_run(target, "reset.sql", "c" * 64, policy.name, "d" * 64)
    chosen = Journal(tmp_path / "journal.jsonl")
    run_id = new_run_id()
    chosen.append(run_id, Intent(subject=subject, dialect="sqlite", findings=findings,
                                 dry_run=DryRunSummary.from_report(report)))  # fmt: skip
    fields = chosen.verify().records[0].fields
    waived = [f for f in fields["findings"] if f["rule"] == "ban-delete-without-where"]
    assert waived == [{**waived[0], "waived": True, "blocking": False,
                       "waiver_reason": "reservations are rebuilt by the nightly import"}]  # fmt: skip
    summary = fields["dry_run"]
    assert summary["verdict"] == report.verdict
    assert [s["rows"] for s in summary["statements"]] == [r.rows for r in report.execution.runs]
    assert summary["statements"][0]["kind"] == report.execution.runs[0].kind
    assert unfinished_runs(chosen, target)[0].run_id == run_id


# --- concurrency and real faults -----------------------------------------------------------------------------


def _append_many(path: str, run_id: str, count: int) -> None:
    die_with_parent()
    chosen = Journal(Path(path))
    for number in range(count):
        chosen.append(run_id, attempt(rows=number))


def test_two_processes_appending_at_once_make_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), run_id, 200)) for run_id in ("a" * 16, "b" * 16)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    verification = Journal(path).verify()
    assert verification.ok, verification.problems[:3]
    assert [r.seq for r in verification.records] == list(range(1, 401))
    for run_id in ("a" * 16, "b" * 16):  # each writer's records, all there, in its own order
        rows = [r.fields["statements"][0]["rows"] for r in verification.records if r.run_id == run_id]
        assert rows == list(range(200))


_KILLED_WRITER = """
import sys
from pathlib import Path
from tests.test_journal import attempt
from dbguard.journal import Journal
journal = Journal(Path(sys.argv[1]))
journal.append("c" * 16, attempt())
print("ready", flush=True)
while True:
    journal.append("c" * 16, attempt())
"""


def test_a_writer_killed_by_sigkill_leaves_a_journal_that_verifies_or_repairs(tmp_path: Path) -> None:
    chosen = Journal(tmp_path / "journal.jsonl")
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(chosen.path)], cwd=ROOT,
                              stdout=subprocess.PIPE, preexec_fn=die_with_parent)  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 30
        while len(chosen.path.read_bytes()) < 20_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        writer.kill()
        writer.wait()
    found = problems(chosen)
    assert found in ([], [(Breakage.TORN, len(lines_of(chosen)))])
    if found:
        assert chosen.repair() is not None
    assert chosen.verify().ok
    whole_run(chosen)
    assert chosen.verify().ok


_FULL_DISK_WRITER = """
import sys
from pathlib import Path
from dataclasses import replace
from tests.test_journal import outcome
from dbguard.errors import JournalFailure
from dbguard.journal import Journal
try:
    Journal(Path(sys.argv[1])).append("d" * 16, replace(outcome(), error="x" * 4000))
except JournalFailure as error:
    print(error)
    sys.exit(error.exit_code)
"""


def test_a_full_disk_cuts_the_half_written_record_off(journal: Journal) -> None:
    """RLIMIT_FSIZE (`ulimit -f`) lets the child write 100 bytes of a 4 KB record, then fails with EFBIG."""
    before = journal.path.read_bytes()

    def small_disk() -> None:
        import resource

        die_with_parent()
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, len(before) + 100))

    result = subprocess.run([sys.executable, "-c", _FULL_DISK_WRITER, str(journal.path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, preexec_fn=small_disk, check=False)  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "File too large; nothing was appended" in result.stdout
    assert journal.path.read_bytes() == before
    assert journal.verify().ok


# --- verify names what was done to the journal ---------------------------------------------------------------


def test_an_edited_byte_is_caught_on_its_line(journal: Journal) -> None:
    lines = lines_of(journal)
    assert b'"rows":3' in lines[1]
    lines[1] = lines[1].replace(b'"rows":3', b'"rows":4')  # still valid JSON, still parses as a record
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.EDITED, 2)]


def test_an_edit_with_a_recomputed_own_hash_is_caught_by_the_next_link(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[2] = forged(lines[2], verdict="ROLLED BACK", exit_code=6)
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.EDITED, 3)]
    assert "line 4 (seq 4) does not link to it: it was changed" in str(journal.verify().problems[0])


def test_a_deleted_record_is_missing_before_the_next(journal: Journal) -> None:
    lines = lines_of(journal)
    del lines[2]
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.MISSING, 3)]
    assert "seq 3 before it is not in the journal" in str(journal.verify().problems[0])


def test_an_inserted_forged_record_is_named(journal: Journal) -> None:
    lines = lines_of(journal)
    third = Record.parse(lines[2])
    fake = forged(lines[3], seq=4, prev_sha256=third.sha256, verdict="COMMITTED")  # links to seq 3, like the real 4
    lines.insert(3, fake)
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.INSERTED, 4)]
    assert "repeats seq 4 of line 5" in str(journal.verify().problems[0])


def test_a_forged_record_with_a_new_seq_in_the_middle_is_inserted(journal: Journal) -> None:
    lines = lines_of(journal)
    lines.insert(2, forged(lines[1], seq=99, prev_sha256="e" * 64))
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.INSERTED, 3)]


def test_swapped_records_are_out_of_order(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.OUT_OF_ORDER, 3)]
    assert "belongs after line 4 (seq 3)" in str(journal.verify().problems[0])


def test_a_line_that_is_no_record_is_unreadable(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[1] = b'{"hello": "world"}\n'
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.UNREADABLE, 2), (Breakage.MISSING, 3)]


def test_several_problems_are_all_reported(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[0] = lines[0].replace(b'"dialect":"postgres"', b'"dialect":"sqlite!"')
    del lines[4]
    rewrite(journal, lines)
    assert problems(journal) == [(Breakage.EDITED, 1), (Breakage.MISSING, 5)]


def test_every_deletion_swap_copy_and_flipped_byte_is_named(journal: Journal) -> None:
    """At every position of the journal, not only at the ones the tests above pick."""
    original = lines_of(journal)
    count = len(original)
    for at in range(count - 1):  # deleting the LAST record needs --expect-head (below)
        rewrite(journal, original[:at] + original[at + 1 :])
        assert problems(journal) == [(Breakage.MISSING, at + 1)], f"delete line {at + 1}"
        swapped = original.copy()
        swapped[at], swapped[at + 1] = swapped[at + 1], swapped[at]
        rewrite(journal, swapped)
        assert [b for b, _ in problems(journal)] == [Breakage.OUT_OF_ORDER], f"swap lines {at + 1}, {at + 2}"
    for at in range(count):
        rewrite(journal, original[: at + 1] + original[at:])
        assert [b for b, _ in problems(journal)] == [Breakage.INSERTED], f"copy of line {at + 1}"
    flips = random.Random(9)
    for _ in range(200):
        at = flips.randrange(count)
        line = bytearray(original[at])
        line[flips.randrange(len(line) - 1)] ^= 1 << flips.randrange(7)  # any bit of an ASCII byte, not the newline
        rewrite(journal, [*original[:at], bytes(line), *original[at + 1 :]])
        assert problems(journal), f"flipped a bit in line {at + 1}"


def test_removing_the_last_records_needs_the_head_kept_elsewhere(journal: Journal) -> None:
    head = journal.verify().head
    assert head is not None
    assert journal.verify(head.sha256).ok
    rewrite(journal, lines_of(journal)[:-2])
    assert journal.verify().ok  # a chain alone cannot tell
    assert problems(journal, head.sha256) == [(Breakage.HEAD_NOT_FOUND, None)]
    journal.path.unlink()
    assert problems(journal, head.sha256) == [(Breakage.HEAD_NOT_FOUND, None)]


def test_a_rehashed_last_record_needs_the_head_kept_elsewhere(journal: Journal) -> None:
    head = journal.verify().head
    assert head is not None
    lines = lines_of(journal)
    lines[-1] = forged(lines[-1], retries=0, lock_wait_seconds=0.0)  # hide the lock waits
    rewrite(journal, lines)
    assert journal.verify().ok  # a chain alone cannot tell
    assert problems(journal, head.sha256) == [(Breakage.HEAD_NOT_FOUND, None)]


def test_the_head_of_an_earlier_verify_still_matches_after_more_runs(journal: Journal) -> None:
    head = journal.verify().head
    assert head is not None
    whole_run(journal)
    assert journal.verify(head.sha256).ok


# --- failing closed ------------------------------------------------------------------------------------------


def test_a_torn_last_line_stops_appends_until_repaired(journal: Journal) -> None:
    lines = lines_of(journal)
    torn = lines[-1][:40]
    rewrite(journal, [*lines[:-1], torn])
    assert problems(journal) == [(Breakage.TORN, 6)]
    before = journal.path.read_bytes()
    with pytest.raises(JournalFailure, match=r"ends in a torn record .* nothing was appended"):
        journal.append(new_run_id(), intent())
    assert journal.path.read_bytes() == before

    repaired = journal.repair()
    assert repaired is not None
    record, saved = repaired
    assert saved.read_bytes() == torn
    assert (record.kind, record.seq, record.fields["removed_bytes"]) == ("repair", 6, 40)
    assert journal.verify().ok
    assert journal.repair() is None
    whole_run(journal)
    assert journal.verify().ok


def test_repair_touches_nothing_but_a_torn_tail(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[1] = lines[1].replace(b'"rows":3', b'"rows":4')
    rewrite(journal, [*lines[:-1], lines[-1][:40]])
    before = journal.path.read_bytes()
    with pytest.raises(JournalFailure, match="repair only sets a torn last line aside"):
        journal.repair()
    assert journal.path.read_bytes() == before


def test_appending_onto_an_edited_last_record_is_refused(journal: Journal) -> None:
    lines = lines_of(journal)
    lines[-1] = lines[-1].replace(b'"exit_code":0', b'"exit_code":1')
    rewrite(journal, lines)
    with pytest.raises(JournalFailure, match=r"last record \(seq 6\) was edited; nothing was appended"):
        journal.append(new_run_id(), intent())


def test_an_unwritable_journal_is_a_journal_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "journal.jsonl"
    blocked.mkdir()  # a directory where the file should be
    with pytest.raises(JournalFailure, match="cannot open journal"):
        Journal(blocked).append(new_run_id(), intent())


# --- runs: unfinished ones and prefix lookups ----------------------------------------------------------------


def test_an_intent_without_an_outcome_is_an_unfinished_run(journal: Journal) -> None:
    crashed = new_run_id()
    journal.append(crashed, intent())
    journal.append(crashed, attempt(result=AttemptResult.LOCK_TIMEOUT))
    elsewhere = Subject.for_run(DatabaseUrl.parse("postgresql://ops@127.0.0.1:5432/other"), "x.sql", "a" * 64,
                                "default", "b" * 64)  # fmt: skip
    journal.append(new_run_id(), intent(elsewhere))
    same_database = DatabaseUrl.parse("postgresql://someone:else@localhost:5432/warehouse")  # spelled apart
    assert [run.run_id for run in unfinished_runs(journal, same_database)] == [crashed]
    journal.append(crashed, replace(outcome(), transaction=Transaction.ROLLED_BACK, verdict="ROLLED BACK",
                                    exit_code=6))  # fmt: skip
    assert unfinished_runs(journal, same_database) == []


def test_unfinished_runs_refuses_a_journal_that_does_not_verify(journal: Journal) -> None:
    lines = lines_of(journal)
    del lines[1]
    rewrite(journal, lines)
    with pytest.raises(JournalFailure, match=r"does not verify: line 2 .*missing"):
        unfinished_runs(journal, TARGET)


def test_a_run_is_found_by_a_unique_prefix(tmp_path: Path) -> None:
    chosen = Journal(tmp_path / "journal.jsonl")
    for run_id in ("aaaa111100000000", "aaaa222200000000", "bbbb000000000000"):
        whole_run(chosen, run_id)
    runs = group_runs(chosen.verify().records)
    assert find_run(runs, "b", "j").run_id == "bbbb000000000000"
    assert find_run(runs, "aaaa2", "j").run_id == "aaaa222200000000"
    assert find_run(runs, "aaaa111100000000", "j").run_id == "aaaa111100000000"
    with pytest.raises(UsageError, match="'aaaa' is ambiguous, 2 runs start with it: aaaa111100000000, aaaa2222"):
        find_run(runs, "aaaa", "j")
    with pytest.raises(UsageError, match="no run 'c'"):
        find_run(runs, "c", "j")


# --- the CLI -------------------------------------------------------------------------------------------------


def test_cli_list_marks_a_crashed_run(journal: Journal) -> None:
    crashed = new_run_id()
    journal.append(crashed, intent())
    code, out, _ = cli("journal", "list", "--journal", str(journal.path))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["run", "started", "user@host", "target", "script", "result"]
    assert rows[1].startswith(crashed) and rows[1].rstrip().endswith("NO OUTCOME (crashed?)")
    assert f"{SUBJECT.user}@{SUBJECT.host}" in rows[1] and "scripts/safe_fix_negative_stock.sql" in rows[1]
    assert all(row.rstrip().endswith("COMMITTED (exit 0)") for row in rows[2:4])
    assert "s3cret" not in out


def test_cli_show_prints_every_record_of_a_run(journal: Journal) -> None:
    run_id = group_runs(journal.verify().records)[1].run_id
    code, out, _ = cli("journal", "show", run_id[:6], "--journal", str(journal.path))
    assert code == 0, out
    assert out.startswith(f"run {run_id}: COMMITTED (exit 0)\n")
    assert "intent (line 4, seq 4)" in out and "attempt (line 5, seq 5)" in out and "outcome (line 6, seq 6)" in out
    assert "waiver_reason=staging table, rebuilt nightly" in out
    code, out, _ = cli("journal", "show", run_id, "--journal", str(journal.path), "--format", "json")
    body = json.loads(out)
    assert [r["seq"] for r in body["records"]] == [4, 5, 6] and body["result"] == "COMMITTED (exit 0)"


def test_cli_show_with_an_ambiguous_or_unknown_id_exits_2(tmp_path: Path) -> None:
    chosen = Journal(tmp_path / "journal.jsonl")
    whole_run(chosen, "abc1000000000000")
    whole_run(chosen, "abc2000000000000")
    code, _, err = cli("journal", "show", "abc", "--journal", str(chosen.path))
    assert code == 2 and "abc1000000000000, abc2000000000000" in err
    code, _, err = cli("journal", "show", "zzz", "--journal", str(chosen.path))
    assert code == 2 and "no run 'zzz'" in err


def test_cli_verify_exit_codes(journal: Journal) -> None:
    code, out, _ = cli("journal", "verify", "--journal", str(journal.path))
    head = journal.verify().head
    assert head is not None
    assert (code, out) == (0, f"journal OK: 6 records, 2 runs, head sha256 {head.sha256} (seq 6)\n")
    lines = lines_of(journal)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(journal, lines)
    code, out, _ = cli("journal", "verify", "--journal", str(journal.path))
    assert code == 1
    assert out.splitlines()[0] == f"journal {journal.path} is BROKEN: 1 problem"
    assert out.splitlines()[1].startswith("  line 3 (seq 4, run ") and "out of order" in out
    code, out, err = cli("journal", "list", "--journal", str(journal.path))
    assert code == 1 and "does not verify" in err and "COMMITTED" in out  # listed, and flagged


def test_cli_repair(journal: Journal) -> None:
    rewrite(journal, [*lines_of(journal)[:-1], b'{"journal_version":1,"se'])
    code, _, err = cli("journal", "verify", "--journal", str(journal.path))
    assert code == 1
    code, out, _ = cli("journal", "repair", "--journal", str(journal.path))
    assert code == 0 and out.startswith("set aside 24 torn bytes in ")
    assert cli("journal", "verify", "--journal", str(journal.path))[0] == 0
    assert cli("journal", "repair", "--journal", str(journal.path))[1].endswith("nothing to repair\n")
    lines = lines_of(journal)
    del lines[1]
    rewrite(journal, lines)
    code, _, err = cli("journal", "repair", "--journal", str(journal.path))
    assert code == 5 and "repair only sets a torn last line aside" in err


def test_cli_without_a_journal(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.jsonl")
    assert cli("journal", "list", "--journal", missing) == (0, f"no journal at {missing}\n", "")
    code, out, err = cli("journal", "verify", "--journal", missing)  # "OK" would vouch for a typo'd path
    assert code == 3 and f"no journal at {missing}" in err and not out
    assert cli("journal", "show", "ab", "--journal", missing)[0] == 2
    assert cli("journal", "verify", "--journal", missing, "--expect-head", "f" * 64)[0] == 3
    code, _, err = cli("journal", "verify", "--journal", missing, "--expect-head", "f" * 12)
    assert code == 2 and "64 hex digits" in err


def test_journal_path_comes_from_flag_then_environment_then_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dbguard.toml").write_text('journal_path = "audit/journal.jsonl"\n')
    nested = tmp_path / "sub"
    nested.mkdir()
    monkeypatch.chdir(nested)  # a relative journal_path is relative to the config file
    from_config = Journal(tmp_path / "audit" / "journal.jsonl")
    whole_run(from_config, "c0nf1g0000000000")
    from_env = Journal(tmp_path / "env.jsonl")
    whole_run(from_env, "e0e0e0e000000000")
    from_flag = Journal(tmp_path / "flag.jsonl")
    whole_run(from_flag, "f1a90000000000000")
    env = {**os.environ, "DBGUARD_JOURNAL": str(from_env.path)}
    assert "c0nf1g" in cli("journal", "list", env={k: v for k, v in env.items() if k != "DBGUARD_JOURNAL"})[1]
    assert "e0e0e0" in cli("journal", "list", env=env)[1]
    assert "f1a900" in cli("journal", "list", "--journal", str(from_flag.path), env=env)[1]


def test_readme_sample_journals_are_what_the_readme_says() -> None:
    """The README's examples read these two files; the first verifies, the second was tampered with."""
    sample = Journal(ROOT / "tests" / "fixtures" / "journal" / "sample.jsonl")
    assert sample.verify().ok
    assert any(run.unfinished for run in group_runs(sample.verify().records))
    tampered = Journal(ROOT / "tests" / "fixtures" / "journal" / "tampered.jsonl")
    assert {p.breakage for p in tampered.verify().problems} == {Breakage.EDITED, Breakage.MISSING}
