"""Backup ids a DBA can use: `backup list` prints them whole, one line per backup, and `backup verify` and
`restore` take any unique start of one (a timestamp, with dashes or colons, or an id cut with "…"); an
ambiguous start is exit 2 naming the candidates. Real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from dbguard.backup.store import BackupStore, Manifest
from dbguard.backup.take import take_backup
from dbguard.cli import app
from dbguard.errors import UsageError
from dbguard.targets.url import DatabaseUrl
from tests.test_backup import cli, runner


def sqlite_backup(path: Path, store: Path, rows: int) -> Manifest:
    """A backup of a new SQLite file holding `rows` rows: backups made here differ by their content."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL)")
        conn.executemany("INSERT INTO readings (value) VALUES (?)", [(i * 0.5,) for i in range(rows)])
        conn.commit()
    return take_backup(DatabaseUrl.parse(f"sqlite:///{path}"), BackupStore(store), None)


def row_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])


@pytest.fixture
def two_backups(tmp_path: Path) -> tuple[Path, Manifest, Manifest]:
    store = tmp_path / "backups"
    return store, sqlite_backup(tmp_path / "first.db", store, 3), sqlite_backup(tmp_path / "second.db", store, 5)


def timestamp(manifest: Manifest) -> str:
    """The id's timestamp part, e.g. 2026-11-27T10-00-00.123456."""
    return manifest.id.split("Z-")[0]


def test_a_timestamp_or_a_cut_id_names_one_backup_in_verify_and_restore(
    two_backups: tuple[Path, Manifest, Manifest], tmp_path: Path
) -> None:
    store, first, second = two_backups
    day, time = timestamp(first).split("T")
    as_written = f"{day}T{time.replace('-', ':')}"  # 2026-11-27T10:00:00.123456, as a timestamp is usually written
    for spelled, meant in ((timestamp(second), second), (as_written, first), (first.id[:-2] + "…", first)):
        code, output = cli("backup", "verify", spelled, "--backup-dir", str(store))
        assert code == 0, (spelled, output)
        assert output.startswith(f"backup {meant.id}: VERIFIED"), (spelled, output)

    copy = tmp_path / "restored.db"
    code, output = cli("restore", as_written, "--backup-dir", str(store), "--into", f"sqlite:///{copy}")
    assert code == 0, output
    assert f"backup {first.id} restored into" in output
    assert row_count(copy) == 3


def test_an_ambiguous_start_is_exit_2_and_names_every_candidate(
    two_backups: tuple[Path, Manifest, Manifest], tmp_path: Path
) -> None:
    store, first, second = two_backups
    common = first.id[:4]  # the year
    copy = tmp_path / "restored.db"

    for args in (("backup", "verify", common), ("restore", common, "--into", f"sqlite:///{copy}")):
        code, output = cli(*args, "--backup-dir", str(store))
        assert code == 2, (args, output)
        assert f"{common} is the start of 2 backup ids in {store}: {second.id}, {first.id}; give more of the id" in (
            output
        )
        assert "Traceback" not in output
    assert not copy.exists()


@pytest.mark.parametrize(
    ("spelled", "message"),
    [
        ("1999-01-01", "no backup 1999-01-01 in"),
        ("../backups", "'../backups' is not a backup id"),
        ("*", "'*' is not a backup id"),
        ("…", "'…' is not a backup id"),
    ],
)
def test_an_unknown_or_malformed_id_is_exit_2(
    two_backups: tuple[Path, Manifest, Manifest], spelled: str, message: str
) -> None:
    store, _, _ = two_backups
    code, output = cli("backup", "verify", spelled, "--backup-dir", str(store))
    assert code == 2, output
    assert message in output and "(see `dbguard backup list`)" in output


def test_a_whole_id_wins_over_the_longer_ids_it_starts(two_backups: tuple[Path, Manifest, Manifest]) -> None:
    directory, first, _ = two_backups
    store = BackupStore(directory)
    longer = replace(first, id=f"{first.id}-copy")  # a second manifest for the same dump, under a longer id
    store.save(longer)
    assert store.resolve(first.id) == first.id
    assert store.resolve(f"{first.id}-c") == longer.id
    with pytest.raises(UsageError, match="is the start of 2 backup ids"):
        store.resolve(first.id[:-1])


def test_list_prints_whole_ids_one_line_each_however_long_a_cell_or_narrow_the_terminal(
    two_backups: tuple[Path, Manifest, Manifest], tmp_path: Path
) -> None:
    store, first, second = two_backups
    deep = tmp_path.joinpath(*["d" * 200] * 5)  # an unreadable manifest's reason names its path: 1000+ characters
    deep.mkdir(parents=True)
    for manifest in (first, second):
        for name in (manifest.dump_file, f"{manifest.id}.json"):
            (deep / name).write_bytes((store / name).read_bytes())
    broken = "2026-01-01T00-00-00.000000Z-broken"
    (deep / f"{broken}.json").write_text("{}")

    result = runner.invoke(app, ["backup", "list", "--backup-dir", str(deep)], env={"COLUMNS": "40"})

    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["id", second.id, first.id, broken]
    assert lines[3].split()[1] == "UNREADABLE" and str(deep) in lines[3]
    assert "…" not in result.stdout
    assert all(line == line.rstrip() for line in lines)


def test_a_postgres_backup_is_verified_by_the_start_of_its_id(warehouse_pg: str, tmp_path: Path) -> None:
    manifest = take_backup(DatabaseUrl.parse(warehouse_pg), BackupStore(tmp_path), ["stock"], verify=False)

    code, output = cli("backup", "verify", timestamp(manifest), "--backup-dir", str(tmp_path))

    assert code == 0, output
    assert output.startswith(f"backup {manifest.id}: VERIFIED")
