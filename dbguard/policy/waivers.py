"""Inline waivers: `-- dbguard: allow <rule-id>[, <rule-id>] reason="..."` on or above a statement."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate

from dbguard.sql.model import LineIndex, Script, Statement

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
    top = [s for s in script.statements if s.parent is None]  # in order of their start
    starts = [s.span.start for s in top]
    reach = list(accumulate((s.span.end_line for s in top), max))  # the last line reached so far
    lines = LineIndex(script.text)
    waivers = []
    for start, end in script.comments:
        comment = script.text[start:end]
        match = _WAIVER.search(comment)
        if not match:
            continue
        rule_ids = tuple(r.strip() for r in match.group("rules").split(","))
        reason = (match.group("reason") or match.group("reason2") or "").strip() or None
        line, column = lines.position(start)
        covered = _covered(top, starts, reach, start, line)
        waivers.append(Waiver(rule_ids, reason, covered.index if covered else None, line, column))
    return waivers


def _covered(top: list[Statement], starts: list[int], reach: list[int], offset: int, line: int) -> Statement | None:
    """The statement the comment is inside or trails on the same line; else the next one below it.

    That is the first statement that starts before the comment and ends on its line or later, found by
    bisection: a script of 20,000 waived statements must not rescan every statement for each waiver."""
    started = bisect_right(starts, offset)
    first = bisect_left(reach, line, 0, started)
    if first < started:
        return top[first]
    return top[started] if started < len(top) else None
