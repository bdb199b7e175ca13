"""`dbguard run`: the script on the real database, under guard."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dbguard.cli.backup import DEFAULT_BACKUP_DIR, ManifestKeyOption
from dbguard.cli.base import (
    OutputOption,
    PgBinOption,
    PolicyOption,
    SandboxKind,
    SandboxUrlOption,
    TargetOption,
    app,
    emit,
    policy_from,
    stderr,
    writable_output,
)
from dbguard.config import discover
from dbguard.errors import UsageError
from dbguard.inputs import read_sources


class RunFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command("run")
def run_command(
    script: Annotated[str, typer.Argument(help="The SQL script; - reads stdin (then --yes is needed).")],
    db: TargetOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Run without asking (CI); without a terminal it is required."),
    policy: PolicyOption = None,
    skip_dry_run: bool = typer.Option(
        False, "--skip-dry-run", help="No dry-run first; only where the policy allows it ([run] allow_skip_dry_run)."
    ),
    quick_verify: bool = typer.Option(
        False, "--quick-verify",
        help="Verify the backup by sha256 and pg_restore --list, without the restore test; only where the policy "
        "allows it ([run] allow_quick_verify).",
    ),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False,
        help="Where the dry-run and the backup's restore test happen: server, local or container.",
    ),
    sandbox_url: SandboxUrlOption = None,
    pg_bin: PgBinOption = None,
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    manifest_key: ManifestKeyOption = None,
    journal: Path | None = typer.Option(
        None, "--journal", envvar="DBGUARD_JOURNAL", help="The audit journal (default: .dbguard/journal.jsonl)."
    ),
    output_format: RunFormat = typer.Option(
        RunFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format."
    ),
    output: OutputOption = None,
) -> None:
    """Run the script on the database, guarded: check, dry-run in a sandbox, show the plan and ask, take a
    verified backup inside the run's own transaction, run the script, check integrity, then COMMIT, or
    ROLLBACK and prove it. Everything goes to the audit journal.

    Where the policy sets [run] require_approvals, the script needs that many reviewers' `dbguard approve`
    of its current bytes (not yours: the OS user running it does not count), checked before the target is
    opened.

    Exits 0 when committed, 1 when blocked before anything ran (findings, too few approvals, dry-run, not
    confirmed), 2 on a usage error (no terminal and no --yes; a script from stdin where approvals are
    required), 3 when the script or its approvals file cannot be read (a corrupt one is refused whole), 4
    when the database cannot be reached or another run holds it,
    5 when the backup failed (nothing ran), 6 when rolled back and the rollback proved, 7 when the outcome
    is unknown (a person is needed), 130/143 when interrupted (rolled back first).

    Examples:

    \b
        dbguard run scripts/fix_stock.sql --db postgresql://postgres@127.0.0.1:5432/warehouse
        dbguard run scripts/fix_stock.sql --db $URL --yes --format json
        dbguard run - --db sqlite:///warehouse.db --yes < fix.sql
    """
    from dbguard.backup.store import BackupStore
    from dbguard.journal import Journal, journal_path
    from dbguard.pipeline.run import RunOptions, run_script
    from dbguard.report.run import json as run_json
    from dbguard.report.run import text as run_text
    from dbguard.report.run.model import RunPlan
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()  # SIGTERM unwinds like Ctrl-C: the statement is cancelled, rolled back, proved
    writable_output(output)  # before the database is touched: a committed run must not end in "cannot write"
    if not yes and not sys.stdin.isatty():
        raise UsageError("no terminal to confirm the plan on: pass --yes to run without asking")
    config = discover()
    sources = list(read_sources([script]))
    if len(sources) != 1:
        raise UsageError(f"run takes one script; {script} holds {len(sources)} (run them one by one)")
    (source,) = sources
    target_url = DatabaseUrl.parse(db)
    key = manifest_key or (Path(config.manifest_key) if config.manifest_key else None)
    store = BackupStore(backup_dir or Path(config.backup_dir or DEFAULT_BACKUP_DIR), key)
    options = RunOptions(skip_dry_run=skip_dry_run, quick_verify=quick_verify, provider=sandbox.value,
                         sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None,
                         pg_bin=pg_bin)  # fmt: skip

    with stderr.status("run") as status:
        def say(message: str) -> None:
            status.update(message)
            stderr.print(f"[dim]dbguard:[/dim] {escape(message)}", markup=True, highlight=False, soft_wrap=True)

        def ask(plan: RunPlan) -> bool:
            status.stop()  # the spinner would draw over the plan and the question
            try:
                stderr.print(run_text.render_plan(plan, color=stderr.is_terminal), end="", soft_wrap=True)
                return yes or typer.confirm("Run it?", default=False, err=True)
            finally:
                status.start()

        report = run_script(source, target_url, policy_from(policy, config), store,
                            Journal(journal_path(journal, config)), ask, options, progress=say)  # fmt: skip
    color = output is None and sys.stdout.isatty() and output_format is RunFormat.TEXT
    text = run_text.render(report, color=color) if output_format is RunFormat.TEXT else run_json.render(report)
    emit(text, output)
    if report.exit_code:
        raise typer.Exit(report.exit_code)
