"""`dbguard drill` and `dbguard backup verify --all` on real PostgreSQL (the real-schema database, real
pg_dump and pg_restore) and real SQLite files: a drill restores a real backup into a sandbox, times it,
checks it and journals it; a damaged backup or a broken invariant fails it; the target is never touched."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from dbguard.backup.store import FAILED, VERIFIED, BackupStore, Manifest, sha256_of
from dbguard.backup.take import take_backup
from dbguard.journal import Journal
from dbguard.monitor.backups import backup_freshness
from dbguard.pipeline.drill import drill
from dbguard.policy.policy import load_policy, parse_policy
from dbguard.report.drill import json as drill_json
from dbguard.report.drill import markdown as drill_markdown
from dbguard.report.drill import text as drill_text
from dbguard.targets.url import DatabaseUrl
from tests.realschema import load_real_schema
from tests.test_backup import SECRET, cli, live_stats, with_password
from tests.test_backup_faults import flip_one_byte
from tests.warehouse import ADMIN_URL, scratch_database

INVARIANTS = """
[[invariants]]
name = "customers have names"
kind = "not_null"
table = "sales.customer"
column = "name"

[[invariants]]
name = "no customer 7"
kind = "sql"
sql = "SELECT id, name FROM sales.customer WHERE id = 7"

