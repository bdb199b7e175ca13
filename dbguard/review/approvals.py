"""Sign-offs of a script, bound to its sha256, kept in `<script>.approvals.json` beside it.

`dbguard approve` appends an `Approval` (who, when, the script's sha256, a note, the OS user who recorded
it); `dbguard approvals` lists them; `run` counts those that still match the script's current bytes when the
policy sets `[run] require_approvals`. One changed byte changes the sha256 and voids every earlier sign-off.

Rules that keep the count honest:
- a reviewer counts once, however many times they approved: names are compared case-insensitively after
  their whitespace and Unicode form are normalised ("Ana  Lima" and "ana lima" are one reviewer);
- the author, the OS user running `run`, never counts as a reviewer of their own run;
- a file that cannot be read or trusted (not JSON, a field of the wrong type, an unknown format) is an
  `InputError` (exit 3): it is never read as "no approvals" or as "approved" (fail closed).

The file is a sign-off record, not an access control: whoever can write the script can write this file.
It is rewritten atomically (a temporary file, fsync, rename) under an exclusive flock on the script.

File shape (JSON, UTF-8):
    {"format": "dbguard-approvals", "version": 1, "script": "fix_stock.sql",
     "approvals": [{"reviewer": "Ana Lima", "approved_at": "2026-11-30T00:35:12Z",
                    "script_sha256": "<64 hex>", "note": "rows match the ticket", "recorded_by": "ana"}]}
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbguard.errors import InputError, UsageError
from dbguard.inputs import read_file

FORMAT, VERSION = "dbguard-approvals", 1
SUFFIX = ".approvals.json"
MAX_APPROVALS_BYTES = 1024 * 1024  # thousands of sign-offs; bounds the read of a FIFO or a device
MAX_REVIEWER_CHARS, MAX_NOTE_CHARS = 200, 2000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("reviewer", "approved_at", "script_sha256", "note", "recorded_by")


@dataclass(frozen=True)
class Approval:
    """One sign-off. `approved_at` is UTC ISO-8601 to the second ("2026-11-30T00:35:12Z")."""

    reviewer: str
    approved_at: str
    script_sha256: str
    note: str = ""
    recorded_by: str = ""  # the OS user who ran `dbguard approve`

    @property
    def reviewer_key(self) -> str:
        return reviewer_key(self.reviewer)


@dataclass(frozen=True)
class ApprovalCount:
    """How a script's approvals stand against a requirement, for the author `author` (the OS user running it)."""

    required: int
    script_sha256: str
    counted: tuple[Approval, ...]  # matching, one per distinct reviewer, the author left out (earliest kept)
    matching: tuple[Approval, ...]  # every approval of the current sha256
    stale: int  # approvals of another (earlier) version of the script
    author: str
    author_excluded: bool  # the author had approved the current sha256 and was not counted

    @property
    def met(self) -> bool:
        return len(self.counted) >= self.required

    def summary(self) -> str:
        """One line: "1 of 2 required approvals match sha256 3f2a9c1b0d4e... (Ana Lima); ..."."""
        names = ", ".join(a.reviewer for a in self.counted)
        line = (f"{len(self.counted)} of {self.required} required approval{'s' * (self.required != 1)} match the "
                f"script's sha256 {self.script_sha256[:12]}…" + (f" ({names})" if names else ""))  # fmt: skip
        if self.author_excluded:
            line += f"; {self.author} runs it and does not count as their own reviewer"
        else:
            line += f"; the author ({self.author}, who runs it) does not count"
        if self.stale:
            line += (
                f"; {self.stale} approval of an earlier version no longer counts"
                if self.stale == 1
                else f"; {self.stale} approvals of an earlier version no longer count"
            )
        return line


def approvals_path(script: Path) -> Path:
    """`fix.sql` -> `fix.sql.approvals.json`, beside it."""
    return script.with_name(script.name + SUFFIX)


