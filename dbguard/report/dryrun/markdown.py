"""Markdown for a pull-request comment on a dry-run: the verdict first, then what the script did to a copy,
and last a reviewer's checklist (GitHub task-list items) drawn from the same report: each statement's rows
against the policy's thresholds, the locks taken and the longest hold, what a rollback cannot undo, and the
invariants with their results.

The timeline is a mermaid gantt chart, which GitHub renders. With `dateFormat x` a task's start and end are
integer milliseconds; a task line is `label :[crit, ]start, end`, and its label must not hold `:`, `#` or
`;` (the lexer ends the label, or starts a comment, there), so labels keep only plain characters.
"""

from __future__ import annotations

import html
import re
import shlex

from rich.text import Text

from dbguard.report.check import text as render_text
from dbguard.report.check.markdown import _code, _file_section, _inline, _longest_backtick_run, _row
from dbguard.report.check.model import FileReport
from dbguard.report.dryrun import text as words
from dbguard.report.dryrun.json import caveats, gate_status, lock_spans, script_path, statement_ran
from dbguard.report.dryrun.model import DryRunReport
from dbguard.report.printable import printable
from dbguard.sql.reach import beyond_the_database

_TABLE_RULE = {"left": "---", "right": "---:"}


def render(report: DryRunReport) -> str:
    report = printable(report)  # no control character or bidirectional override reaches the comment
    lines = [f"## dbguard dry-run: {report.verdict}", ""]
    lines += [f"- {_text(reason)}" for reason in report.blocking_reasons] or ["Nothing blocks this script."]
    if caveats(report):
        lines += ["", "**Not verified:**", "", *(f"- {_text(caveat)}" for caveat in caveats(report))]
    lines += ["", f"Dry-run of {_code(script_path(report) or 'the script')}:", ""]
    access = _text(words.target_access(report))
    lines += [f"- **Target:** {_code(report.target)} (server {_text(report.server_version)}){access}"]
    lines += [f"- **{label}:** {_text(value)}" for label, value in words.overview(report)[1:]]
    for section in (_statements, _writes, _timeline, _tables, _schema, _checks, _findings, _estimates, _notes,
                    _policy, _checklist):  # fmt: skip
        lines += section(report)
    return "\n".join(lines) + "\n"


def _statements(report: DryRunReport) -> list[str]:
    lines = _heading("Statements", ("#", "right"), ("Line", "right"), ("Statement", "left"), ("Rows", "right"),
                     ("ms", "right"), ("Locks held", "left"))  # fmt: skip
    long = [run for run in report.execution.runs if words.statement_is_long(run)]
    for run in report.execution.runs:
        rows = f"**{words.rows_text(run)}**" if run.error else words.rows_text(run)
        time = words.milliseconds(run) if statement_ran(run) else ""
        sql = f"{_code(run.text)} …" if run in long else _code(words.statement_on_one_line(run))
        lines.append(_row((str(run.index), str(run.line), sql, rows, time, _text(words.locks_text(run)))))
    for run in long:  # whole, collapsed under the table
        sql = words.whole_statement(run)
        fence = "`" * max(3, _longest_backtick_run(sql) + 1)
        length = words.plural(sql.count("\n") + 1, "line")
        summary = html.escape(f"Statement {run.index} (line {run.line}), {length}")
        lines += ["", f"<details><summary>{summary}</summary>", "", f"{fence}sql", sql, fence, "", "</details>"]
    messages = words.statement_messages(report)
    if messages:
        lines.append("")
    for message in messages:
        lines += [f"- {_text(message.text)}", *(f"  - {_text(said)}" for said in message.said)]
    return lines


def _writes(report: DryRunReport) -> list[str]:
    rows = words.writes(report)
    if not rows:
        return []
    lines = _heading("Rows written, per table", ("#", "right"), ("Table", "left"), ("Inserted", "right"),
                     ("Updated", "right"), ("Deleted", "right"))  # fmt: skip
    for index, activity in rows:
        lines.append(_row((str(index), _code(activity.table), *(f"{n:,}" for n in words.written_counts(activity)))))
    return [*lines, "", f"_{words.WRITES_FOOTNOTE}_"]


