"""Inline waivers: `-- dbguard: allow <rule-id>[, <rule-id>] reason="..."` on or above a statement."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbguard.sql.model import Script, Statement

_WAIVER = re.compile(
    r"dbguard:\s*allow\s+(?P<rules>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)"
    r"(?:\s+reason\s*=\s*(?:\"(?P<reason>[^\"]*)\"|'(?P<reason2>[^']*)'))?"
)


@dataclass(frozen=True)
class Waiver:
    rule_ids: tuple[str, ...]
    reason: str | None
    statement: int | None  # index of the top-level statement it covers; None if it covers nothing
    line: int
    column: int


def find_waivers(script: Script) -> list[Waiver]:
    top = [s for s in script.statements if s.parent is None]
    waivers = []
    for start, end in script.comments:
        comment = script.text[start:end]
        match = _WAIVER.search(comment)
        if not match:
            continue
        rule_ids = tuple(r.strip() for r in match.group("rules").split(","))
        reason = (match.group("reason") or match.group("reason2") or "").strip() or None
        line = script.text.count("\n", 0, start) + 1
        column = start - (script.text.rfind("\n", 0, start) + 1) + 1
        waivers.append(Waiver(rule_ids, reason, _covered(top, start, line), line, column))
    return waivers


def _covered(top: list[Statement], offset: int, line: int) -> int | None:
    """The statement the comment is inside or trails on the same line; else the next one below it."""
    for statement in top:
        span = statement.span
        inside = span.start <= offset <= span.end
        trailing = span.end_line == line and offset >= span.start
        if inside or trailing:
            return statement.index
    following = [s for s in top if s.span.start > offset]
    return following[0].index if following else None
