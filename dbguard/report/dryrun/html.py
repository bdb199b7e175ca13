"""The dry-run report as ONE self-contained HTML page: inline CSS, no scripts, no external assets.

Every value from the report goes through html.escape; only the markup written here is trusted, and a cell
that holds such markup is marked `_Html` so that the table helper knows not to escape it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from rich.text import Text

from dbguard.guard.execute import StatementRun
from dbguard.report.check import text as render_text
from dbguard.report.dryrun import text as words
from dbguard.report.dryrun.json import caveats, gate_status, lock_spans, script_path, statement_ran
from dbguard.report.dryrun.model import DryRunReport
from dbguard.report.printable import printable

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0 auto;
       max-width: 72rem; padding: 1.5rem; }
header { border-radius: 6px; padding: 1rem 1.25rem; color: #fff; }
header.safe { background: #1a7f37; } header.blocked { background: #cf222e; }
header h1 { margin: 0 0 .25rem; font-size: 1.6rem; } header p, header ul { margin: .25rem 0; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; margin-top: 1.75rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f6f8fa; padding: .5rem; margin: .25rem 0 0; overflow-x: auto; }
td pre { margin: 0; padding: 0 .25rem; } summary { cursor: pointer; }
.fail, .crit { color: #cf222e; font-weight: 600; } .pass { color: #1a7f37; } .warn { color: #9a6700; }
.muted { color: #656d76; }
"""
_STATUS_CLASS = {"PASS": "pass", "FAIL": "fail", "SKIPPED": "warn", "FAIL (pre-existing)": "warn"}


class _Html(str):
    """Markup written by this module: the one kind of cell that is not escaped."""


def render(report: DryRunReport) -> str:
    report = printable(report)  # html.escape leaves control characters and bidirectional overrides alone
    verdict, path = report.verdict, script_path(report) or "the script"
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>dbguard dry-run: {verdict}, {escape(path)}</title>", f"<style>{_CSS}</style>", "</head>",
             "<body>", f'<header class="{verdict.lower()}">', f"<h1>{verdict}</h1>",
             f"<p>dbguard dry-run of <code>{escape(path)}</code></p>", _list(report.blocking_reasons),
             _list(f"Not verified: {caveat}" for caveat in caveats(report)), "</header>"]  # fmt: skip
    overview = [(_Html(f"<th>{escape(label)}</th>"), value) for label, value in words.overview(report)]
    parts += _section("Overview", _table(("", ""), overview))
    parts += _section("Statements", _statements(report))
    if words.writes(report):
        parts += _section("Rows written, per table", _writes(report))
    spans = lock_spans(report)
    if spans:
        rows = [(_Html(_span("crit" * (s.mode == "ACCESS EXCLUSIVE"), s.mode)), s.table, words.lock_hold_text(s))
                for s in spans]  # fmt: skip
        footnote = f'<p class="muted">{escape(words.LOCKS_FOOTNOTE)}</p>'
        parts += _section("Locks held until the transaction ends", _table(("Lock", "Table", "Held"), rows) + footnote)
    tables = [(d.table, _num(words.rows_change(d)), _num(words.delta_text(d)), words.change_text(d))
              for d in report.tables]  # fmt: skip
    parts += _section("Table changes", _table(("Table", "Rows before → after", "Delta", "Changed"), tables))
    changes = [(c.change, c.name, c.before or "", c.after or "") for c in report.schema_changes]
    parts += _section("Schema changes", _table(("Change", "Name", "Before", "After"), changes))
    parts += _section("Integrity checks and invariants", _checks(report))
    parts += _section("Dry-run findings", _findings(report))
    parts += _section("Policy check", _policy(report))
    if report.estimates:
        estimates = [(_num(str(e.statement)), _num(words.duration(e.sandbox_seconds)),
                 _num(f"x {words.scale_text(e.scale)}"), _num(words.duration(e.production_seconds)))
                for e in report.estimates]  # fmt: skip
        table = _table(("#", "Sandbox", "x scale", "Production"), estimates)
        parts += _section("Estimated production time", table + f"<p>{escape(words.estimate_total(report))}</p>")
    if report.notes:
        parts += _section("Notes", _list(report.notes))
    return "\n".join([*parts, "</body>", "</html>"]) + "\n"


