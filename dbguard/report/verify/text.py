"""`dbguard verify` for the terminal: the verdict first, then every check that did not pass, then a
table of all checks, then the backup. Pure: a VerifyReport in, text out."""

from __future__ import annotations

from io import StringIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbguard.monitor.model import BackupFreshness, CheckOutcome, Status, Verdict, VerifyReport
from dbguard.report.check.text import plural
from dbguard.report.dryrun.text import duration
from dbguard.report.printable import printable
from dbguard.targets.model import row_text

_VERDICT_STYLE = {Verdict.OK: "bold green", Verdict.VIOLATIONS: "bold red", Verdict.BACKUP_STALE: "bold red",
                  Verdict.INCOMPLETE: "bold yellow"}  # fmt: skip
_STATUS_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.SKIPPED: "yellow", Status.INCOMPLETE: "yellow"}
_PRODUCT = {"postgres": "PostgreSQL", "sqlite": "SQLite"}
_STATUS_TEXT = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.SKIPPED: "SKIPPED", Status.INCOMPLETE: "INCOMPLETE"}


def render(report: VerifyReport, color: bool = False, width: int = 100) -> str:
    report = printable(report)  # names from the database never steer the terminal
    out = StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color, highlight=False, emoji=False,
                      markup=False, color_system="standard" if color else None)  # fmt: skip
    console.print(Text.assemble((report.verdict.value, _VERDICT_STYLE[report.verdict]), "  ", summary(report)),
                  soft_wrap=True)  # fmt: skip
    server = f"{_PRODUCT.get(report.dialect, report.dialect)} {report.server_version}"
    console.print(f"target   {report.target} ({server}), policy {report.policy}, "
                  f"{duration(report.seconds)}", soft_wrap=True)  # fmt: skip
    if report.sample_percent is not None and report.dialect == "sqlite":  # SQLite cannot read a sample of pages
        console.print("sample   quick_check instead of integrity_check: it does not check that every index matches "
                      "its table; the row-by-row checks read every row", soft_wrap=True)  # fmt: skip
    elif report.sample_percent is not None:
        console.print(f"sample   {report.sample_percent:g}% of each table's pages in the row-by-row checks: a "
                      "violation elsewhere is not seen", soft_wrap=True)  # fmt: skip
    for outcome in report.outcomes:
        if outcome.status in (Status.FAIL, Status.INCOMPLETE):
            _problem(console, outcome)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in ("status", "check", "subject", "found", "time"):
        subject = name == "subject"  # the one column that folds: a constraint's whole name is what to act on
        table.add_column(name, justify="right" if name in ("found", "time") else "left", no_wrap=not subject,
                         overflow="fold" if subject else "ellipsis", max_width=max(20, width - 48) if subject else None)
    for outcome in report.outcomes:
        found = "" if outcome.violations is None else str(outcome.violations)
        status = _STATUS_TEXT[outcome.status] + (" (sample)" if outcome.sampled_percent is not None else "")
        table.add_row(Text(status, _STATUS_STYLE[outcome.status]), outcome.check, outcome.subject, found,
                      duration(outcome.seconds))  # fmt: skip
    console.print()
    console.print(table)
    if report.backup is not None:
        console.print()
        for line in backup_lines(report.backup):
            console.print(line, soft_wrap=True)
    return out.getvalue()


def summary(report: VerifyReport) -> str:
    parts = [f"{report.count(Status.PASS)} passed"]
    for status, word in ((Status.FAIL, "failed"), (Status.INCOMPLETE, "incomplete"), (Status.SKIPPED, "skipped")):
        if report.count(status):
            parts.append(f"{report.count(status)} {word}")
    text = f"{plural(len(report.outcomes), 'check')}: {', '.join(parts)}"
    if report.sampled:
        text += f" (row-by-row checks on a {report.sample_percent:g}% sample)"
    if report.backup is not None and report.backup.stale:
        text += "; no fresh verified backup"
    return f"{text}; exit {report.exit_code}"


def _problem(console: Console, outcome: CheckOutcome) -> None:
    console.print()
    label = "FAIL" if outcome.status is Status.FAIL else "INCOMPLETE"
    console.print(Text.assemble((label, _STATUS_STYLE[outcome.status]), f"  {outcome.check} {outcome.subject}"),
                  soft_wrap=True)  # fmt: skip
    console.print(f"  {outcome.detail}", soft_wrap=True)
    if outcome.sample:
        console.print(f"  first {plural(len(outcome.sample), 'offending row')}:")
        for row in outcome.sample:
            console.print(f"    {row_text(outcome.columns, row)}", soft_wrap=True)


def backup_lines(backup: BackupFreshness) -> list[str]:
    threshold = "" if backup.max_age_seconds is None else f" (max {age_text(backup.max_age_seconds)})"
    if backup.newest_verified_id is None:
        first = f"backup   no verified full backup of this database in {backup.store}{threshold}"
    else:
        first = (f"backup   newest verified: {backup.newest_verified_id}, {age_text(backup.age_seconds or 0)} old"
                 f"{threshold}")  # fmt: skip
    if backup.stale:
        first += ": STALE"
    elif backup.stale is False:
        first += ": fresh"
    return [first, *(f"         {problem}" for problem in backup.problems)]


def age_text(seconds: float) -> str:
    """`3d 4h`, `26h 0m`, `12m 5s`: an age a person reads at a glance."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
