"""A small SQL lexer that knows where strings, quoted names and comments start and end.

It finds three things a parser does not give back with positions:
- statement boundaries (the `;` that is not inside a string, a comment or a dollar quote);
- comments, where waivers live;
- psql meta-commands (`\\i`, `\\set`...), which no SQL parser accepts;
- the mysql client's `DELIMITER` command, which it obeys the way the client does: from there on,
  statements end at the new delimiter, and `;` inside a procedure or trigger body no longer splits it.

For PostgreSQL, pglast stays the authority on splitting; this lexer is the fallback that lets one bad
statement be reported while the rest of the script is still checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dbguard.dialects import Dialect

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# The mysql client reads `DELIMITER x` at the start of a statement, up to the end of the line.
_DELIMITER = re.compile(r"DELIMITER[ \t]+(\S+)[^\n]*", re.IGNORECASE)


@dataclass(frozen=True)
class Piece:
    """A half-open character range [start, end) of the script."""

    start: int
    end: int


@dataclass
class Lexed:
    statements: list[Piece] = field(default_factory=list)
    comments: list[Piece] = field(default_factory=list)
    meta_commands: list[Piece] = field(default_factory=list)
    unterminated: Piece | None = None  # a string, quoted name or comment still open at the end
    executable_comments: list[Piece] = field(default_factory=list)  # MySQL's /*! ... */: the server runs them
    client_commands: list[Piece] = field(default_factory=list)  # the mysql client's DELIMITER lines


def lex(text: str, dialect: Dialect) -> Lexed:
    out = Lexed()
    pos, n = 0, len(text)
    stmt_start: int | None = None
    words: list[str] = []  # leading words of the current statement, to spot SQLite trigger bodies
    block_depth = 0
    delimiter = ";"
    opening = _OPENING[dialect]  # the characters a string or quoted name can start with

    def end_statement(end: int) -> None:
        nonlocal stmt_start, block_depth
        if stmt_start is not None and text[stmt_start:end].strip():
            out.statements.append(Piece(stmt_start, end))
        stmt_start, block_depth = None, 0
        words.clear()

    while pos < n:
        ch = text[pos]
        nxt = text[pos + 1] if pos + 1 < n else ""
        if ch.isspace():
            pos += 1
            continue
        if (ch == "-" and nxt == "-") or (ch == "#" and dialect is Dialect.MYSQL):
            end = text.find("\n", pos)
            end = n if end < 0 else end
            out.comments.append(Piece(pos, end))
            pos = end
            continue
        if ch == "/" and nxt == "*":
            comment_end = _block_comment_end(text, pos, nested=dialect is Dialect.POSTGRES)
            if comment_end is None:
                out.unterminated = Piece(pos, n)
                out.comments.append(Piece(pos, n))
                break
            if dialect is Dialect.MYSQL and text.startswith(("/*!", "/*M!"), pos):
                out.executable_comments.append(Piece(pos, comment_end))
                if stmt_start is None:  # the server runs what it holds: part of a statement, maybe all of it
                    stmt_start = pos
            else:
                out.comments.append(Piece(pos, comment_end))
            pos = comment_end
            continue
        if ch == "\\" and dialect is Dialect.POSTGRES:
            end_statement(pos)
            end = text.find("\n", pos)
            end = n if end < 0 else end
            out.meta_commands.append(Piece(pos, end))
            pos = end
            continue
        if dialect is Dialect.MYSQL and stmt_start is None and ch in "Dd":
            command = _DELIMITER.match(text, pos)
            if command:
                delimiter = command.group(1)
                out.client_commands.append(Piece(pos, command.end()))
                pos = command.end()
                continue
        if delimiter != ";":
            if text.startswith(delimiter, pos):
                end_statement(pos)
                pos += len(delimiter)
                continue
        elif ch == ";":
            if block_depth > 0:
                pos += 1
                continue
            end_statement(pos)
            pos += 1
            continue
        if stmt_start is None:
            stmt_start = pos
        quoted_end = _quoted_end(text, pos, dialect) if ch in opening else None
        if quoted_end is not None:
            if quoted_end < 0:
                out.unterminated = Piece(pos, n)
                break
            pos = quoted_end
            continue
        word = _WORD.match(text, pos)
        if word and delimiter != ";" and delimiter in word.group():  # `END$$`: $ may be part of a name
            cut = text.find(delimiter, pos, word.end())
            if cut > pos:
                word = _WORD.match(text[:cut], pos)
        if word:
            upper = word.group().upper()
            if len(words) < 4:
                words.append(upper)
            if dialect is not Dialect.POSTGRES and "TRIGGER" in words:
                if upper in ("BEGIN", "CASE"):
                    block_depth += 1
                elif upper == "END" and block_depth > 0:
                    block_depth -= 1
            pos = word.end()
            continue
        pos += 1
    end_statement(n)
    return out


def _block_comment_end(text: str, pos: int, nested: bool) -> int | None:
    depth, i, n = 0, pos, len(text)
    while i < n - 1:
        pair = text[i : i + 2]
        if pair == "/*" and (nested or depth == 0):
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return None


_OPENING = {Dialect.POSTGRES: "Ee$'\"", Dialect.MYSQL: "'\"`", Dialect.SQLITE: "'\"`["}


def _quoted_end(text: str, pos: int, dialect: Dialect) -> int | None:
    """If a string or quoted name starts at pos, return where it ends (-1 if never); else None."""
    ch = text[pos]
    prev_is_word = pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] in "_$")
    if dialect is Dialect.POSTGRES:
        if ch in "Ee" and text[pos + 1 : pos + 2] == "'" and not prev_is_word:
            return _scan_quote(text, pos + 1, "'", backslash=True)
        if ch == "$" and not prev_is_word:
            tag = _DOLLAR_TAG.match(text, pos)
            if tag:
                close = text.find(tag.group(), tag.end())
                return -1 if close < 0 else close + len(tag.group())
        if ch in "'\"":
            return _scan_quote(text, pos, ch, backslash=False)
        return None
    if dialect is Dialect.MYSQL:
        if ch in "'\"":
            return _scan_quote(text, pos, ch, backslash=True)
        if ch == "`":
            return _scan_quote(text, pos, ch, backslash=False)
        return None
    if ch in "'\"`":
        return _scan_quote(text, pos, ch, backslash=False)
    if ch == "[":
        close = text.find("]", pos + 1)
        return -1 if close < 0 else close + 1
    return None


def _scan_quote(text: str, pos: int, quote: str, backslash: bool) -> int:
    """Where the string or quoted name opened by `quote` at pos ends (a doubled quote stays inside; with
    `backslash`, so does an escaped character), or -1 if it never does."""
    match = _QUOTED[quote, backslash].match(text, pos)
    return match.end() if match else -1


# One regular expression per kind of quote: the scan runs in C, not a character at a time in Python. The
# quantifier is possessive (*+): "'a''" never ends early by giving back the doubled quote it consumed.
_QUOTED = {
    (quote, backslash): re.compile(
        re.escape(quote) + "(?:" + (r"[^\\" if backslash else "[^") + re.escape(quote) + "]"
        + (r"|\\." if backslash else "") + "|" + re.escape(quote * 2) + ")*+" + re.escape(quote),
        re.DOTALL,
    )
    for quote in "'\"`"
    for backslash in (False, True)
}
