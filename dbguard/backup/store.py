"""The backup store: a directory with, per backup, a dump file and a JSON manifest.

Every file is written to a temporary name, fsynced, renamed into place, and the directory fsynced: a
crash never leaves a file that looks complete. A dump is only a backup once its manifest is written.
Each manifest is signed with a key kept outside the store (see signing.py), so an edited or forged
manifest is refused rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dbguard.backup.signing import ManifestKey, default_key_path
from dbguard.errors import BackupFailure, UsageError

MANIFEST_VERSION = 2  # 2: signed with a key (HMAC-SHA256); 1 carried a plain sha256 of itself
VERIFIED, FAILED, UNVERIFIED = "VERIFIED", "FAILED", "UNVERIFIED"
QUICK_METHOD = "sha256 and size, pg_restore --list (quick: no restore test)"  # what `run --quick-verify` checks
MISSING, SIZE_MISMATCH = "MISSING", "SIZE MISMATCH"  # what `backup list` shows when the dump file is wrong
_ID = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}(\.[0-9]+)?Z-[A-Za-z0-9_.-]+$")
_ID_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+$")  # what an id is made of: no glob, path or space characters
_SHOWN_CANDIDATES = 10  # ids an ambiguous prefix names
_PARTIAL = re.compile(
    r"^\.(?P<final>.+)\.partial-(?P<created>[0-9]{8}T[0-9]{6})-(?P<pid>[0-9]+)-(?P<host>[A-Za-z0-9._-]+)$"
)
_PARTIAL_TIME = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class TableImage:
    rows: int
    hash: str


@dataclass(frozen=True)
class Verification:
    status: str  # VERIFIED, FAILED or UNVERIFIED
    at: str | None = None
    method: str | None = None  # what was checked, e.g. "sha256, pg_restore --list, restore into a sandbox"
    reason: str | None = None  # why it FAILED

    @property
    def shown(self) -> str:
        """The status as people read it: VERIFIED by `run --quick-verify` (no restore test) says so."""
        return f"{self.status} (quick: no restore test)" if self.method == QUICK_METHOD else self.status


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    dialect: str
    target: str  # URL with the password masked
    server_version: str
    tools: dict[str, str]  # dbguard and pg_dump versions
    tables: dict[str, TableImage]  # per table: row count and order-independent content hash
    dump_file: str  # name inside the store
    dump_sha256: str
    dump_bytes: int
    snapshot: str | None  # pg_export_snapshot() id; None on SQLite
    scope: str  # "full" or "tables"
    locale: dict[str, str] = field(default_factory=dict)  # encoding, lc_collate, lc_ctype (PostgreSQL)
    verification: Verification = field(default_factory=lambda: Verification(UNVERIFIED))
    # partitioned table -> its leaf partitions, for the partitioned tables backed up: their rows are in
    # `tables` under the partitions' names (each row once), and `restore --tables parent` takes them all
    partitions: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self, key: ManifestKey) -> str:
        body = key.sign({"manifest_version": MANIFEST_VERSION, **asdict(self)})
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str, key: ManifestKey) -> Manifest:
        """The manifest in `text`, once `key` proves it genuine (BackupFailure otherwise)."""
        try:
            body = json.loads(text)
            if not isinstance(body, dict):
                raise TypeError("not a JSON object")
            body = key.check(body, where)
            version = body.pop("manifest_version")
            if version != MANIFEST_VERSION:
                raise BackupFailure(f"manifest {where} is version {version}; this dbguard reads {MANIFEST_VERSION}")
            body["tables"] = {name: TableImage(**image) for name, image in body["tables"].items()}
            body["verification"] = Verification(**body["verification"])
            return cls(**body)
        except BackupFailure:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # AttributeError: JSON, not an object
            raise BackupFailure(f"manifest {where} is not a dbguard manifest: {error}") from None


def new_backup_id(label: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[:60] or "backup"
    return f"{stamp}-{clean}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BackupStore:
    """The backups in `directory`, their manifests signed with the key at `key_path` (default: see
    signing.default_key_path), which must lie outside the store."""

    def __init__(self, directory: Path, key_path: Path | None = None) -> None:
        self.directory = directory
        self.key = ManifestKey(key_path or default_key_path())
        if self.key.path.resolve().is_relative_to(directory.resolve()):
            raise UsageError(f"the manifest key {self.key.path} is inside the backup store {directory}: keep it "
                             "elsewhere, where whoever can write the store cannot read it")  # fmt: skip

    def ensure_writable(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise BackupFailure(f"backup directory {self.directory} is not writable: {error.strerror}") from None

    def dump_path(self, backup_id: str, suffix: str) -> Path:
        return self.directory / f"{backup_id}{suffix}"

    def manifest_path(self, backup_id: str) -> Path:
        return self.directory / f"{backup_id}.json"

    def save(self, manifest: Manifest) -> None:
        atomic_write(self.manifest_path(manifest.id), manifest.to_json(self.key).encode())

    def resolve(self, spelled: str) -> str:
        """The id of the one backup whose id is `spelled` or starts with it. A timestamp may be written with
        colons (2026-11-27T10:00), and an id cut with "…" counts as its prefix. UsageError (exit 2) when no
        backup's id starts with it, or several do (they are named)."""
        prefix = spelled.strip().removesuffix("…").replace(":", "-")
        if not _ID_PREFIX.match(prefix):
            raise UsageError(f"{spelled!r} is not a backup id (see `dbguard backup list`)")
        if _ID.match(prefix) and self.manifest_path(prefix).is_file():
            return prefix  # a whole id wins over the longer ids it is a prefix of
        found = sorted((path.stem for path in self.directory.glob("*.json") if path.stem.startswith(prefix)
                        and _ID.match(path.stem)), reverse=True) if self.directory.is_dir() else []  # fmt: skip
        if not found:
            raise UsageError(f"no backup {spelled} in {self.directory} (see `dbguard backup list`)")
        if len(found) > 1:
            more = len(found) - _SHOWN_CANDIDATES
            shown = ", ".join(found[:_SHOWN_CANDIDATES]) + (f" and {more} more" if more > 0 else "")
            raise UsageError(f"{spelled} is the start of {len(found)} backup ids in {self.directory}: {shown}; "
                             "give more of the id")  # fmt: skip
        return found[0]

    def load(self, backup_id: str) -> Manifest:
        if not _ID.match(backup_id):
            raise UsageError(f"{backup_id!r} is not a backup id (see `dbguard backup list`)")
        path = self.manifest_path(backup_id)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            raise UsageError(f"no backup {backup_id} in {self.directory} (see `dbguard backup list`)") from None
        except (OSError, UnicodeDecodeError) as error:
            raise BackupFailure(f"cannot read manifest {path}: {error}") from None
        manifest = Manifest.from_json(text, str(path), self.key)
        if manifest.id != backup_id:
            raise BackupFailure(f"manifest {path} is the manifest of another backup, {manifest.id}")
        return manifest

    def dump_problem(self, manifest: Manifest) -> tuple[str, str] | None:
        """What the dump file's presence and size alone show to be wrong, as (MISSING or SIZE_MISMATCH, a
        reason); None when they match the manifest. Cheap: checking the content is `verify`'s job."""
        dump = self.directory / manifest.dump_file
        try:
            size = dump.stat().st_size
        except FileNotFoundError:
            return MISSING, f"the dump file {dump} is missing"
        if size != manifest.dump_bytes:
            return SIZE_MISMATCH, (f"the dump file is {size} bytes, the manifest says {manifest.dump_bytes}: "
                                   "truncated or changed")  # fmt: skip
        return None

    def list(self) -> list[Manifest | tuple[str, str]]:
        """Every backup, newest first; an unreadable manifest appears as (id, the problem)."""
        if not self.directory.is_dir():
            return []
        out: list[Manifest | tuple[str, str]] = []
        for path in sorted(self.directory.glob("*.json"), reverse=True):
            try:
                out.append(self.load(path.stem))
            except (BackupFailure, UsageError) as error:
                out.append((path.stem, str(error)))
        return out