def reviewer_key(name: str) -> str:
    """What makes two names one reviewer: Unicode compatibility-normalised (NFKC: "é" typed as one character
    or as "e" and an accent is one letter), whitespace runs collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def checked_reviewer(name: str) -> str:
    """The name as recorded (whitespace normalised); UsageError (exit 2) when empty, too long, or holding a
    control or format character (a terminal escape, a bidirectional override)."""
    return _one_line(" ".join(name.split()), "reviewer name", MAX_REVIEWER_CHARS, empty_ok=False)


def checked_note(note: str) -> str:
    return _one_line(note.strip(), "note", MAX_NOTE_CHARS, empty_ok=True)


def _one_line(text: str, what: str, limit: int, *, empty_ok: bool) -> str:
    if not text and not empty_ok:
        raise UsageError(f"the {what} is empty")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        raise UsageError(f"the {what} holds a control character (U+{ord(bad):04X}); give plain text on one line")
    if len(text) > limit:
        raise UsageError(f"the {what} is {len(text)} characters long; at most {limit}")
    return text


def read_approvals(script: Path) -> tuple[Approval, ...]:
    """Every approval recorded for `script`, in the order recorded; () when it has no approvals file.

    InputError (exit 3), naming the file, when it cannot be read or any part of it is not as written by
    `dbguard approve`: a damaged file is refused whole, never half-read."""
    path = approvals_path(script)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_APPROVALS_BYTES + 1)
    except FileNotFoundError:
        return ()
    except OSError as error:
        raise InputError(f"{path}: cannot read the approvals: {error.strerror}") from None
    if len(data) > MAX_APPROVALS_BYTES:
        raise InputError(f"{path}: larger than {MAX_APPROVALS_BYTES // 1024} KiB; not an approvals file")
    try:
        return _parse(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{path}: corrupt approvals file, not JSON ({_first_line(error)}); refusing it") from None
    except (ValueError, UsageError) as error:
        raise InputError(f"{path}: corrupt approvals file: {error}; refusing it") from None


def _parse(document: Any) -> tuple[Approval, ...]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f'not a {FORMAT} document (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise ValueError(f"version {document.get('version')!r}, this dbguard reads version {VERSION}")
    entries = document.get("approvals")
    if not isinstance(entries, list):
        raise ValueError('"approvals" is not a list')
    return tuple(_approval(entry, number) for number, entry in enumerate(entries, 1))


def _approval(entry: Any, number: int) -> Approval:
    where = f"approval #{number}"
    if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
        raise ValueError(f"{where} does not have exactly the fields {', '.join(_FIELDS)}")
    if not all(isinstance(entry[name], str) for name in _FIELDS):
        raise ValueError(f"{where} has a field that is not a string")
    if not _SHA256.fullmatch(entry["script_sha256"]):
        raise ValueError(f"{where}: script_sha256 is not 64 lowercase hex digits")
    try:
        when = datetime.fromisoformat(entry["approved_at"])
    except ValueError:
        raise ValueError(f"{where}: approved_at is not an ISO-8601 time") from None
    if when.utcoffset() is None or when.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        raise ValueError(f"{where}: approved_at is not in UTC")
    if entry["reviewer"] != checked_reviewer(entry["reviewer"]):
        raise ValueError(f"{where}: the reviewer name is not as dbguard records it")
    checked_note(entry["note"])
    _one_line(entry["recorded_by"], "recorded_by", MAX_REVIEWER_CHARS, empty_ok=True)
    return Approval(**{name: entry[name] for name in _FIELDS})


def record_approval(script: Path, reviewer: str, note: str = "", recorded_by: str = "",
                    now: datetime | None = None) -> Approval:  # fmt: skip
    """Append a sign-off of the script's current bytes to its approvals file, atomically, and return it.

    UsageError (exit 2) for a bad reviewer name or note; InputError (exit 3) for a missing or unreadable
    script or a corrupt approvals file (which is left as it is)."""
    name, remark = checked_reviewer(reviewer), checked_note(note)
    recorder = _one_line(recorded_by, "recorded_by", MAX_REVIEWER_CHARS, empty_ok=True)
    read_file(script)  # a clear error for a missing or unreadable script before the lock opens it
    with script.open("rb") as locked:
        fcntl.flock(locked.fileno(), fcntl.LOCK_EX)  # two approvals at once: neither is lost
        source = read_file(script)  # what run would refuse (binary, not UTF-8, empty) cannot be approved either
        approvals = read_approvals(script)
        stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        approval = Approval(reviewer=name, approved_at=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            script_sha256=source.sha256, note=remark, recorded_by=recorder)  # fmt: skip
        _write(approvals_path(script), script.name, (*approvals, approval))
    return approval


def _write(path: Path, script_name: str, approvals: Sequence[Approval]) -> None:
    document = {"format": FORMAT, "version": VERSION, "script": script_name,
                "approvals": [asdict(a) for a in approvals]}  # fmt: skip
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
    except OSError as error:
        raise InputError(f"{path}: cannot write the approvals: {error.strerror}") from None


def count_approvals(approvals: Iterable[Approval], sha256: str, required: int, author: str) -> ApprovalCount:
    """The approvals that count for a run of the script whose bytes hash to `sha256`, by OS user `author`."""
    every = tuple(approvals)
    matching = tuple(a for a in every if a.script_sha256 == sha256)
    counted: dict[str, Approval] = {}
    author_key = reviewer_key(author)
    for approval in matching:
        if approval.reviewer_key != author_key:
            counted.setdefault(approval.reviewer_key, approval)
    return ApprovalCount(required=required, script_sha256=sha256, counted=tuple(counted.values()),
                         matching=matching, stale=len(every) - len(matching), author=author,
                         author_excluded=any(a.reviewer_key == author_key for a in matching))  # fmt: skip


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def approvals_for_run(script_path: str, sha256: str, required: int, author: str) -> ApprovalCount:
    """The approvals of the script `run` is about to execute (its bytes hash to `sha256`), against `required`.

    UsageError (exit 2) for a script read from stdin while approvals are required: there is no file to bind
    them to. InputError (exit 3) for a corrupt approvals file."""
    if script_path == "<stdin>":
        raise UsageError(f"the policy requires {required} approval(s) and a script from stdin has none: run the "
                         "approved file itself (`dbguard run path/to/script.sql`)")  # fmt: skip
    return count_approvals(read_approvals(Path(script_path)), sha256, required, author)


@dataclass(frozen=True)
class ApprovalListing:
    """What `dbguard approvals` shows: every approval of a script, and whether it matches its current bytes."""

    script: str
    approvals_file: str
    script_sha256: str  # of the script's current bytes
    approvals: tuple[Approval, ...]
    count: ApprovalCount | None = None  # against a policy's require_approvals, when one was given

    def matches(self, approval: Approval) -> bool:
        return approval.script_sha256 == self.script_sha256

    @property
    def reviewers_matching(self) -> int:
        """Distinct reviewers whose approval matches the current bytes (whoever runs it)."""
        return len({a.reviewer_key for a in self.approvals if self.matches(a)})


def list_approvals(script: Path, required: int | None = None, author: str = "") -> ApprovalListing:
    """The listing of `script`'s approvals; with `required`, counted for a run by `author` too.

    InputError (exit 3) for a missing or unreadable script or a corrupt approvals file."""
    sha256 = read_file(script).sha256
    approvals = read_approvals(script)
    count = None if required is None else count_approvals(approvals, sha256, required, author)
    return ApprovalListing(str(script), str(approvals_path(script)), sha256, approvals, count)