def _timeline(report: DryRunReport) -> list[str]:
    ran = [run for run in report.execution.runs if statement_ran(run)]
    if not ran:
        return []
    lines = [*_heading("Timeline"), "```mermaid", "gantt", "    title Statements and locks in the sandbox",
             "    dateFormat x", "    axisFormat %S.%L s", "    todayMarker off", "    section statements"]  # fmt: skip
    for run in ran:
        label = f"stmt {run.index} {run.kind}" + (" failed" if run.error else " (own step)" * run.separate_step)
        lines.append(_task(label, run.started, run.started + run.seconds, crit=False))
    spans = lock_spans(report)
    if spans:
        lines.append("    section locks held")
        lines += [_task(f"{s.mode} on {s.table}", s.start, s.end, s.mode == "ACCESS EXCLUSIVE") for s in spans]
    lines += ["```", ""]
    lines += [f"- {_code(s.mode)} on {_code(s.table)}: {_text(words.lock_hold_text(s))}" for s in spans]
    return [*lines, "", f"_{words.LOCKS_FOOTNOTE}_"] if spans else lines


def _task(label: str, start: float, end: float, crit: bool) -> str:
    first = round(start * 1000)
    last = max(round(end * 1000), first + 1)  # a bar of 0 ms would not show
    clean = " ".join(re.sub(r"[^\w .()/-]", " ", label).split()) or "task"
    return f"    {clean} :{'crit, ' if crit else ''}{first}, {last}"


def _tables(report: DryRunReport) -> list[str]:
    if not report.tables:
        return [*_heading("Data changes"), "No table was measured."]
    lines = _heading("Data changes", ("Table", "left"), ("Rows before → after", "right"), ("Delta", "right"),
                     ("Changed", "left"))  # fmt: skip
    for delta in report.tables:
        changed = words.change_text(delta)
        rows = words.rows_change(delta).replace("->", "→")
        changed = changed if changed == "no" else f"**{changed}**"
        lines.append(_row((_code(delta.table), rows, words.delta_text(delta), changed)))
    return lines


def _schema(report: DryRunReport) -> list[str]:
    if not report.schema_changes:
        return [*_heading("Schema changes"), "None."]
    lines = _heading("Schema changes", ("Change", "left"), ("Name", "left"), ("Before", "left"), ("After", "left"))
    for change in report.schema_changes:
        before, after = (_code(text) if text else "" for text in (change.before, change.after))
        lines.append(_row((change.change, _code(change.name), before, after)))
    return lines


def _checks(report: DryRunReport) -> list[str]:
    if not report.checks:
        none = "None ran: the script did not get that far." if report.execution.failed else "None."
        return [*_heading("Integrity checks and invariants"), none]
    lines = _heading("Integrity checks and invariants", ("Result", "left"), ("Check", "left"), ("Detail", "left"))
    for gate in report.checks:
        status = gate_status(gate)
        shown = f"**{status}**" if status == "FAIL" else status
        lines.append(_row((shown, _text(gate.result.name), _text(gate.result.detail))))
    for gate in report.checks:
        sample = gate.result.sample[: words.SAMPLE_ROWS]
        if gate.result.passed or not sample:
            continue
        text = "\n".join(words.sample_lines(gate.result))
        fence = "`" * max(3, _longest_backtick_run(text) + 1)
        summary = html.escape(f"{gate.result.name}: {words.sample_heading(sample).rstrip(':')}")
        lines += ["", f"<details><summary>{summary}</summary>", "", f"{fence}text", text, fence, "", "</details>"]
    return lines


def _findings(report: DryRunReport) -> list[str]:
    lines = _heading("Dry-run findings")
    if not report.findings or not report.check.files:
        return [*lines, "None." if not report.findings else "\n".join(_text(f.message) for f in report.findings)]
    source = report.check.files[0]
    own = FileReport(source.path, source.dialect, source.script, report.findings)
    return lines + _file_section(report.check, own)[2:]  # without its "### path" heading


def _estimates(report: DryRunReport) -> list[str]:
    if not report.estimates:
        return []
    lines = _heading("Estimated production time", ("#", "right"), ("Sandbox", "right"), ("x scale", "right"),
                     ("Production", "right"))  # fmt: skip
    for e in report.estimates:
        sandbox, production = words.duration(e.sandbox_seconds), words.duration(e.production_seconds)
        lines.append(_row((str(e.statement), sandbox, f"x {words.scale_text(e.scale)}", production)))
    return [*lines, "", _text(words.estimate_total(report))]


def _notes(report: DryRunReport) -> list[str]:
    return [*_heading("Notes"), *(f"- {_text(note)}" for note in report.notes)] if report.notes else []


