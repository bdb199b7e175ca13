"""`dbguard approve` and `dbguard approvals`: peer sign-off of a script, bound to its sha256."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dbguard.cli.base import OutputOption, app, emit, policy_from
from dbguard.config import discover

ScriptArgument = Annotated[Path, typer.Argument(help="The SQL script file (not -: a sign-off needs a file).",
                                                show_default=False)]  # fmt: skip


class ApprovalsFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command("approve")
def approve_command(
    script: ScriptArgument,
    reviewer: str = typer.Option(..., "--reviewer", "-r", help="Who signs off: the reviewer's name (one line)."),
    note: str = typer.Option("", "--note", "-n", help="What was reviewed, or a condition (one line)."),
    journal: Path | None = typer.Option(
        None,
        "--journal",
        envvar="DBGUARD_JOURNAL",
        help="Also append an 'approval' record to this audit journal (hash-chained, as run's records are).",
    ),
) -> None:
    """Record a reviewer's sign-off of the script as it is now: its sha256, who, when (UTC) and a note, in
    SCRIPT.approvals.json beside it (rewritten atomically). One changed byte of the script voids it. A
    policy's [run] require_approvals makes `dbguard run` refuse a script without that many distinct
    reviewers whose sign-off matches; the OS user running it does not count as one.

    With --journal (or DBGUARD_JOURNAL), the sign-off is also appended to that audit journal as an
    'approval' record of its own; a journal that does not verify or cannot be written stops it first.

    Exits 0 when recorded, 2 on a bad reviewer name or note (empty, a control character, too long), 3 when
    the script or its approvals file cannot be read (a corrupt approvals file is left as it is), 5 when the
    journal cannot be trusted or written (checked before anything is recorded).

    Example:

    \b
        dbguard approve scripts/fix_stock.sql --reviewer "Ana Lima" --note "rows match ticket OPS-112"
        dbguard approvals scripts/fix_stock.sql
    """
    from dbguard.errors import JournalFailure
    from dbguard.journal import Journal, new_run_id
    from dbguard.journal.entries import SignOff, Subject
    from dbguard.review.approvals import approvals_path, record_approval

    _no_stdin(script)
    audit = Journal(journal) if journal else None
    if audit is not None:  # before the sign-off is recorded: never one in the file that the journal lacks
        audit.ensure_writable()
        audit.trusted()
    approval = record_approval(script, reviewer, note, recorded_by=Subject.operator()["user"])
    if audit is not None:
        try:
            audit.append(new_run_id(), SignOff.from_approval(approval, str(script), str(approvals_path(script))))
        except JournalFailure as error:
            where = approvals_path(script)
            raise JournalFailure(f"the sign-off is in {where} but not in the journal: {error}") from None
    typer.echo(f"approved by {approval.reviewer} at {approval.approved_at}: {script} sha256 "
               f"{approval.script_sha256} (in {approvals_path(script)})")  # fmt: skip


@app.command("approvals")
def approvals_command(
    script: ScriptArgument,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            "-p",
            envvar="DBGUARD_POLICY",
            help="Also say whether the approvals meet this policy's [run] require_approvals for you (exit 1 if not).",
        ),
    ] = None,
    output_format: ApprovalsFormat = typer.Option(
        ApprovalsFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format."
    ),
    output: OutputOption = None,
) -> None:
    """List the script's approvals: reviewer, when, whether each still matches the script's current sha256
    (yes/no), who recorded it, and the note. With --policy (or a policy in dbguard.toml / DBGUARD_POLICY),
    also whether they meet its [run] require_approvals for a run by you, the OS user running this: you do
    not count as your own reviewer.

    Exits 0 when listed (with a policy: when its requirement is met), 1 when a policy was given and fewer
    distinct matching reviewers than it requires signed off, 2 on a usage error, 3 when the script or its
    approvals file cannot be read or the approvals file is corrupt.

    Example:

    \b
        dbguard approvals scripts/fix_stock.sql
        dbguard approvals scripts/fix_stock.sql --policy policies/prod.toml --format json
    """
    from dbguard.errors import EXIT_FINDINGS
    from dbguard.journal.entries import Subject
    from dbguard.report import approvals as render
    from dbguard.review.approvals import list_approvals

    _no_stdin(script)
    config = discover()
    chosen = policy or config.policy
    required = policy_from(chosen, config).run.require_approvals if chosen else None
    listing = list_approvals(script, required, Subject.operator()["user"])
    if output_format is ApprovalsFormat.JSON:
        text = render.render_json(listing)
    else:
        text = render.render_text(listing, color=output is None and sys.stdout.isatty())
    emit(text, output)
    if listing.count is not None and not listing.count.met:
        raise typer.Exit(EXIT_FINDINGS)


def _no_stdin(script: Path) -> None:
    from dbguard.errors import UsageError

    if str(script) == "-":
        raise UsageError("a sign-off is bound to a file: give the script's path, not - (stdin)")