[[invariants]]
name = "customers are not deleted"
kind = "row_count"
table = "sales.customer"
max_delete_percent = 0
"""


@pytest.fixture(scope="module")
def real_pg() -> Iterator[str]:
    """The real-schema database, shared by the tests of this module: they only read it."""
    with scratch_database("dbguard_drill") as url:
        load_real_schema(url)
        yield url


def backup_of(url: str, directory: Path, compress: int = 1) -> tuple[BackupStore, Manifest]:
    """An unverified backup taken by the library `dbguard backup` uses (the drill is the restore test here)."""
    store = BackupStore(directory)
    return store, take_backup(DatabaseUrl.parse(url), store, verify=False, compress=compress)


def drill_cli(*args: str) -> tuple[int, str]:
    return cli("drill", *args)


def sandboxes() -> set[str]:
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbguard_sandbox%'").fetchall()
    return {row[0] for row in rows}


def sandbox_name(report: dict[str, object]) -> str:
    return str(report["sandbox"]).split('"')[1]


def test_a_drill_of_a_real_schema_backup_passes_is_timed_and_journaled(real_pg: str, tmp_path: Path) -> None:
    store, manifest = backup_of(real_pg, tmp_path / "store")
    journal = tmp_path / "journal.jsonl"
    before = live_stats(real_pg)
    started = datetime.now(UTC)
    code, output = drill_cli("--db", real_pg, "--backup-dir", str(store.directory), "--journal", str(journal),
                             "--format", "json")  # fmt: skip
    finished = datetime.now(UTC)
    assert code == 0, output
    report = json.loads(output[output.index("{") : output.rindex("}") + 1])
    assert report["passed"] is True and report["verdict"] == "passed" and report["reasons"] == []
    assert report["backup_id"] == manifest.id and report["source"] == manifest.target
    assert report["rto_seconds"] > 0
    # RPO: the backup's age when the drill began, from the time stamped in the backup's id
    taken = datetime.fromisoformat(report["taken_at"])
    assert taken.strftime("%Y-%m-%dT%H-%M-%S.%fZ") == manifest.id[:27]
    assert (started - taken).total_seconds() <= report["rpo_seconds"] <= (finished - taken).total_seconds()
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == set(manifest.tables) and all(t["matches"] for t in tables.values())
    assert tables["sales.pay_2024_s2"]["restored_rows"] == manifest.tables["sales.pay_2024_s2"].rows > 0
    assert tables["Kundendienst.Fälle"]["restored_rows"] == 30
    assert sandbox_name(report) not in sandboxes()  # removed afterwards
    assert live_stats(real_pg) == before  # the target is untouched
    verification = Journal(journal).verify()
    assert verification.ok
    (record,) = verification.records
    assert record.kind == "drill" and record.run_id == report["run_id"]
    assert record.fields["backup_id"] == manifest.id and record.fields["verdict"] == "PASSED"
    assert record.fields["exit_code"] == 0 and record.fields["restore_seconds"] > 0
    assert record.fields["rows"] == sum(image.rows for image in manifest.tables.values())
    code, listed = cli("journal", "list", "--journal", str(journal))
    assert code == 0 and "drill PASSED (exit 0)" in listed, listed
    code, shown = cli("journal", "show", report["run_id"][:6], "--journal", str(journal))
    assert code == 0 and f"backup_id           {manifest.id}" in shown, shown


def test_the_newest_backup_of_the_database_is_drilled_and_a_prefix_chooses_another(
    real_pg: str, tmp_path: Path
) -> None:
    store, older = backup_of(real_pg, tmp_path / "store")
    _, newer = backup_of(real_pg, tmp_path / "store")
    with scratch_database("dbguard_other") as other:  # a backup of another database in the same store
        load_real_schema(other)
        _, foreign = backup_of(other, tmp_path / "store")
        policy = load_policy(None)
        assert drill(DatabaseUrl.parse(real_pg), store, policy).backup_id == newer.id
        assert drill(DatabaseUrl.parse(other), store, policy).backup_id == foreign.id
    chosen = drill(None, store, policy, backup_id=older.id[:24])
    assert chosen.backup_id == older.id and chosen.passed
    code, output = drill_cli("--backup", older.id[:10], "--backup-dir", str(store.directory), "--journal",
                             str(tmp_path / "j.jsonl"))  # fmt: skip
    assert code == 2 and "is the start of 3 backup ids" in output, output
    code, output = drill_cli("--db", real_pg, "--backup", foreign.id, "--backup-dir", str(store.directory),
                             "--journal", str(tmp_path / "j.jsonl"))  # fmt: skip
    assert code == 2 and f"backup {foreign.id} is of " in output, output
    assert not (tmp_path / "j.jsonl").exists()  # nothing drilled, nothing journaled


def test_no_backup_of_the_database_is_a_one_line_error(real_pg: str, tmp_path: Path) -> None:
    code, output = drill_cli("--db", real_pg, "--backup-dir", str(tmp_path / "empty"), "--journal",
                             str(tmp_path / "j.jsonl"))  # fmt: skip
    assert code == 5, output
    assert output.strip().count("\n") == 0 and "no backup of" in output and "nothing to drill" in output, output
    code, output = drill_cli("--backup-dir", str(tmp_path / "empty"))
    assert code == 2 and "--db URL" in output, output


def test_a_flipped_byte_in_the_dump_fails_the_drill(real_pg: str, tmp_path: Path) -> None:
    store, manifest = backup_of(real_pg, tmp_path / "store")
    flip_one_byte(store.directory / manifest.dump_file)
    journal = tmp_path / "journal.jsonl"
    code, output = drill_cli("--db", real_pg, "--backup-dir", str(store.directory), "--journal", str(journal))
    assert code == 5, output
    assert "drill FAILED" in output and "sha256 does not match the manifest" in output, output
    assert "RTO         not measured: the restore failed" in output and "invariants  not evaluated" in output
    assert f"dbguard: error: drill of backup {manifest.id} FAILED: the dump file's sha256" in output, output
    (record,) = Journal(journal).trusted().records
    assert record.fields["verdict"] == "FAILED" and record.fields["exit_code"] == 5
    assert record.fields["restore_seconds"] is None and "sha256" in record.fields["failure"]


def test_a_changed_row_in_a_dump_whose_checksum_was_rewritten_fails_on_the_hashes(real_pg: str, tmp_path: Path) -> None:
    """A dump that restores, with one value changed, and a manifest re-signed for its sha256 (a bug or an
    intruder with the key): only the restored rows' hashes can tell."""
    store, manifest = backup_of(real_pg, tmp_path / "store", compress=0)
    dump = store.directory / manifest.dump_file
    data = dump.read_bytes()
    assert data.count(b"customer 17\t") == 1
    dump.write_bytes(data.replace(b"customer 17\t", b"customer 71\t"))
    store.save(replace(manifest, dump_sha256=sha256_of(dump)))
    report = drill(DatabaseUrl.parse(real_pg), store, load_policy(None), journal=Journal(tmp_path / "j.jsonl"))
    assert not report.passed and report.restore_seconds is None
    assert report.failure is not None and "differs from the backup in 1 table(s): sales.customer" in report.failure
    (differing,) = [t for t in report.tables if not t.matches]
    assert differing.table == "sales.customer" and differing.restored_rows == differing.expected_rows == 50
    assert "sales.customer: 50 rows, hash" in drill_text.render(report)
    assert report.sandbox and report.sandbox.split('"')[1] not in sandboxes()


