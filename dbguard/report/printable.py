r"""Text from a script, a database or a file name, made safe for every report format.

A script may hold anything: ESC sequences that recolour the terminal or move its cursor, BEL, a bare CR
that hides what came before it on the line, bidirectional overrides (U+202E) that make a reviewer read
code in another order than the server does, and characters XML 1.0 cannot hold at all. A file name given
on the command line may also hold bytes that are not UTF-8 (Python keeps them as lone surrogates).

- `visible` writes each of those as a visible escape (`\x1b`, `\u202e`), for the formats people read:
  text, Markdown, HTML, JUnit XML, GitHub annotations.
- `without_surrogates` only replaces lone surrogates with U+FFFD, for JSON and SARIF: JSON escapes the
  control characters itself, but a lone surrogate is not Unicode and strict parsers reject it.
- `printable` applies one of them to every string of a report, so that no field can be forgotten.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

T = TypeVar("T")

_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls but tab and newline; DEL
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators: a line break to some readers, not to others
    "\ud800-\udfff\ufffe\uffff]"  # lone surrogates; the two non-characters XML forbids
)
_SURROGATES = re.compile("[\ud800-\udfff]")


def visible(text: str) -> str:
    r"""`text` with every character in _UNSAFE written as an escape: "\x1b[31m" becomes the 8 characters
    `\x1b[31m`. A byte that was not UTF-8 (a lone surrogate from a file name) shows as that byte: `\xff`.
    Tabs and newlines stay; CRLF line ends become LF."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # how Python keeps an undecodable byte (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def without_surrogates(text: str) -> str:
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def printable(value: T, clean: Callable[[str], str] = visible) -> T:
    """A copy of `value` (a report: dataclasses, tuples, lists and dicts) with `clean` applied to every
    string in it. Parts with nothing to clean are kept as they are, not copied; anything that is not one of
    those containers (a parser's tree held in an action's details) is left alone."""
    return cast(T, _cleaned(value, clean))


def _cleaned(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return value if isinstance(value, Enum) else clean(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if f.init:
                before = getattr(value, f.name)
                after = _cleaned(before, clean)
                if after is not before:
                    changes[f.name] = after
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple | list):
        items = [_cleaned(item, clean) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # a named tuple, or not
    if isinstance(value, dict):
        pairs = [(_cleaned(k, clean), _cleaned(v, clean)) for k, v in value.items()]
        same = all(k is old_k and v is old_v for (k, v), (old_k, old_v) in zip(pairs, value.items(), strict=True))
        return value if same else dict(pairs)
    if isinstance(value, frozenset):
        cleaned = frozenset(_cleaned(item, clean) for item in value)
        return value if cleaned == value else cleaned
    return value
