"""Where a statement inside a DO block, a function body or a trigger body sits in the script, so that a
finding about it points at its own line rather than at the CREATE or DO that holds it.

A body's statements are pieces of its own text, so each is found verbatim in the enclosing statement's
text. A PL/pgSQL body is read from a deparsed statement; there the body is the enclosing statement's
string constant (the longest one: a default value or a quoted LANGUAGE name is shorter), and PL/pgSQL
numbers each statement's line from the line that string starts on. What cannot be found (a body written
as an E'' string, a BEGIN ATOMIC body, which is deparsed) keeps the enclosing statement's span: a finding
then points at the CREATE or DO, never at a wrong line.
"""

from __future__ import annotations

import pglast

from dbguard.sql.model import LineIndex, Span, Statement


class BodyLocator:
    """Spans of the statements in one body of `parent`, in the script `text` (`lines`: its LineIndex).
    `body`: the body's text when it is verbatim in the parent's (SQL bodies); None for PL/pgSQL, whose body
    is the parent's string constant."""

    def __init__(self, parent: Statement, body: str | None, text: str, lines: LineIndex) -> None:
        self.parent, self.text, self.lines = parent, text, lines
        span = parent.span
        self.body_start: int | None = None
        if text[span.start : span.end] == parent.text.rstrip():  # the parent itself is exactly placed
            own = text[span.start : span.end]
            inside = _string_constant_start(own) if body is None else own.find(body) if body else -1
            if inside is not None and inside >= 0:
                self.body_start = span.start + inside

    def span(self, text: str, line: int = 0, offset: int | None = None) -> Span:
        """The span of `text`, a piece of the body: at `offset` in the body, or on PL/pgSQL's `line` of it
        (found verbatim there, else that whole line), or where it first appears in the body."""
        start, end = self.body_start, self.parent.span.end
        if start is None:
            return self.parent.span
        if offset is not None and self.text.startswith(text, start + offset):
            return self._span(start + offset, len(text))
        if line > 0:
            return self._on_line(text, start, line)
        found = self.text.find(text, start, end)
        return self._span(found, len(text)) if found >= 0 else self.parent.span

    def _on_line(self, text: str, body_start: int, line: int) -> Span:
        start = body_start
        for _ in range(line - 1):
            start = self.text.find("\n", start, self.parent.span.end) + 1
            if start == 0:
                return self.parent.span  # beyond the parent: PL/pgSQL counted from somewhere else
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else end
        found = self.text.find(text, start)
        if 0 <= found < end:
            return self._span(found, len(text))
        whole = self.text[start:end]
        return self._span(start + len(whole) - len(whole.lstrip()), len(whole.strip()))

    def _span(self, start: int, length: int) -> Span:
        return Span.of(self.lines, start, start + len(self.text[start : start + length].rstrip()))


def _string_constant_start(text: str) -> int | None:
    """Where the longest string constant's content starts: after `$tag$` or `'` (an E'' string's escapes
    may stand for line breaks, which would shift every line: None)."""
    try:
        tokens = [t for t in pglast.parser.scan(text) if t.name == "SCONST"]
    except pglast.parser.ParseError:
        return None
    if not tokens:
        return None
    longest = max(tokens, key=lambda t: t.end - t.start)
    constant = text[longest.start : longest.end + 1]
    if constant.startswith("$"):
        return longest.start + constant.index("$", 1) + 1
    return longest.start + 1 if constant.startswith("'") else None
