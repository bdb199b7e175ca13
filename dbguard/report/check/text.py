"""The terminal report: `file:line:col`, severity, rule, message, a code frame, and the help.

The report is built as a list of lines and joined once, so rendering is linear in the report's size: each
script is split into lines once (not once per finding), and no line goes through a rich Console, whose
per-call layout cost was most of the time on a script with thousands of findings. Lines are cut with "…"
at `width` exactly where rich cuts them (cells, not characters: a CJK character takes two), and coloured
with rich's styles. Only a header wider than `width` (a very long path) is wrapped by a Console.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from functools import cache

from rich.cells import cell_len, set_cell_size
from rich.color import ColorSystem
from rich.console import Console
from rich.style import Style
from rich.text import Text

from dbguard.registry import Severity
from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.printable import printable, visible

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_FRAME_LINES = 4
_TAB_SIZE = 8  # rich's: a cut falls where the terminal shows it

Segment = tuple[str, str]  # a piece of one line and its rich style ("" for none)


def render(report: CheckReport, color: bool = False, width: int = 100) -> str:
    lines = _Lines(width, color)
    for file in report.files:
        # The script's own ESC, CR or U+202E never reach the terminal: its text is made visible once.
        source = visible(file.script.text).split("\n") if file.findings else []
        for finding in printable(file.findings):
            _finding(lines, source, finding)
    lines.add_markup(_summary(report))
    return lines.joined()


def render_finding(script_text: str, finding: Finding, color: bool = False, width: int = 100) -> str:
    """One finding (of the script whose source is `script_text`) as `render` shows it, ending in a blank line."""
    lines = _Lines(width, color)
    _finding(lines, visible(script_text).split("\n"), printable(finding))
    return lines.joined()


def _finding(lines: _Lines, source: Sequence[str], finding: Finding) -> None:
    where = f"{finding.path}:{finding.line}:{finding.column}"
    label = "waived" if finding.waived else finding.severity.value
    style = "dim" if finding.waived else _STYLE.get(finding.severity, "")
    inside = f" (in {finding.origin})" if finding.origin else ""
    lines.add_header([(where, "bold"), (" ", ""), (label, style), (" ", ""), (finding.rule_id, "magenta"),
                      (inside, "")])  # fmt: skip
    lines.add_wrapped(finding.message, "")
    for number, line, marked in _frame(source, finding):
        marker = ">" if marked else " "
        # A source line is never wrapped inside the frame: it ends in "…" where the terminal does.
        lines.add([(f"  {marker} {number:>4} | {line}", "bold" if marked else "dim")])
    if finding.waived:
        lines.add_wrapped(f"waived: {finding.waived_reason}", "dim")
    else:
        lines.add_wrapped(f"help: {finding.help}", "green")
    lines.add([])


class _Lines:
    """The report's lines, each cut at `width` cells and, when `color`, styled as it is added."""

    def __init__(self, width: int, color: bool) -> None:
        self.width = width
        self.color = color
        self._lines: list[str] = []

    def add(self, segments: list[Segment]) -> None:
        """One line, cut with "…" at the width instead of wrapped."""
        if any("\t" in text for text, _ in segments):
            segments = _expand_tabs(segments)
        if sum(cell_len(text) for text, _ in segments) > self.width:
            segments = _ellipsis(segments, self.width)
        self._lines.append("".join(_paint(text, style) if self.color else text for text, style in segments))

    def add_wrapped(self, text: str, style: str) -> None:
        for line in wrapped(text, "  ", self.width).plain.split("\n"):
            self.add([(line, style)])

    def add_header(self, segments: list[Segment]) -> None:
        """One line that is wrapped, not cut, when it is wider than the report: as rich's `Console.print`."""
        if sum(cell_len(text) for text, _ in segments) <= self.width and not any("\t" in t for t, _ in segments):
            self.add(segments)
            return
        console = Console(width=self.width, force_terminal=self.color, no_color=not self.color, highlight=False,
                          emoji=False)  # fmt: skip
        with console.capture() as captured:
            console.print(Text.assemble(*segments))
        self._lines.append(captured.get().removesuffix("\n"))

    def add_markup(self, markup: str) -> None:
        text = Text.from_markup(markup)
        self.add_header(_segments(text))

    def joined(self) -> str:
        return "\n".join(self._lines) + "\n"