def _statements(report: DryRunReport) -> str:
    rows = []
    for run in report.execution.runs:
        time = _num(words.milliseconds(run) if statement_ran(run) else "")
        rows.append((_num(str(run.index)), _num(str(run.line)), _statement(run),
                     _num(words.rows_text(run), "fail" * bool(run.error)), time, words.locks_text(run)))  # fmt: skip
    table = _table(("#", "Line", "Statement", "Rows", "ms", "Locks held"), rows)
    items = [f"<li>{escape(m.text)}{_list(m.said)}</li>" for m in words.statement_messages(report)]
    return table + (f"<ul>{''.join(items)}</ul>" if items else "")


def _statement(run: StatementRun) -> _Html:
    """The whole statement: on its lines, and collapsed behind its first line when it is long."""
    sql = words.whole_statement(run)
    if words.statement_is_long(run):
        return _Html(f"<details><summary><code>{escape(run.text)}</code> …</summary><pre>{escape(sql)}</pre></details>")
    return _Html(f"<pre>{escape(sql)}</pre>") if "\n" in sql else _code(sql)


def _writes(report: DryRunReport) -> str:
    rows = [(_num(str(index)), activity.table, *(_num(f"{n:,}") for n in words.written_counts(activity)))
            for index, activity in words.writes(report)]  # fmt: skip
    note = f'<p class="muted">{escape(words.WRITES_FOOTNOTE)}</p>'
    return _table(("#", "Table", "Inserted", "Updated", "Deleted"), rows) + note


def _checks(report: DryRunReport) -> str:
    if not report.checks:
        return "<p>None ran: the script did not get that far.</p>" if report.execution.failed else "<p>None.</p>"
    rows = []
    for gate in report.checks:
        status, result = gate_status(gate), gate.result
        detail = escape(result.detail)
        sample = result.sample[: words.SAMPLE_ROWS]
        if sample and not result.passed:
            lines = "\n".join(escape(line) for line in words.sample_lines(result))
            detail += f'<br><span class="muted">{escape(words.sample_heading(sample))}</span><pre>{lines}</pre>'
        rows.append((_Html(_span(_STATUS_CLASS[status], status)), result.name, _Html(f"<td>{detail}</td>")))
    return _table(("Result", "Check", "Detail"), rows)


def _findings(report: DryRunReport) -> str:
    if not report.findings:
        return "<p>None.</p>"
    rows = [(f"{f.path}:{f.line}", f.severity.value + " (blocking)" * f.blocks(report.check.threshold),
             _code(f.rule_id), f.message, f.help) for f in report.findings]  # fmt: skip
    return _table(("Location", "Severity", "Rule", "Message", "Help"), rows)


def _policy(report: DryRunReport) -> str:
    summary = Text.from_markup(render_text._summary(report.check)).plain
    items = [f"{f.path}:{f.line} {f.rule_id} {f.message}" for f in report.check.blocking]
    return f"<p>{escape(summary)}</p>" + _list(items)


def _section(title: str, body: str) -> list[str]:
    return ["<section>", f"<h2>{escape(title)}</h2>", body, "</section>"]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells are text, escaped here, or _Html: a whole `<td>`/`<th>` when it starts with `<t`, else its content."""
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers) if any(headers) else ""
    body = "\n".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>\n{body}\n</tbody></table>"


def _cell(cell: str) -> str:
    if isinstance(cell, _Html):
        return cell if cell.startswith("<t") else f"<td>{cell}</td>"
    return f"<td>{escape(cell)}</td>"


def _num(text: str, css_class: str = "") -> _Html:
    return _Html(f'<td class="{" ".join(("num", css_class)).strip()}">{escape(text)}</td>')


def _code(text: str) -> _Html:
    return _Html(f"<code>{escape(text)}</code>")


def _span(css_class: str, text: str = "") -> str:
    return f'<span class="{css_class}">{escape(text)}</span>' if css_class else escape(text)


def _list(items: Iterable[str]) -> str:
    shown = [f"<li>{escape(item)}</li>" for item in items]
    return f"<ul>{''.join(shown)}</ul>" if shown else ""