def test_an_invariant_broken_on_the_restored_data_fails_the_drill(real_pg: str, tmp_path: Path) -> None:
    store, _ = backup_of(real_pg, tmp_path / "store")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(INVARIANTS)
    code, output = drill_cli("--db", real_pg, "--backup-dir", str(store.directory), "--journal",
                             str(tmp_path / "j.jsonl"), "--policy", str(policy_file))  # fmt: skip
    assert code == 5, output
    assert "invariant 'no customer 7' broken on the restored data: 1 row(s)" in output, output
    assert "PASS  customers have names" in output and "SKIP  customers are not deleted" in output, output
    assert "id=7, name=customer 7" in output, output
    (record,) = Journal(tmp_path / "j.jsonl").trusted().records
    checks = {check["name"]: check for check in record.fields["invariants"]}
    assert checks["no customer 7"]["passed"] is False and checks["customers are not deleted"]["skipped"] is True
    assert record.fields["restore_seconds"] > 0 and record.fields["mismatched"] == []


def test_a_scoped_backup_skips_invariants_over_tables_it_left_out(real_pg: str, tmp_path: Path) -> None:
    store = BackupStore(tmp_path / "store")
    take_backup(DatabaseUrl.parse(real_pg), store, ["sales.store"], verify=False)
    policy = parse_policy(INVARIANTS + '\n[[invariants]]\nname = "stores have cities"\nkind = "not_null"\n'
                          'table = "sales.store"\ncolumn = "city"\n', "test")  # fmt: skip
    report = drill(DatabaseUrl.parse(real_pg), store, policy)
    assert report.passed, report.reasons
    status = {check.name: (check.passed, check.skipped) for check in report.invariants}
    assert status["customers have names"] == (True, True)  # sales.customer's rows are not in this backup
    assert status["stores have cities"] == (True, False)
    # the SQL one reads sales.customer, whose rows are not in this backup: skipped, never judged on an empty table
    assert status["no customer 7"] == (True, True)
    (skipped,) = [check for check in report.invariants if check.name == "no customer 7"]
    assert "sales.customer" in skipped.detail and "not in this scoped backup" in skipped.detail
    assert any("scoped backup" in note for note in report.notes)


def test_the_newest_full_backup_is_drilled_not_a_newer_table_scoped_one(real_pg: str, tmp_path: Path) -> None:
    """A run's backup holds the tables it wrote: drilling it would time the restore of a few tables and call
    minutes of changes the RPO, while a recovery of the database would come from the last full backup."""
    store, full = backup_of(real_pg, tmp_path / "store")
    scoped = take_backup(DatabaseUrl.parse(real_pg), store, ["sales.store"], verify=False)
    report = drill(DatabaseUrl.parse(real_pg), store, load_policy(None))
    assert report.backup_id == full.id and report.scope == "full" and report.passed, report.reasons
    assert any(scoped.id in note and "passed over" in note for note in report.notes), report.notes
    assert drill(None, store, load_policy(None), backup_id=scoped.id).scope == "tables"  # chosen by hand: drilled
    only_scoped = BackupStore(tmp_path / "scoped")
    take_backup(DatabaseUrl.parse(real_pg), only_scoped, ["sales.store"], verify=False)
    report = drill(DatabaseUrl.parse(real_pg), only_scoped, load_policy(None))
    assert report.scope == "tables" and any("no full backup" in note for note in report.notes), report.notes