@cache
def _style(style: str) -> Style:
    return Style.parse(style)


def _paint(text: str, style: str) -> str:
    return _style(style).render(text, color_system=ColorSystem.STANDARD) if style and text else text


def _expand_tabs(segments: list[Segment]) -> list[Segment]:
    """Tabs expanded to rich's tab stops, counted from the start of the line."""
    expanded: list[Segment] = []
    column = 0
    for text, style in segments:
        pieces = text.split("\t")
        out = pieces[0]
        for piece in pieces[1:]:
            out += " " * (_TAB_SIZE - (column + cell_len(out)) % _TAB_SIZE) + piece
        column += cell_len(out)
        expanded.append((out, style))
    return expanded


def _ellipsis(segments: list[Segment], width: int) -> list[Segment]:
    """`segments` cut to `width` cells, ending in "…" (rich's overflow="ellipsis")."""
    kept: list[Segment] = []
    room = width - 1
    for text, style in segments:
        size = cell_len(text)
        if size > room:
            kept.append((set_cell_size(text, room) + "…", style))
            break
        kept.append((text, style))
        room -= size
    return kept


def _segments(text: Text) -> list[Segment]:
    """A markup line's text as segments with one style each (its spans may nest or leave gaps)."""
    cuts = sorted({0, len(text.plain), *(s.start for s in text.spans), *(s.end for s in text.spans)})
    segments = []
    for start, end in itertools.pairwise(cuts):
        style = " ".join(str(s.style) for s in text.spans if s.start <= start and end <= s.end)
        segments.append((text.plain[start:end], style))
    return segments


def wrapped(text: str, indent: str, width: int, style: str = "") -> Text:
    """Wrap at spaces ourselves, so continuation lines keep the indent and carry no trailing blanks. A word
    longer than a line (a long name) is left whole, for print_cut to end in "…": never broken in two."""
    filled = textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                           break_long_words=False, break_on_hyphens=False)  # fmt: skip
    return Text(filled, style)


def print_cut(console: Console, text: Text) -> None:
    """Print each line as it is, cut with "…" at the console's width instead of wrapped."""
    console.print(text, no_wrap=True, overflow="ellipsis")


def _frame(lines: Sequence[str], finding: Finding) -> list[tuple[int, str, bool]]:
    """A few lines around the statement: the one before it, then up to _FRAME_LINES of it."""
    first = finding.line
    last = finding.span.end_line if finding.span else first
    shown_last = min(last, first + _FRAME_LINES - 1, len(lines))
    frame = []
    if first > 1 and lines[first - 2].strip():
        frame.append((first - 1, lines[first - 2], False))
    frame += [(n, lines[n - 1], True) for n in range(first, shown_last + 1)]
    if shown_last < last:
        hidden = last - shown_last
        frame.append((shown_last + 1, f"... ({hidden} more line{'s' * (hidden != 1)})", False))
    return frame


def _summary(report: CheckReport) -> str:
    counts = report.counts()
    files = len(report.files)
    parts = [plural(counts["error"], "error"), plural(counts["warning"], "warning")]
    if counts["info"]:
        parts.append(f"{counts['info']} info")
    if counts["waived"]:
        parts.append(f"{counts['waived']} waived")
    scope = f"{plural(files, 'file')}, {plural(report.statement_count, 'statement')}"
    if report.blocking:
        verdict = f"[bold red]BLOCKED[/]: {len(report.blocking)} blocking (fail-on {report.threshold.value})"
    else:
        verdict = f"[bold green]PASSED[/] (fail-on {report.threshold.value})"
    return f"{scope}: {', '.join(parts)}. {verdict}"


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`: `noun` with an s unless `count` is one."""
    return f"{count} {noun}{'s' * (count != 1)}"