def _policy(report: DryRunReport) -> list[str]:
    check = report.check
    summary = Text.from_markup(render_text._summary(check)).plain
    lines = [*_heading("Policy check"), f"Policy {_code(check.policy.name)}: {_text(summary)}"]
    for file in check.files:
        if file.findings:
            section = _file_section(check, file)
            lines += ["", *("#" + line if re.match(r"#{3,4} ", line) else line for line in section)]
    return lines


# What else a table lock blocks while it is held ("Table-level Locks" in the PostgreSQL docs).
_LOCK_BLOCKS = {
    "ACCESS SHARE": "blocks only ACCESS EXCLUSIVE (DDL, VACUUM FULL)",
    "ROW SHARE": "blocks EXCLUSIVE and ACCESS EXCLUSIVE",
    "ROW EXCLUSIVE": "blocks CREATE INDEX, SHARE locks and DDL; reads and writes go on",
    "SHARE UPDATE EXCLUSIVE": "blocks VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and DDL; reads and writes go on",
    "SHARE": "blocks every writer; readers go on",
    "SHARE ROW EXCLUSIVE": "blocks every writer; readers go on",
    "EXCLUSIVE": "blocks every writer and SELECT ... FOR UPDATE; plain readers go on",
    "ACCESS EXCLUSIVE": "blocks every reader and writer of the table",
}


def _checklist(report: DryRunReport) -> list[str]:
    """`## Reviewer's checklist`: an unticked task per thing a reviewer should confirm, from the report's data."""
    path = script_path(report)
    lines = ["", "## Reviewer's checklist", "",
             "Tick each item once you have checked it against the script and its ticket."]  # fmt: skip
    if report.verdict != "SAFE":
        lines += ["", f"- [ ] The dry-run is **{report.verdict}**: every reason at the top is resolved first."]
    for group in (_rows_to_check, _locks_to_check, _rollback_limits, _invariants_to_check, _waivers_to_check):
        lines += group(report)
    if path:
        command = f'dbguard approve {shlex.quote(path)} --reviewer "<your name>"'
        lines += ["", "When every item holds, sign off this exact version of the script (any later change voids it):",
                  "", "```sh", command, "```"]  # fmt: skip
    return lines


def _rows_to_check(report: DryRunReport) -> list[str]:
    limits = report.check.policy.thresholds
    lines = ["", f"**Rows**: the policy allows {limits.max_rows_affected:,} rows per statement and "
                 f"{limits.max_delete_percent:g}% of a table removed.", ""]  # fmt: skip
    for run in report.execution.runs:
        where = f"{_code('#' + str(run.index))} {run.kind}, line {run.line}"
        if run.error:
            lines.append(f"- [ ] {where}: **failed**: {_text(run.error)}")
        elif not run.executed:
            lines.append(f"- [ ] {where}: not run (the script stopped before it)")
        elif run.rows is not None or run.rows_written:
            rows = run.rows if run.rows is not None else run.rows_written
            judged = (f"**more than the {limits.max_rows_affected:,} allowed**" if rows > limits.max_rows_affected
                      else f"within the {limits.max_rows_affected:,} allowed")  # fmt: skip
            extra = (f" ({run.rows_written:,} written in every table, triggers, rules and cascades included)"
                     if run.rows_written > rows else "")  # fmt: skip
            lines.append(f"- [ ] {where}: {rows:,} row{'s' * (rows != 1)}{extra}, {judged}: is that what you expect?")
    for delta in report.tables:
        if not delta.changed:
            continue
        change = f"{_code(delta.table)}: {words.rows_change(delta).replace('->', '→')} rows"
        if delta.rows_before and delta.delta < 0:
            removed = 100.0 * -delta.delta / delta.rows_before
            over = removed > limits.max_delete_percent
            judged = (f"**more than the {limits.max_delete_percent:g}% allowed**" if over
                      else f"within the {limits.max_delete_percent:g}% allowed")  # fmt: skip
            change += f" ({removed:.1f}% removed, {judged})"
        elif delta.rows_before is None or delta.rows_after is None:
            change += f" ({words.change_text(delta)})"
        else:
            change += f" ({delta.delta:+,})" if delta.delta else " (same row count, other content)"
        lines.append(f"- [ ] {change}")
    return lines


