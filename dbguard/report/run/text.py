"""`dbguard run` for the terminal: the plan before the confirmation, and the report after the run, verdict
first. Pure: a RunPlan or RunReport in, text out."""

from __future__ import annotations

from io import StringIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbguard.report.check import text as render_text
from dbguard.report.dryrun.json import gate_status
from dbguard.report.dryrun.text import plural, rows_text, sample_heading, sample_lines, server_said
from dbguard.report.printable import printable
from dbguard.report.run.model import RunPlan, RunReport, StepResult
from dbguard.targets.model import CheckResult

_VERDICT_STYLE = {"COMMITTED": "bold green", "BLOCKED": "bold red", "ROLLED BACK": "bold yellow",
                  "PARTLY COMMITTED": "bold red", "OUTCOME UNKNOWN": "bold red",
                  "NOT EXECUTED": "bold yellow"}  # fmt: skip
_MAX_WIDTH = {"lock": 22}  # the widest a column may be; the statement takes what the others leave
_STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIPPED": "yellow", "FAIL (pre-existing)": "yellow"}


def _console(out: StringIO, color: bool, width: int) -> Console:
    # markup=False: a name like "[/x]" from the script is text, not a style (or a MarkupError).
    return Console(file=out, width=width, force_terminal=color, no_color=not color, highlight=False, emoji=False,
                   markup=False, color_system="standard" if color else None)  # fmt: skip


def render_plan(plan: RunPlan, color: bool = False, width: int = 100) -> str:
    plan = printable(plan)  # the script's control characters never reach the terminal
    out = StringIO()
    console = _console(out, color, width)
    console.print(Text(f"Plan for {plan.target}", style="bold"))
    console.print(f"  dry-run      {plan.dry_run}", soft_wrap=True)
    manual = f" (step {', '.join(map(str, plan.non_transactional_steps))} outside a transaction)" if (
        plan.non_transactional_steps) else ""  # fmt: skip
    console.print(f"  steps        {plan.steps}, each one transaction with its own gate{manual}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name, justify in (("#", "right"), ("line", "right"), ("step", "right"), ("statement", "left"),
                          ("lock", "left"), ("dry-run rows", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         min_width=len(name) if name != "statement" else 20,
                         max_width=max(20, width - 62) if name == "statement" else _MAX_WIDTH.get(name))
    for s in plan.statements:
        rows = "" if s.expected_rows is None else str(s.expected_rows)
        table.add_row(str(s.index), str(s.line), str(s.step), s.text, s.lock or "", rows)
    console.print(table)
    console.print(f"  writes       {', '.join(plan.tables_written) or 'no existing table'}", soft_wrap=True)
    if plan.target.startswith("sqlite"):
        console.print("  backup       the whole database file; writers wait (BEGIN IMMEDIATE) until COMMIT")
    else:
        scope = ", ".join(plan.backup_tables) if plan.backup_tables else "the whole database"
        console.print(f"  backup       {scope}; locked EXCLUSIVE (writers wait) from the backup to COMMIT",
                      soft_wrap=True)
    console.print(f"  verification {plan.verification}")
    console.print(f"  timeouts     lock_timeout {plan.timeouts.lock_timeout}, statement_timeout "
                  f"{plan.timeouts.statement_timeout}, {plan.lock_retries} retries on a lock timeout")  # fmt: skip
    return out.getvalue()


def render(report: RunReport, color: bool = False, width: int = 100) -> str:
    report = printable(report)  # the script's, the server's and the rows' control characters never reach the terminal
    out = StringIO()
    console = _console(out, color, width)
    console.print(Text(f"{report.verdict}: {report.script} on {report.target}",
                       style=_VERDICT_STYLE.get(report.verdict, "bold")), soft_wrap=True)  # fmt: skip
    for reason in report.reasons:
        _say(console, f"- {reason}", "  ")
    if report.journaled:
        console.print(f"Run        {report.run_id} (dbguard journal show {report.run_id[:8]})", soft_wrap=True)
    if report.backup_id:
        console.print(f"Backup     {report.backup_id}", soft_wrap=True)
        _say(console, f"verified: {report.backup_verification}", " " * 11)
    for step in report.steps:
        _step(console, step)
    if report.restore_command:
        console.print(Text("Earlier steps stayed committed. To bring the data back:", style="bold"))
        console.print(f"  {report.restore_command}", soft_wrap=True)
    if report.notes:
        console.print(Text("Notes", style="bold"))
        for note in report.notes:
            _say(console, f"- {note}", "  ")
    if report.timings:
        _say(console, "Timings    " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in report.timings.items()),
             "")  # fmt: skip
    return out.getvalue()


def _step(console: Console, step: StepResult) -> None:
    kind = "" if step.transactional else ", outside a transaction"
    console.print(Text(f"Step {step.number} (line {step.first_line}{kind}): {step.transaction}, "
                       f"{plural(step.attempts, 'attempt')}", style="bold"))  # fmt: skip
    if step.execution is not None:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for name, justify in (("#", "right"), ("line", "right"), ("statement", "left"), ("rows", "right"),
                              ("ms", "right")):  # fmt: skip
            # the statement gives way, never the numbers
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                             min_width=len(name) if name != "statement" else 20,
                             max_width=max(20, console.width - 44) if name == "statement" else None)
        for run in step.execution.runs:
            table.add_row(str(run.index), str(run.line), run.text, rows_text(run), f"{run.seconds * 1000:.1f}")
        console.print(table)
        for run in step.execution.runs:
            if run.error:
                _say(console, f"#{run.index} line {run.error_line or run.line} error: {run.error}", "  ")
                for line in server_said(run):
                    _say(console, line, "    ")
    for wait in step.lock_waits:
        _say(console, f"waited {wait.seconds:.1f} s for a lock at statement {wait.statement}, held by pid(s) "
                      f"{', '.join(map(str, wait.blocking_pids))}", "  ")  # fmt: skip
    for gate in step.gates:
        _check(console, gate_status(gate), gate.result)
    if step.proof is not None:
        _check(console, "PASS" if step.proof.passed else "FAIL", step.proof)
    if step.resolved_by:
        _say(console, f"outcome learnt from the server: {step.resolved_by}", "  ")


def _check(console: Console, status: str, result: CheckResult) -> None:
    line = Text("  ")
    line.append(f"{status:<19} ", style=_STATUS_STYLE.get(status, ""))
    line.append(result.name)
    console.print(line)
    if result.detail:
        _say(console, result.detail, " " * 24)
    if not result.passed and result.sample:
        console.print(Text(" " * 24 + sample_heading(result.sample)))
        for row in sample_lines(result):
            render_text.print_cut(console, Text(" " * 26 + row))


def _say(console: Console, text: str, indent: str) -> None:
    """Wrapped at spaces, continuation lines indented; a word too long for a line is cut with "…"."""
    render_text.print_cut(console, render_text.wrapped(text, indent, console.width - 1, ""))
