"""Reading scripts: files, directories of .sql files, or `-` for stdin. Every bad input is a clear error."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dbguard.errors import InputError

MAX_SCRIPT_BYTES = 16 * 1024 * 1024  # every read stops here: devices and FIFOs report no size, stdin none


@dataclass(frozen=True)
class Source:
    name: str
    text: str
    sha256: str = ""  # of the bytes as read (a BOM included); when built from text alone, of its UTF-8

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.text.encode()).hexdigest())


def read_sources(paths: Sequence[str]) -> Iterator[Source]:
    if not paths:
        raise InputError("no script given: pass a .sql file, a directory, or - for stdin")
    for path in paths:
        if path == "-":
            data = _read_bounded(sys.stdin.buffer, "<stdin>")
            yield Source("<stdin>", decode(data, "<stdin>"), hashlib.sha256(data).hexdigest())
            continue
        target = Path(path)
        if target.is_dir():
            files = sorted(p for p in target.rglob("*.sql") if p.is_file())
            if not files:
                raise InputError(f"{path}: directory holds no .sql files")
            for file in files:
                yield read_file(file)
        else:
            yield read_file(target)


def read_file(path: Path) -> Source:
    """A script file, read whole; a device or FIFO (/dev/zero, a pipe) is read up to the limit and no further."""
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size  # a regular file's size: refused before reading a byte
            if size > MAX_SCRIPT_BYTES:
                raise InputError(_too_large(str(path), size))
            data = _read_bounded(stream, str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    return Source(str(path), decode(data, str(path)), hashlib.sha256(data).hexdigest())


def _read_bounded(stream: BinaryIO, name: str) -> bytes:
    data = stream.read(MAX_SCRIPT_BYTES + 1)  # a buffered read: it returns short only at the end of the input
    if len(data) > MAX_SCRIPT_BYTES:
        raise InputError(_too_large(name, None))
    return data


def decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise InputError(f"{name}: binary data (NUL bytes), not a SQL script")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(f"{name}: not valid UTF-8 (byte 0x{data[error.start]:02x} on line {line})") from None
    if not text.strip():
        raise InputError(f"{name}: empty script")
    return text


def _too_large(name: str, size: int | None) -> str:
    """`size` is None when the input has no size of its own (stdin, a device, a FIFO): it went on past the limit."""
    limit = f"the {MAX_SCRIPT_BYTES // 1024 // 1024} MiB dbguard reads"
    what = f"{size / 1024 / 1024:.1f} MiB is larger than {limit}" if size is not None else f"more than {limit}"
    return f"{name}: {what}; split the script"