def test_an_interrupted_drill_removes_its_sandbox_and_journals_nothing(real_pg: str, tmp_path: Path) -> None:
    store, _ = backup_of(real_pg, tmp_path / "store")
    restoring: list[str] = []

    def interrupt_while_hashing(message: str) -> None:
        if message.startswith("restoring"):
            restoring.append(message.split('"')[1])
        if message.startswith("counting and hashing"):
            assert restoring[0] in sandboxes()  # the restored sandbox exists right now
            raise KeyboardInterrupt

    journal = Journal(tmp_path / "j.jsonl")
    with pytest.raises(KeyboardInterrupt):
        drill(DatabaseUrl.parse(real_pg), store, load_policy(None), journal=journal, progress=interrupt_while_hashing)
    assert restoring and restoring[0] not in sandboxes()
    assert journal.verify().records == ()


def test_renderers_show_the_same_drill(real_pg: str, tmp_path: Path) -> None:
    store, manifest = backup_of(real_pg, tmp_path / "store")
    report = drill(DatabaseUrl.parse(real_pg), store, parse_policy(INVARIANTS, "test"))
    assert not report.passed
    markdown = drill_markdown.render(report)
    assert markdown.startswith("## dbguard drill: FAILED\n\n- invariant 'no customer 7' broken")
    assert "| **RTO** | " in markdown and "| **RPO** | " in markdown
    assert "| `Kundendienst.Fälle` | 30 | 30 | equal |" in markdown
    assert "| no customer 7 | FAIL | 1 row(s) returned by the invariant's query |" in markdown
    body = json.loads(drill_json.render(report))
    assert body["schema_version"] == 1 and body["kind"] == "drill" and body["verdict"] == "failed"
    assert body["restored"] is True and body["failure"] is None and body["rto_seconds"] > 0
    assert [c["status"] for c in body["invariants"]] == ["pass", "fail", "skipped"]
    assert body["invariants"][1]["columns"] == ["id", "name"] and body["invariants"][1]["sample"] == [[7, "customer 7"]]
    assert len(body["tables"]) == len(manifest.tables) and body["run_id"] is None
    text = drill_text.render(report)
    assert text.startswith(f"drill FAILED: backup {manifest.id}, 1 reason(s)\n")
    assert "  RPO " in text and "  RTO " in text


def sqlite_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER NOT NULL);"
                       "INSERT INTO stock VALUES ('a', 1), ('b', 2), ('ä', 3);")  # fmt: skip
    conn.commit()
    conn.close()
    return path


def test_a_sqlite_drill_restores_to_a_scratch_file(tmp_path: Path) -> None:
    database = sqlite_db(tmp_path / "shop.db")
    store, manifest = backup_of(f"sqlite:///{database}", tmp_path / "store")
    original = database.read_bytes()
    policy = parse_policy('[[invariants]]\nname = "qty never negative"\nsql = "SELECT * FROM stock WHERE qty < 0"\n',
                          "test")  # fmt: skip
    journal = Journal(tmp_path / "j.jsonl")
    report = drill(DatabaseUrl.parse(f"sqlite:///{database}"), store, policy, journal=journal)
    assert report.passed and report.restore_seconds is not None and report.restore_seconds > 0
    assert [(t.table, t.restored_rows) for t in report.tables] == [("stock", 3)]
    assert report.invariants[0].passed and not report.invariants[0].skipped
    scratch = Path(report.sandbox.removeprefix("scratch file "))
    assert not scratch.exists() and not scratch.parent.exists()
    assert database.read_bytes() == original
    flip_one_byte(store.directory / manifest.dump_file)
    failed = drill(DatabaseUrl.parse(f"sqlite:///{database}"), store, policy, journal=journal)
    assert not failed.passed and failed.failure is not None and "sha256" in failed.failure
    assert [r.fields["verdict"] for r in journal.trusted().records] == ["PASSED", "FAILED"]


