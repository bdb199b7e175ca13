"""The journal file: JSON Lines, appended under an exclusive lock, fsynced, hash-chained.

Writers take `flock(LOCK_EX)` on the file, read its last record, and append the next one with one
`write`, then `fsync` (and `fsync` the directory when they created the file). A write that fails
half-way (a full disk) is cut back off before the lock is released. Readers take `LOCK_SH`, so they
never see a record being written. flock is advisory and local: the journal belongs on a local disk.

Appending fails closed: after a torn last line (a crash mid-write) or onto a last record that does
not match its own sha256, nothing is appended until a person has looked (`dbguard journal repair`
sets a torn line aside; an edited journal is evidence, to be moved aside so a new one starts).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from dbguard.backup.store import fsync_directory
from dbguard.config import Config
from dbguard.errors import JournalFailure
from dbguard.journal.entries import Entry, Repair, Subject, payload
from dbguard.journal.record import GENESIS, Record
from dbguard.journal.verify import Breakage, Verification, verify_lines

DEFAULT_JOURNAL_PATH = ".dbguard/journal.jsonl"
_TAIL_BLOCK = 1 << 16


def journal_path(option: Path | None, config: Config) -> Path:
    """`--journal` (or DBGUARD_JOURNAL, which the CLI reads into the option), then `journal_path` in the
    config file, then `.dbguard/journal.jsonl`."""
    return option or Path(config.journal_path or DEFAULT_JOURNAL_PATH)


def new_run_id() -> str:
    """16 random hex digits: any few leading ones usually name a run (`journal show 3f9a`)."""
    return secrets.token_hex(8)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, run_id: str, entry: Entry) -> Record:
        """Seal `entry` as the next record of run `run_id`, write it and fsync it. Safe across processes.

        Raises JournalFailure when the journal cannot be written, or its tail is torn or edited; then
        nothing was appended.
        """
        if not run_id:
            raise ValueError("a record needs a run id")
        fields = payload(entry)
        with self._locked(fcntl.LOCK_EX) as fd:
            return self._append_locked(fd, run_id, entry.kind, fields)

    def ensure_writable(self) -> None:
        """JournalFailure now, before anything runs, when a record could not be appended later: its folder
        cannot be made, or it or the file is not writable."""
        try:
            _make_directories(self.path.parent)
        except OSError as error:
            raise JournalFailure(f"cannot create the journal's folder {self.path.parent}: {error.strerror}") from None
        target = self.path if self.path.exists() else self.path.parent
        if not os.access(target, os.W_OK):
            raise JournalFailure(f"cannot write the journal {self.path}: permission denied")

    def verify(self, expect_head: str | None = None) -> Verification:
        """Every record and every problem (see `verify_lines`). A missing journal is an empty one."""
        return verify_lines(self._lines(), expect_head)

    def trusted(self) -> Verification:
        """The journal, verified; raises JournalFailure naming the first problem if it does not verify."""
        verification = self.verify()
        if not verification.ok:
            first = verification.problems[0]
            more = f" (and {len(verification.problems) - 1} more)" if len(verification.problems) > 1 else ""
            raise JournalFailure(f"journal {self.path} does not verify: {first}{more}; see `dbguard journal verify`")
        return verification

    def repair(self) -> tuple[Record, Path] | None:
        """Set a torn last line aside: its bytes go to `<journal>.torn-<UTC time>`, the file is cut back
        to the last whole record, and a `repair` record states what was removed. None if the journal
        verifies. Raises JournalFailure if anything else is wrong: only a torn tail is repaired."""
        if not self.path.exists():
            return None
        with self._locked(fcntl.LOCK_EX) as fd:
            lines = _split(_read_all(fd))
            verification = verify_lines(lines)
            if verification.ok:
                return None
            others = [p for p in verification.problems if p.breakage is not Breakage.TORN]
            if others:
                raise JournalFailure(f"journal {self.path}: {others[0]}; repair only sets a torn last line aside, "
                                     "see `dbguard journal verify`")  # fmt: skip
            torn = lines[-1]
            saved = self.path.with_name(f"{self.path.name}.torn-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}")
            try:
                _write_new(saved, torn)
                os.ftruncate(fd, os.fstat(fd).st_size - len(torn))
                os.fsync(fd)
            except OSError as error:
                raise JournalFailure(f"cannot repair journal {self.path}: {error.strerror}") from None
            entry = Repair(**Subject.operator(), reason="torn last line (a write cut short)",
                           removed_bytes=len(torn), removed_sha256=hashlib.sha256(torn).hexdigest(),
                           saved_to=str(saved))  # fmt: skip
            return self._append_locked(fd, new_run_id(), entry.kind, payload(entry)), saved

    def _append_locked(self, fd: int, run_id: str, kind: str, fields: dict[str, object]) -> Record:
        size = os.fstat(fd).st_size
        last = self._last_record(fd, size)
        try:
            record = Record.seal(last.seq + 1 if last else 1, run_id, kind, last.sha256 if last else GENESIS, fields)
        except ValueError as error:
            raise JournalFailure(f"cannot journal this {kind} record: {error}") from None
        try:
            _write_all(fd, record.to_line())
            os.fsync(fd)
        except OSError as error:
            try:
                os.ftruncate(fd, size)  # a half-written record would be a torn tail: cut it off
                os.fsync(fd)
                after = "nothing was appended"
            except OSError:
                after = "it may now end in a torn line"
            raise JournalFailure(f"cannot append to journal {self.path}: {error.strerror}; {after}") from None
        return record

    def _last_record(self, fd: int, size: int) -> Record | None:
        if size == 0:
            return None
        tail = _tail(fd, size)
        if not tail.endswith(b"\n"):
            raise JournalFailure(f"journal {self.path} ends in a torn record ({len(tail)} bytes with no newline, "
                                 "a write cut short); nothing was appended: `dbguard journal repair` sets it "
                                 "aside")  # fmt: skip
        try:
            last = Record.parse(tail)
        except ValueError as error:
            raise JournalFailure(f"journal {self.path}: its last line is not a journal record ({error}); "
                                 "nothing was appended: see `dbguard journal verify`") from None  # fmt: skip
        if not last.intact(tail):
            raise JournalFailure(f"journal {self.path}: its last record (seq {last.seq}) was edited; nothing was "
                                 "appended: see `dbguard journal verify`")  # fmt: skip
        return last

    def _lines(self) -> list[bytes]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise JournalFailure(f"cannot read journal {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a writer's record is read whole or not at all
            return _split(_read_all(fd))
        except OSError as error:
            raise JournalFailure(f"cannot read journal {self.path}: {error.strerror}") from None
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self, mode: int) -> Iterator[int]:
        try:
            _make_directories(self.path.parent)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
                fsync_directory(self.path.parent)  # the new file's name is durable, not only its content
            except FileExistsError:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except OSError as error:
            raise JournalFailure(f"cannot open journal {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, mode)
            yield fd
        finally:
            os.close(fd)  # releases the lock


def _make_directories(directory: Path) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        fsync_directory(folder.parent)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, _TAIL_BLOCK * 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _split(data: bytes) -> list[bytes]:
    """Lines with their newline; a last line without one is kept as it is (a torn write)."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _tail(fd: int, size: int) -> bytes:
    """The last line of the file (with its newline, if it has one), read backwards block by block."""
    end, data = size, b""
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        data = os.pread(fd, end - start, start) + data
        end = start
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0:
            return data[cut + 1 :]
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)
