"""The dry-run report for the terminal: the verdict first, then what the script did to the sandbox copy.

Also holds the wording the Markdown and HTML renderers share (durations, rows, locks, sample rows), so that
every format says the same thing in the same words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbguard.guard.execute import StatementRun, TableActivity
from dbguard.report.check import text as render_text
from dbguard.report.check.text import plural
from dbguard.report.dryrun.json import LockSpan, caveats, gate_status, lock_spans, script_path, statement_ran
from dbguard.report.dryrun.model import DryRunReport, TableDelta
from dbguard.report.printable import printable
from dbguard.targets.model import CheckResult, row_text

SAMPLE_ROWS = 10
LONG_STATEMENT_LINES = 4  # lines, or characters: a statement longer than this is shown collapsed
LONG_STATEMENT_CHARACTERS = 300
_OTHER_COLUMNS = 27  # "#", "line", "rows" ("not run"), "ms" ("1,234.5") and the gaps between the six columns
_STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIPPED": "yellow", "FAIL (pre-existing)": "yellow"}


def render(report: DryRunReport, color: bool = False, width: int = 100) -> str:
    report = printable(report)  # control characters of the script, the server or the rows never reach the terminal
    out = StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color, highlight=False, emoji=False,
                      color_system="standard" if color else None)  # fmt: skip
    for section in (_verdict, _overview, _statements, _writes, _locks, _tables, _schema, _checks, _findings,
                    _estimates):  # fmt: skip
        section(console, report)
    if report.notes:
        console.print(Text("Notes", style="bold"))
        for note in report.notes:
            _say(console, f"- {note}", "  ")
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())  # rich pads lines to the width


def _verdict(console: Console, report: DryRunReport) -> None:
    reasons = report.blocking_reasons
    what = f": dry-run of {script_path(report) or 'the script'}"
    if reasons:
        console.print(Text.assemble(("BLOCKED", "bold red"), f"{what}, {plural(len(reasons), 'reason')}"))
    else:
        console.print(Text.assemble(("SAFE", "bold green"), f"{what}, nothing blocks it"))
    for reason in reasons:
        _say(console, f"- {reason}", "  ")
    for caveat in caveats(report):
        _say(console, f"! not verified: {caveat}", "  ", "yellow")
    console.print()


def _overview(console: Console, report: DryRunReport) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="ellipsis")
    for label, value in overview(report):
        grid.add_row(label, Text(value))
    console.print(grid)
    console.print()


def _statements(console: Console, report: DryRunReport) -> None:
    table = _table("Statements", ("#", "right"), ("line", "right"), ("statement", "left"), ("rows", "right"),
                   ("ms", "right"), ("locks held", "left"))  # fmt: skip
    # The statement is cut to fit, never wrapped; the locks wrap. Together they take what the other columns
    # leave (at most _OTHER_COLUMNS wide with the gaps), or rich would crop the table's right edge without a "…".
    locks = max(8, min(16, console.width - _OTHER_COLUMNS - 12))
    statement = table.columns[2]
    statement.no_wrap, statement.overflow = True, "ellipsis"
    statement.min_width = 12
    statement.max_width = max(12, min(console.width * 7 // 20, console.width - _OTHER_COLUMNS - locks))
    table.columns[5].min_width = locks
    for run in report.execution.runs:
        style = "red" if run.error else ("" if run.executed else "dim")
        rows = Text(rows_text(run), style="bold red" if run.error else style)
        time = milliseconds(run) if statement_ran(run) else ""
        more = " …" if "\n" in whole_statement(run) else ""  # the Markdown and HTML reports show all of it
        table.add_row(str(run.index), str(run.line), Text(run.text + more, style), rows, time,
                      Text(locks_text(run), style))  # fmt: skip
    console.print(table)
    for message in statement_messages(report):
        _say(console, message.text, "  ", "red" if message.error else "")
        for said in message.said:
            _say(console, said, "      ")
    console.print()


def _writes(console: Console, report: DryRunReport) -> None:
    rows = writes(report)
    if not rows:
        return
    table = _table("Rows written, per table", ("#", "right"), ("table", "left"), ("inserted", "right"),
                   ("updated", "right"), ("deleted", "right"))  # fmt: skip
    for index, activity in rows:
        table.add_row(str(index), Text(activity.table), *(f"{n:,}" for n in written_counts(activity)))
    console.print(table)
    _say(console, WRITES_FOOTNOTE, "  ", "dim")
    console.print()


def _locks(console: Console, report: DryRunReport) -> None:
    spans = lock_spans(report)
    if not spans:
        return
    console.print(Text("Locks held until the transaction ends", style="bold"))
    for span in spans:
        line = render_text.wrapped(f"{span.mode} {span.table}: {lock_hold_text(span)}", "  ", console.width - 1)
        line.stylize("bold red" if span.mode == "ACCESS EXCLUSIVE" else "bold", 2, 2 + len(span.mode))
        render_text.print_cut(console, line)
    _say(console, LOCKS_FOOTNOTE, "  ", "dim")
    console.print()


def _tables(console: Console, report: DryRunReport) -> None:
    table = _table("Table changes", ("table", "left"), ("rows before -> after", "right"), ("delta", "right"),
                   ("changed", "left"))  # fmt: skip
    for delta in report.tables:
        changed = change_text(delta)
        changed_cell = Text(changed, "bold" * (changed != "no"))
        table.add_row(Text(delta.table), rows_change(delta), delta_text(delta), changed_cell)
    console.print(table if report.tables else Text("Table changes: no table was measured", style="bold"))
    console.print()


def _schema(console: Console, report: DryRunReport) -> None:
    if not report.schema_changes:
        console.print(Text("Schema changes: none", style="bold"))
    else:
        table = _table("Schema changes", ("change", "left"), ("name", "left"), ("before", "left"), ("after", "left"))
        for change in report.schema_changes:
            table.add_row(change.change, Text(change.name), Text(change.before or ""), Text(change.after or ""))
        console.print(table)
    console.print()


def _checks(console: Console, report: DryRunReport) -> None:
    console.print(Text("Integrity checks and invariants", style="bold"))
    if not report.checks:
        console.print("  none ran: the script did not get that far" if report.execution.failed else "  none")
    for gate in report.checks:
        status = gate_status(gate)
        console.print(Text.assemble("  ", (f"{status:<19}", _STATUS_STYLE[status]), " ", (gate.result.name, "bold")))
        if gate.result.detail:
            _say(console, gate.result.detail, " " * 24, "dim" if status == "PASS" else "")
        if not gate.result.passed and gate.result.sample:
            console.print(Text(" " * 24 + sample_heading(gate.result.sample)))
            for line in sample_lines(gate.result):
                render_text.print_cut(console, Text(" " * 26 + line))
    console.print()


def _findings(console: Console, report: DryRunReport) -> None:
    console.print(Text("Dry-run findings (thresholds on the real data)", style="bold"))
    file = report.check.files[0] if report.check.files else None
    for finding in report.findings:
        if file is not None and finding.line:
            color = console.color_system is not None
            shown = render_text.render_finding(file.script.text, finding, color, console.width)
            console.print(Text.from_ansi(shown), no_wrap=True, overflow="ignore", end="")
        else:
            _say(console, f"{finding.rule_id} {finding.severity.value}: {finding.message}", "  ")
    if not report.findings:
        console.print("  none\n")
    console.print(Text("Policy check", style="bold"))
    console.print("  " + render_text._summary(report.check))
    for finding in report.check.blocking:
        _say(console, f"{finding.path}:{finding.line} {finding.rule_id} {finding.message}", "  ")
    console.print()


def _estimates(console: Console, report: DryRunReport) -> None:
    if not report.estimates:
        return
    table = _table("Estimated production time", ("#", "right"), ("sandbox", "right"), ("x scale", "right"),
                   ("production", "right"))  # fmt: skip
    for e in report.estimates:
        table.add_row(str(e.statement), duration(e.sandbox_seconds), f"x {scale_text(e.scale)}",
                      duration(e.production_seconds))  # fmt: skip
    console.print(table)
    _say(console, estimate_total(report), "  ")
    console.print()


def _table(title: str, *columns: tuple[str, str]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)  # fmt: skip
    for header, justify in columns:
        # Only text columns wrap, at spaces; a word too long for its column ends in "…", never broken in two.
        # A number is never cut: "1…" would mislead.
        table.add_column(header, justify=justify, no_wrap=justify == "right", overflow="ellipsis")  # type: ignore[arg-type]
    return table


def _say(console: Console, text: str, indent: str, style: str = "") -> None:
    """Wrapped at spaces here, not by rich, so that continuation lines keep the indent; a word longer than a
    line (a long name) is cut with "…", never broken in the middle."""
    render_text.print_cut(console, render_text.wrapped(text, indent, console.width - 1, style))


# -- wording shared with the Markdown and HTML renderers --

LOCKS_FOOTNOTE = "A real run holds them longer: through the integrity gate, until COMMIT. Others wait all along."
WRITES_FOOTNOTE = "Counted by the server, whoever wrote them: the statement, a trigger, a rule or a cascade."


def overview(report: DryRunReport) -> list[tuple[str, str]]:
    execution, runs = report.execution, report.execution.runs
    ran = f"{sum(r.executed for r in runs)} of {plural(len(runs), 'statement')} ran in {duration(execution.seconds)}"
    if execution.failed:
        skipped = sum(1 for r in runs if not r.executed and not r.error)
        ran += f"; #{execution.failed.index} failed" + (f", {skipped} not run after it" if skipped else "")
    if execution.committed_steps:
        ran += f"; {plural(execution.committed_steps, 'transaction')} committed early, before a separate step"
    scope = f"scoped: {plural(len(report.tables_copied), 'table')} copied" if report.scoped else "full: all data"
    if report.scoped and report.tables_copied:
        scope += f" ({', '.join(report.tables_copied)})"
    return [("Target", f"{report.target} (server {report.server_version}){target_access(report)}"),
            ("Sandbox", f"{report.sandbox} (provider: {report.provider})"),
            ("Scope", f"{scope}, copied in {duration(report.copy_seconds)}"), ("Execution", ran)]  # fmt: skip


def target_access(report: DryRunReport) -> str:
    return "; target opened read-only" if report.target_read_only else ""


@dataclass(frozen=True)
class Message:
    """An error or notice of a statement, and what the server said along with it (detail, hint, context)."""

    text: str
    error: bool
    said: tuple[str, ...] = ()


def statement_messages(report: DryRunReport) -> list[Message]:
    messages = []
    for run in report.execution.runs:
        if run.error:
            text = f"#{run.index} line {run.error_line or run.line} error: {run.error}"
            messages.append(Message(text, True, server_said(run)))
        messages += [Message(f"#{run.index} line {run.line} notice: {notice}", False) for notice in run.notices]
    return messages


def server_said(run: StatementRun) -> tuple[str, ...]:
    """The error's DETAIL and HINT, then its CONTEXT a line per level (innermost first), each labelled."""
    said = [f"{label}: {text}" for label, text in (("detail", run.error_detail), ("hint", run.error_hint)) if text]
    return (*said, *(f"context: {line}" for line in (run.error_context or "").splitlines() if line.strip()))


