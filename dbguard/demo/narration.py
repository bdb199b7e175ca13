"""How the demo tells its story: chapter headings, narration, the real reports, and the claims it checks.

Every claim the story makes ("check blocks it", "the run rolled back") is checked against what the
pipeline returned, recorded as a `Claim`, and printed as it is checked: the demo is also a self-test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dbguard.targets.model import TableStats

Progress = Callable[[str], None]
REPORT_WIDTH = 100  # the reports are rendered at most this wide, as the commands print them


@dataclass(frozen=True)
class Claim:
    """One thing the story says happened, and whether it did."""

    step: int
    text: str
    held: bool
    detail: str = ""  # what was seen instead, when it did not hold


@dataclass
class Narrator:
    """Prints the story to `console` (stdout) and the pipeline's progress to `progress_console` (stderr)."""

    console: Console
    progress_console: Console
    on_progress: Progress | None = None  # where the pipeline's progress goes instead (tests listen here)
    claims: list[Claim] = field(default_factory=list)
    _after_claim: bool = False  # a paragraph after a list of claims needs a blank line between

    @property
    def color(self) -> bool:
        return self.console.is_terminal

    @property
    def width(self) -> int:
        return min(self.console.width, REPORT_WIDTH)

    def chapter(self, step: int, title: str) -> None:
        self._gap()
        self.console.rule(Text(f"Step {step}: {title}", style="bold"), align="left")

    def say(self, text: str) -> None:
        """A paragraph of narration ([bold] and the like allowed)."""
        self._gap()
        self.console.print(text, width=self.width)
        self.console.print()

    def report(self, rendered: str) -> None:
        """A report as the renderer made it (already colored or plain)."""
        self._gap()
        self.console.print(Text.from_ansi(rendered.rstrip("\n")) if self.color else rendered.rstrip("\n"),
                           markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        self.console.print()

    def lines(self, lines: list[str], cut: bool = False) -> None:
        """Plain lines (names from the database: no markup), then a blank line. `cut`: each line ends in "…"
        at the report width instead of running on."""
        self._gap()
        for line in lines:
            if cut:
                self.console.print(line, markup=False, highlight=False, overflow="ellipsis", no_wrap=True,
                                   width=self.width)  # fmt: skip
            else:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.console.print()

    def _gap(self) -> None:
        if self._after_claim:
            self.console.print()
            self._after_claim = False

    def progress(self, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(message)
            return
        self.progress_console.print(f"[dim]dbguard: {escape(message)}[/dim]", soft_wrap=True, highlight=False)

    def claim(self, step: int, text: str, held: bool, detail: str = "") -> bool:
        self.claims.append(Claim(step, text, held, "" if held else detail))
        mark = Text("  ✓ ", style="bold green") if held else Text("  ✗ ", style="bold red")
        line = Text.assemble(mark, text, (f" -- NOT SO: {detail}" if not held and detail else "", "red"))
        self.console.print(line, soft_wrap=True)
        self._after_claim = True
        return held

    def hashes(self, before: Mapping[str, TableStats], after: Mapping[str, TableStats]) -> None:
        """Each table's rows and content hash before and after, side by side (shortened; compared whole)."""
        self._gap()
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for name, justify in (("table", "left"), ("rows before -> after", "right"), ("hash before", "left"),
                              ("hash after", "left"), ("", "left")):  # fmt: skip
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name), after.get(name)
            same = old is not None and new is not None and (old.rows, old.hash) == (new.rows, new.hash)
            table.add_row(name, f"{_rows(old)} -> {_rows(new)}", _hash(old), _hash(new),
                          Text("same", "green") if same else Text("DIFFERENT", "bold red"))  # fmt: skip
        self.console.print(table)
        self.console.print()

    def summary(self) -> None:
        held = sum(claim.held for claim in self.claims)
        self.console.print()
        self.console.rule(Text("The story, checked", style="bold"), align="left")
        for claim in self.claims:
            style = "green" if claim.held else "bold red"
            self.console.print(Text.assemble((f"  step {claim.step}  ", "dim"), ("✓ " if claim.held else "✗ ", style),
                                             claim.text), soft_wrap=True)  # fmt: skip
        missed = len(self.claims) - held
        verdict = Text(f"All {held} claims held.", style="bold green") if not missed else Text(
            f"{missed} of {len(self.claims)} claims did NOT hold.", style="bold red")  # fmt: skip
        self.console.print()
        self.console.print(verdict)


def _rows(stats: TableStats | None) -> str:
    return "-" if stats is None else f"{stats.rows:,}"


def _hash(stats: TableStats | None) -> str:
    """The hash shortened for a table cell: enough digits of both halves to tell two apart."""
    if stats is None:
        return "-"
    first, _, second = stats.hash.partition(":")
    return f"{first[:9]}…:{second[:6]}…" if len(first) > 9 or len(second) > 6 else stats.hash
