"""Backup manifests are signed (HMAC-SHA256) with a key kept outside the store: an edited manifest, even one
whose checksum was recomputed, a manifest signed with another key and an unsigned one are all refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from dbguard.backup.store import VERIFIED, BackupStore, Manifest
from tests.test_backup import cli, only_manifest
from tests.test_backup_faults import take_verified


@pytest.fixture
def verified(warehouse_pg: str, tmp_path: Path) -> tuple[BackupStore, Manifest]:
    return take_verified(warehouse_pg, tmp_path)


def manifest_body(store: BackupStore, manifest: Manifest) -> dict[str, Any]:
    return dict(json.loads(store.manifest_path(manifest.id).read_text()))


def write_body(store: BackupStore, manifest: Manifest, body: dict[str, Any]) -> None:
    store.manifest_path(manifest.id).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True).encode()


def new_key(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


def refused_everywhere(store: BackupStore, manifest: Manifest, reason: str, *key_option: str) -> None:
    """`verify` and `restore` exit 5 with the reason; `list` shows the backup UNREADABLE, never VERIFIED."""
    where = ("--backup-dir", str(store.directory), *key_option)
    code, output = cli("backup", "verify", manifest.id, *where)
    assert code == 5 and reason in output, output
    code, output = cli("restore", manifest.id, "--into", "sqlite:////nonexistent/never.db", *where)
    assert code == 5 and reason in output, output
    code, listing = cli("backup", "list", *where)
    assert code == 0, listing
    (line,) = [line for line in listing.splitlines() if line.startswith(manifest.id)]
    assert "UNREADABLE" in line and reason in line and VERIFIED not in line, line


def test_the_key_is_made_on_first_use_with_mode_0600_and_never_shown(
    warehouse_pg: str, tmp_path: Path, manifest_key: Path
) -> None:
    assert not manifest_key.exists()
    code, output = cli("backup", "--db", warehouse_pg, "--backup-dir", str(tmp_path / "backups"))
    assert code == 0, output
    assert stat.S_IMODE(manifest_key.stat().st_mode) == 0o600
    secret = manifest_key.read_text().strip()
    assert len(bytes.fromhex(secret)) == 32
    store = BackupStore(tmp_path / "backups")
    first = only_manifest(store)
    body = manifest_body(store, first)
    assert body["manifest_version"] == 2 and "manifest_sha256" not in body
    assert (
        body["manifest_hmac_sha256"]
        == hmac.new(
            bytes.fromhex(secret),
            canonical({k: v for k, v in body.items() if k != "manifest_hmac_sha256"}),
            hashlib.sha256,
        ).hexdigest()
    )

    code, again = cli("backup", "--db", warehouse_pg, "--backup-dir", str(tmp_path / "backups"))
    assert code == 0, again
    assert manifest_key.read_text().strip() == secret  # made once, then reused
    assert {manifest_body(store, m)["manifest_key_id"] for m in store.list() if isinstance(m, Manifest)} == {
        body["manifest_key_id"]
    }
    code, listing = cli("backup", "list", "--backup-dir", str(tmp_path / "backups"))
    for text in (output, again, listing, *(p.read_text(errors="replace") for p in store.directory.iterdir())):
        assert secret not in text and secret.upper() not in text


def test_an_edited_manifest_with_a_recomputed_checksum_is_refused(
    verified: tuple[BackupStore, Manifest],
) -> None:
    """What someone who can write the store but not read the key can do: edit, then recompute a plain
    sha256, or an HMAC with a key of their own, keeping the key id."""
    store, manifest = verified
    body = manifest_body(store, manifest)
    body["tables"]["public.stock"]["rows"] += 1
    del body["manifest_hmac_sha256"]
    for forged in (hashlib.sha256(canonical(body)).hexdigest(),
                   hmac.new(secrets.token_bytes(32), canonical(body), hashlib.sha256).hexdigest()):  # fmt: skip
        write_body(store, manifest, {**body, "manifest_hmac_sha256": forged})
        refused_everywhere(store, manifest, "was edited after it was written (its signature does not match)")


def test_a_manifest_signed_with_another_key_is_refused(
    verified: tuple[BackupStore, Manifest], tmp_path_factory: pytest.TempPathFactory
) -> None:
    store, manifest = verified
    other = new_key(tmp_path_factory.mktemp("elsewhere") / "other.key")
    refused_everywhere(store, manifest, "was signed with another key", "--manifest-key", str(other))
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 0 and f"backup {manifest.id}: VERIFIED" in output, output  # with its own key, it is genuine


def test_an_unsigned_manifest_of_an_older_dbguard_is_refused(
    verified: tuple[BackupStore, Manifest],
) -> None:
    """Version 1 manifests carried only a sha256 of themselves, which anyone who edits one can recompute:
    they are not trusted (fail closed)."""
    store, manifest = verified
    body = manifest_body(store, manifest)
    del body["manifest_hmac_sha256"], body["manifest_key_id"]
    body["manifest_version"] = 1
    write_body(store, manifest, {**body, "manifest_sha256": hashlib.sha256(canonical(body)).hexdigest()})
    refused_everywhere(store, manifest, "is not signed, so it is not trusted")


def test_without_the_key_nothing_is_trusted(verified: tuple[BackupStore, Manifest], manifest_key: Path) -> None:
    store, manifest = verified
    manifest_key.unlink()
    refused_everywhere(store, manifest, f"there is no manifest key at {manifest_key}")
    assert not manifest_key.exists()  # only signing makes a key; reading never does


def test_a_key_others_can_read_is_refused(verified: tuple[BackupStore, Manifest], manifest_key: Path) -> None:
    store, manifest = verified
    manifest_key.chmod(0o644)
    code, output = cli("backup", "verify", manifest.id, "--backup-dir", str(store.directory))
    assert code == 2, output
    assert f"the manifest key {manifest_key} can be read by other users (mode 0644): chmod 600" in output


def test_a_key_inside_the_store_is_refused(warehouse_pg: str, tmp_path: Path) -> None:
    store_dir = tmp_path / "backups"
    key = store_dir / "keys" / "manifest.key"
    code, output = cli("backup", "--db", warehouse_pg, "--backup-dir", str(store_dir), "--manifest-key", str(key))
    assert code == 2, output
    assert "is inside the backup store" in output
    assert not store_dir.exists()


def test_a_manifest_under_another_backups_name_is_refused(verified: tuple[BackupStore, Manifest]) -> None:
    store, manifest = verified
    other_id = manifest.id.replace("Z-", "Z-other-", 1)
    shutil.copy(store.manifest_path(manifest.id), store.manifest_path(other_id))
    code, output = cli("backup", "verify", other_id, "--backup-dir", str(store.directory))
    assert code == 5 and f"is the manifest of another backup, {manifest.id}" in output, output


def test_the_config_file_names_the_key(warehouse_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`manifest_key` in dbguard.toml, relative to the file, when neither the option nor the variable is set."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbguard.toml").write_text('backup_dir = "backups"\nmanifest_key = "../keys/manifest.key"\n')
    monkeypatch.chdir(project)
    monkeypatch.delenv("DBGUARD_MANIFEST_KEY")
    code, output = cli("backup", "--db", f"sqlite:///{warehouse_sqlite}")
    assert code == 0, output
    assert stat.S_IMODE((tmp_path / "keys" / "manifest.key").stat().st_mode) == 0o600
    assert cli("backup", "list")[0] == 0
