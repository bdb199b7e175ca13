"""`dbguard journal` (list, show, verify, repair): reading the audit journal that `run` writes."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from dbguard.cli.base import Guarded, app, stderr
from dbguard.config import discover
from dbguard.errors import EXIT_FINDINGS, InputError, UsageError
from dbguard.journal import DEFAULT_JOURNAL_PATH, Journal, Record, Verification, journal_path
from dbguard.journal.entries import display_orders
from dbguard.journal.runs import find_run, group_runs

journal_app = typer.Typer(
    cls=Guarded,
    no_args_is_help=True,
    help="Read and verify the audit journal that `run` writes (list, show, verify, repair). Exits 0 when the "
    "journal verifies, 1 when it does not, 2 on a usage error (an unknown or ambiguous run id), 3 when there is "
    "no journal where `verify` looks, 5 when it cannot be read or written.",
)
app.add_typer(journal_app, name="journal")

_JOURNAL_HELP = f"The journal file (default: journal_path in the config file, else {DEFAULT_JOURNAL_PATH})."


class ShowFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _journal(option: Path | None) -> Journal:
    return Journal(journal_path(option, discover()))


def _fail_if_broken(verification: Verification, journal: Journal) -> None:
    """After printing what could be read: a journal that does not verify makes the command exit 1."""
    if verification.ok:
        return
    count = len(verification.problems)
    stderr.print(f"dbguard: warning: journal {journal.path} does not verify ({count} problem{'s' * (count != 1)}, "
                 f"first: {verification.problems[0]}): see `dbguard journal verify`", soft_wrap=True)  # fmt: skip
    raise typer.Exit(EXIT_FINDINGS)


@journal_app.command("list")
def journal_list(
    journal: Path | None = typer.Option(None, "--journal", envvar="DBGUARD_JOURNAL", help=_JOURNAL_HELP),
) -> None:
    """List the runs in the journal, newest first: who ran which script on which target, and how it
    ended. A run with an intent and no outcome shows NO OUTCOME (crashed?): it crashed, or it is still
    running. Exits 1 if the journal does not verify (after listing what it could read).

    Example:

    \b
        dbguard journal list --journal /var/lib/dbguard/journal.jsonl
    """
    chosen = _journal(journal)
    verification = chosen.verify()
    runs = group_runs(verification.records)
    if not runs:
        typer.echo(f"no runs in {chosen.path}" if chosen.path.exists() else f"no journal at {chosen.path}")
    else:
        rows = [("run", "started", "user@host", "target", "script", "result")]
        for run in reversed(runs):
            who = f"{run.get('user') or '?'}@{run.get('host') or '?'}"
            started = run.started_at[:19] + "Z"  # to the second
            rows.append((run.run_id, started, who, str(run.get("target") or "-"), str(run.get("script_path") or "-"),
                         run.result))  # fmt: skip
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    _fail_if_broken(verification, chosen)


@journal_app.command("show")
def journal_show(
    run_id: str = typer.Argument(..., help="A run id, or a prefix of one that names a single run."),
    journal: Path | None = typer.Option(None, "--journal", envvar="DBGUARD_JOURNAL", help=_JOURNAL_HELP),
    output_format: ShowFormat = typer.Option(ShowFormat.TEXT, "--format", "-f", case_sensitive=False),
) -> None:
    """Print every record of one run, in the order written: the intent, each attempt, the outcome.
    An unknown or ambiguous id exits 2 and names the candidates; a journal that does not verify exits 1
    (after printing).

    Examples:

    \b
        dbguard journal show 3f9a
        dbguard journal show 3f9a0c1d2e4b5a6c --format json
    """
    chosen = _journal(journal)
    verification = chosen.verify()
    run = find_run(group_runs(verification.records), run_id, str(chosen.path))
    if output_format is ShowFormat.JSON:
        body = {"run_id": run.run_id, "result": run.result, "records": [r.to_dict() for r in run.records]}
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(f"run {run.run_id}: {run.result}")
        for record in run.records:
            typer.echo("")
            typer.echo(_render(record))
    _fail_if_broken(verification, chosen)


@journal_app.command("verify")
def journal_verify(
    journal: Path | None = typer.Option(None, "--journal", envvar="DBGUARD_JOURNAL", help=_JOURNAL_HELP),
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="A head sha256 printed by an earlier verify: it must still be in the chain."
    ),
) -> None:
    """Check the whole hash chain: each record against its own sha256, the seq numbers, and each record's
    link to the one before. Names every record that was edited, deleted, inserted or reordered, and a
    torn last line. Exits 0 when the journal is intact, 1 when it is not, 3 when there is no journal file.

    A chain cannot show that its last records were deleted: keep the printed head sha256 elsewhere and
    pass it back with --expect-head.

    Examples:

    \b
        dbguard journal verify
        dbguard journal verify --expect-head 9c1e...   # the head from yesterday's verify
    """
    if expect_head is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expect_head):
        raise UsageError(f"--expect-head takes a whole sha256 (64 hex digits), as verify prints it: {expect_head!r}")
    chosen = _journal(journal)
    if not chosen.path.exists():  # "OK" for a path with a typo in it would vouch for nothing
        raise InputError(f"no journal at {chosen.path}: nothing has been run there, or --journal names another file")
    verification = chosen.verify(expect_head.lower() if expect_head else None)
    if verification.ok:
        head = verification.head
        if head is None:
            typer.echo(f"journal OK: no records in {chosen.path}")
            return
        runs = len(group_runs(verification.records))
        typer.echo(f"journal OK: {len(verification.records)} records, {runs} runs, head sha256 {head.sha256} "
                   f"(seq {head.seq})")  # fmt: skip
        return
    count = len(verification.problems)
    typer.echo(f"journal {chosen.path} is BROKEN: {count} problem{'s' * (count != 1)}")
    for problem in verification.problems:
        typer.echo(f"  {problem}")
    raise typer.Exit(EXIT_FINDINGS)


@journal_app.command("repair")
def journal_repair(
    journal: Path | None = typer.Option(None, "--journal", envvar="DBGUARD_JOURNAL", help=_JOURNAL_HELP),
) -> None:
    """Set a torn last line aside (a record whose write a crash or a full disk cut short), so that runs
    can journal again. The bytes are kept in <journal>.torn-<time>, and a `repair` record says what was
    removed. Nothing else is ever changed: any other problem exits 5 and is left for a person.

    Example:

    \b
        dbguard journal repair
    """
    chosen = _journal(journal)
    repaired = chosen.repair()
    if repaired is None:
        typer.echo(f"journal {chosen.path}: nothing to repair")
        return
    record, saved = repaired
    typer.echo(f"set aside {record.fields['removed_bytes']} torn bytes in {saved}; recorded as seq {record.seq} "
               f"(run {record.run_id})")  # fmt: skip


def _render(record: Record) -> str:
    lines = [f"{record.kind} (line {record.line}, seq {record.seq}) at {record.at}",
             f"  sha256 {record.sha256}, prev {record.prev_sha256}"]  # fmt: skip
    lines += _render_fields(dict(record.fields), record.kind, "  ")
    return "\n".join(lines)


def _ordered(fields: dict[str, Any], shape: str) -> list[tuple[str, Any]]:
    """Fields in the order their entry class declares them (see `display_orders`), unknown ones last."""
    order = display_orders().get(shape, ())
    return sorted(fields.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0]))


def _render_fields(fields: dict[str, Any], shape: str, indent: str) -> list[str]:
    width = max((len(key) for key in fields), default=0)
    lines = []
    for key, value in _ordered(fields, shape):
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}")
            lines += _render_fields(value, key, indent + "  ")
        elif isinstance(value, list) and value:
            lines.append(f"{indent}{key}")
            lines += [f"{indent}  - {_inline(item, key)}" for item in value]
        else:
            lines.append(f"{indent}{key:<{width}}  {_inline(value, key)}")
    return lines


def _inline(value: Any, shape: str) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}={_inline(item, key)}" for key, item in _ordered(value, shape) if item is not None)
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item, shape) for item in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