@dataclass(frozen=True)
class PartialFile:
    """A file `staged()` was writing when its process died: it says when, by which process on which host."""

    path: Path
    created: datetime  # UTC
    pid: int
    host: str  # the creating host's name, as `host_label()` wrote it


def host_label() -> str:
    """This host's name as a partial file's name carries it."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname())[:63] or "_"


def partial_files(directory: Path) -> list[PartialFile]:
    """The half-written files that `staged()` left in the store `directory`, oldest first. Only names
    of the shape staged() gives, around a backup's file name, count."""
    found = []
    for path in directory.glob(".*.partial-*") if directory.is_dir() else ():
        match = _PARTIAL.match(path.name)
        if match and _ID.match(Path(match["final"]).stem):
            created = datetime.strptime(match["created"], _PARTIAL_TIME).replace(tzinfo=UTC)
            found.append(PartialFile(path, created, int(match["pid"]), match["host"]))
    return sorted(found, key=lambda partial: partial.created)


@contextmanager
def kept_only_with_manifest(dump: Path) -> Iterator[None]:
    """Remove `dump` if the block (which renames it into place, then writes its manifest) fails: a full disk
    while the manifest is written, a lost connection, Ctrl-C. A dump without its manifest is no backup."""
    try:
        yield
    except BaseException:
        dump.unlink(missing_ok=True)
        raise


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A temporary path to write to; renamed to `final` (fsynced) only if the block succeeds. Its name,
    `.<final>.partial-<YYYYMMDDTHHMMSS>-<pid>-<host>`, tells `dbguard cleanup` whose it is after a crash."""
    stamp = datetime.now(UTC).strftime(_PARTIAL_TIME)
    temporary = final.with_name(f".{final.name}.partial-{stamp}-{os.getpid()}-{host_label()}")
    try:
        yield temporary
        fsync_file(temporary)
        os.replace(temporary, final)
        fsync_directory(final.parent)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes) -> None:
    try:
        with staged(path) as temporary:
            temporary.write_bytes(data)
    except OSError as error:
        raise BackupFailure(f"cannot write {path}: {error.strerror}") from None


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
