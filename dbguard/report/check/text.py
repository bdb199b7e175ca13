"""The terminal report: `file:line:col`, severity, rule, message, a code frame, and the help."""

from __future__ import annotations

import textwrap
from io import StringIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from dbguard.registry import Severity
from dbguard.report.check.model import CheckReport, FileReport, Finding
from dbguard.report.printable import printable

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_FRAME_LINES = 4


def render(report: CheckReport, color: bool = False, width: int = 100) -> str:
    report = printable(report)  # the script's own ESC, CR or U+202E never reach the terminal
    out = StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color, highlight=False, emoji=False)
    for file in report.files:
        for finding in file.findings:
            _finding(console, file, finding, report)
    console.print(_summary(report))
    return out.getvalue()


def _finding(console: Console, file: FileReport, finding: Finding, report: CheckReport) -> None:
    where = f"{finding.path}:{finding.line}:{finding.column}"
    label = "waived" if finding.waived else finding.severity.value
    style = "dim" if finding.waived else _STYLE.get(finding.severity, "")
    inside = f" (in {finding.origin})" if finding.origin else ""
    console.print(f"[bold]{escape(where)}[/] [{style}]{label}[/] [magenta]{finding.rule_id}[/]{escape(inside)}")
    print_cut(console, wrapped(finding.message, "  ", console.width))
    for number, line, marked in _frame(file.script.text, finding):
        marker = ">" if marked else " "
        # A source line is never wrapped inside the frame: it ends in "…" where the terminal does.
        print_cut(console, Text(f"  {marker} {number:>4} | {line}", style="bold" if marked else "dim"))
    if finding.waived:
        print_cut(console, wrapped(f"waived: {finding.waived_reason}", "  ", console.width, "dim"))
    else:
        print_cut(console, wrapped(f"help: {finding.help}", "  ", console.width, "green"))
    console.print()


def wrapped(text: str, indent: str, width: int, style: str = "") -> Text:
    """Wrap at spaces ourselves, so continuation lines keep the indent and carry no trailing blanks. A word
    longer than a line (a long name) is left whole, for print_cut to end in "…": never broken in two."""
    filled = textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent + "  ",
                           break_long_words=False, break_on_hyphens=False)  # fmt: skip
    return Text(filled, style)


def print_cut(console: Console, text: Text) -> None:
    """Print each line as it is, cut with "…" at the console's width instead of wrapped."""
    console.print(text, no_wrap=True, overflow="ellipsis")


def _frame(text: str, finding: Finding) -> list[tuple[int, str, bool]]:
    """A few lines around the statement: the one before it, then up to _FRAME_LINES of it."""
    lines = text.splitlines()
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