def test_an_invariant_that_cannot_be_evaluated_fails_the_drill_without_blaming_the_backup(tmp_path: Path) -> None:
    database = sqlite_db(tmp_path / "shop.db")
    store, _ = backup_of(f"sqlite:///{database}", tmp_path / "store")
    policy = parse_policy('[[invariants]]\nname = "typo"\nsql = "SELECT * FROM stock WHERE quantity < 0"\n',
                          "test")  # fmt: skip
    report = drill(DatabaseUrl.parse(f"sqlite:///{database}"), store, policy)
    assert report.restored and not report.passed  # fail closed: an invariant not checked is no pass
    (reason,) = report.reasons
    assert reason.startswith("invariant 'typo' could not be evaluated on the restored data") and "quantity" in reason


def test_sqlite_files_of_one_relative_name_in_two_directories_are_two_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sqlite:///app.db` backed up in a/ and in b/ into one store: from a/, drill and verify must see a/'s
    backups only (a manifest that recorded the relative path named b/'s file from a/, and the newer one won)."""
    store, manifests = BackupStore(tmp_path / "store"), {}
    for name, rows in (("a", 1), ("b", 2)):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        with closing(sqlite3.connect("app.db")) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(rows)])
            conn.commit()
        manifests[name] = take_backup(DatabaseUrl.parse("sqlite:///app.db"), store, None)
    assert manifests["a"].target == f"sqlite:///{(tmp_path / 'a' / 'app.db').resolve()}"
    monkeypatch.chdir(tmp_path / "a")
    report = drill(DatabaseUrl.parse("sqlite:///app.db"), store, load_policy(None))
    assert report.backup_id == manifests["a"].id, report.backup_id
    assert [(t.table, t.restored_rows) for t in report.tables] == [("t", 1)]
    freshness = backup_freshness(store, DatabaseUrl.parse("sqlite:///app.db"), 3600)
    assert freshness.newest_verified_id == manifests["a"].id


def test_backup_verify_all_reports_every_backup_and_fails_on_one_bad(real_pg: str, tmp_path: Path) -> None:
    store, good = backup_of(real_pg, tmp_path / "store")
    _, bad = backup_of(real_pg, tmp_path / "store")
    flip_one_byte(store.directory / bad.dump_file)
    database = sqlite_db(tmp_path / "shop.db")
    _, lite = backup_of(f"sqlite:///{database}", tmp_path / "store")
    (store.directory / lite.dump_file).unlink()
    code, output = cli("backup", "verify", "--all", "--backup-dir", str(store.directory))
    assert code == 5, output
    rows = {line.split()[0]: line.split()[1] for line in output.splitlines() if line[:4].isdigit()}
    assert rows == {good.id: VERIFIED, bad.id: FAILED, lite.id: FAILED}, output
    assert "sha256 does not match" in output and "is missing" in output, output
    assert "[3/3] verifying" in output and "2 of 3 backup(s) did not verify" in output, output
    assert store.load(good.id).verification.status == VERIFIED
    assert store.load(bad.id).verification.status == FAILED
    code, output = cli("backup", "verify", good.id, "--all", "--backup-dir", str(store.directory))
    assert code == 2 and "a backup id or --all" in output, output
    code, output = cli("backup", "verify", "--all", "--backup-dir", str(tmp_path / "none"))
    assert code == 5 and "no backups in" in output, output


def test_no_password_reaches_the_report_the_journal_or_an_error(real_pg: str, tmp_path: Path) -> None:
    secret_url = with_password(real_pg)
    store = BackupStore(tmp_path / "store")
    take_backup(DatabaseUrl.parse(secret_url), store, verify=False)
    journal = tmp_path / "j.jsonl"
    for output_format in ("text", "markdown", "json"):
        code, output = drill_cli("--db", secret_url, "--backup-dir", str(store.directory), "--journal", str(journal),
                                 "--format", output_format)  # fmt: skip
        assert code == 0 and SECRET not in output, output
    code, output = drill_cli("--db", with_password(ADMIN_URL), "--backup-dir", str(store.directory), "--journal",
                             str(journal))  # fmt: skip
    assert code == 5 and "no backup of" in output and SECRET not in output, output
    assert SECRET not in journal.read_text() and len(Journal(journal).trusted().records) == 3