def writes(report: DryRunReport) -> list[tuple[int, TableActivity]]:
    """(statement, what it did to a table) for every table a statement wrote rows of, whoever wrote them."""
    return [(run.index, activity) for run in report.execution.runs for activity in run.activity if activity.wrote]


def written_counts(activity: TableActivity) -> tuple[int, int, int]:
    return activity.inserted, activity.updated, activity.deleted


def whole_statement(run: StatementRun) -> str:
    return run.sql or run.text


def statement_is_long(run: StatementRun) -> bool:
    """Long enough to be shown collapsed, under the table, rather than in its cell."""
    sql = whole_statement(run)
    return sql.count("\n") >= LONG_STATEMENT_LINES or len(sql) > LONG_STATEMENT_CHARACTERS


def statement_on_one_line(run: StatementRun) -> str:
    """A short statement in a table cell: its lines joined by single spaces (their indentation dropped)."""
    return re.sub(r"[ \t]*\n\s*", " ", whole_statement(run))


def rows_text(run: StatementRun) -> str:
    if run.error:
        return "FAILED"
    if not run.executed:
        return "not run"
    return "" if run.rows is None else f"{run.rows:,}"


def milliseconds(run: StatementRun) -> str:
    return f"{run.seconds * 1000:,.1f}"


def locks_text(run: StatementRun) -> str:
    if run.separate_step:
        return "own step (autocommit)"
    held = sorted(run.locks, key=lambda lock: (-lock.rank, lock.table))
    return ", ".join(f"{lock.mode} {lock.table}" for lock in held)