def _locks_to_check(report: DryRunReport) -> list[str]:
    spans = lock_spans(report)
    lines = ["", "**Locks** (a real run holds each one until COMMIT, after the integrity gate):", ""]
    if not spans:
        sqlite = bool(report.check.files) and report.check.files[0].dialect.value == "sqlite"
        none = ("SQLite: the run holds the write lock on the whole database file (BEGIN IMMEDIATE) from the "
                "backup to COMMIT; other writers wait that long" if sqlite else
                "No table lock was recorded: confirm the script takes none you did not expect")  # fmt: skip
        return [*lines, f"- [ ] {none}"]
    longest = max(spans, key=lambda span: span.end - span.start)
    lines.append(f"- [ ] The longest hold: {_code(longest.mode)} on {_code(longest.table)}, "
                 f"{words.duration(longest.end - longest.start)} in the sandbox, from "
                 f"{_code('#' + str(longest.statement))}; production takes longer on more rows")  # fmt: skip
    for span in spans:
        blocks = _LOCK_BLOCKS.get(span.mode, "see the PostgreSQL docs on table-level locks")
        lines.append(f"- [ ] {_code(span.mode)} on {_code(span.table)} from {_code('#' + str(span.statement))}, "
                     f"held {words.duration(span.end - span.start)}: {blocks}")  # fmt: skip
    if report.estimates:
        estimate = words.estimate_total(report).removeprefix("Total: ")
        lines.append(f"- [ ] Estimated production time of the statements: {_text(estimate)}")
    return lines


def _rollback_limits(report: DryRunReport) -> list[str]:
    """What a ROLLBACK of the run does not give back: statements outside its transaction, effects beyond the
    database, sequences advanced, transactions committed early (the report's notes)."""
    lines = ["", "**What a rollback cannot undo:**", ""]
    items = [f"- [ ] {_code('#' + str(run.index))} {run.kind}, line {run.line}, runs in its own transaction "
             "(autocommit): a failure later does not undo it" for run in report.execution.runs if run.separate_step]
    for statement in report.check.files[0].script.statements if report.check.files else ():
        why = beyond_the_database(statement)
        if why is not None:
            items.append(f"- [ ] {_code('#' + str(statement.index))} {statement.kind}, line {statement.span.line}, "
                         f"{_text(why)}: beyond the database, no rollback reaches it (and the dry-run never ran it)")
    items += [f"- [ ] {_text(note)}" for note in report.notes]
    if not items:
        items = ["- [ ] Nothing found: no statement runs outside the transaction or reaches beyond the database, "
                 "no sequence moved"]  # fmt: skip
    return lines + items


def _invariants_to_check(report: DryRunReport) -> list[str]:
    policy = report.check.policy
    declared = {invariant.name for invariant in policy.invariants}
    lines = ["", "**Invariants and integrity checks:**", ""]
    if not declared:
        lines.append(f"- [ ] The policy {_code(policy.name)} declares no invariant: is there a condition this "
                     "script must keep (a quantity never negative, a total unchanged)? Add it under [[invariants]]")
    if not report.checks:
        return [*lines, "- [ ] None ran: the script did not get that far"]
    for gate in report.checks:
        what = "invariant" if gate.result.name in declared else "integrity check"
        status = gate_status(gate)
        shown = f"**{status}**" if status == "FAIL" else status
        detail = f": {_text(gate.result.detail)}" if gate.result.detail else ""
        lines.append(f"- [ ] {shown} {what} {_code(gate.result.name)}{detail}")
    return lines


def _waivers_to_check(report: DryRunReport) -> list[str]:
    waived = [f for file in report.check.files for f in file.findings if f.waived]
    if not waived:
        return []
    lines = ["", "**Waivers** (a finding let through with a reason):", ""]
    return lines + [f"- [ ] {_code(f.rule_id)} on line {f.line}: {_text(f.waived_reason or '')}" for f in waived]


def _text(text: str) -> str:
    """Free text on one line. `#12` in a comment links to issue 12 on GitHub, unless it is code."""
    return _inline(re.sub(r"(?<![\w`&])#(\d+)\b", r"`#\1`", text))


def _heading(title: str, *columns: tuple[str, str]) -> list[str]:
    """A section heading, then the head of its table if it has columns: (name, "left" or "right")."""
    lines = ["", f"### {title}", ""]
    if columns:
        lines += [_row(tuple(name for name, _ in columns)), "|" + "|".join(_TABLE_RULE[j] for _, j in columns) + "|"]
    return lines
