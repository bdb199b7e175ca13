"""Reading scripts: files, directories of .sql files, or `-` for stdin. Every bad input is a clear error."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbguard.errors import InputError

MAX_SCRIPT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    name: str
    text: str


def read_sources(paths: Sequence[str]) -> Iterator[Source]:
    if not paths:
        raise InputError("no script given: pass a .sql file, a directory, or - for stdin")
    for path in paths:
        if path == "-":
            yield Source("<stdin>", decode(sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1), "<stdin>"))
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
    try:
        size = path.stat().st_size
        if size > MAX_SCRIPT_BYTES:
            raise InputError(_too_large(str(path), size))
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    return Source(str(path), decode(data, str(path)))


def decode(data: bytes, name: str) -> str:
    if len(data) > MAX_SCRIPT_BYTES:
        raise InputError(_too_large(name, len(data)))
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


def _too_large(name: str, size: int) -> str:
    return (
        f"{name}: {size / 1024 / 1024:.1f} MiB is larger than the {MAX_SCRIPT_BYTES // 1024 // 1024} MiB "
        "dbguard reads; split the script"
    )