def lock_hold_text(span: LockSpan) -> str:
    return f"from #{span.statement} at {duration(span.start)}, held {duration(span.end - span.start)}"


def rows_change(delta: TableDelta) -> str:
    before = "absent" if delta.rows_before is None else f"{delta.rows_before:,}"
    after = "dropped" if delta.rows_after is None else f"{delta.rows_after:,}"
    return f"{before} -> {after}"


def delta_text(delta: TableDelta) -> str:
    return f"{delta.delta:+,d}" if delta.delta else "0"


def change_text(delta: TableDelta) -> str:
    if not delta.changed:
        return "no"
    if delta.rows_before is None or delta.rows_after is None:
        return "created" if delta.rows_before is None else "dropped"
    return "yes" if delta.delta else "yes (same row count, other content)"


def sample_heading(sample: Sequence[Sequence[Any]]) -> str:
    shown = min(len(sample), SAMPLE_ROWS)
    return f"first {plural(shown, 'offending row')}:"


def sample_lines(result: CheckResult) -> list[str]:
    """The first SAMPLE_ROWS offending rows, each as `name=value, ...`."""
    return [row_text(result.columns, row) for row in result.sample[:SAMPLE_ROWS]]


def estimate_total(report: DryRunReport) -> str:
    sandbox = sum(e.sandbox_seconds for e in report.estimates)
    production = sum(e.production_seconds for e in report.estimates)
    return (f"Total: about {duration(production)} on production ({duration(sandbox)} in the sandbox, scaled by "
            "each statement's rows); lock waits on a busy server come on top.")  # fmt: skip


def scale_text(scale: float) -> str:
    return f"{scale:,.2f}".rstrip("0").rstrip(".")


def duration(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
