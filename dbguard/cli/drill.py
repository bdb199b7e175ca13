"""`dbguard drill`: a timed restore drill of the newest (or a chosen) backup, into a sandbox."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape

from dbguard.cli.backup import ManifestKeyOption, backup_directory
from dbguard.cli.base import (
    OutputOption,
    PgBinOption,
    PolicyOption,
    SandboxKind,
    SandboxUrlOption,
    app,
    emit,
    policy_from,
    stderr,
    writable_output,
)
from dbguard.config import discover
from dbguard.journal.journal import DEFAULT_JOURNAL_PATH


class DrillFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


@app.command("drill")
def drill_command(
    db: str | None = typer.Option(
        None, "--db", envvar="DBGUARD_DB", help="The database whose newest full backup is drilled (never written)."
    ),
    backup_id: str | None = typer.Option(
        None, "--backup", help="Drill this backup instead: an id from `dbguard backup list`, or its start (unique)."
    ),
    policy: PolicyOption = None,
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER,
        "--sandbox",
        case_sensitive=False,
        help="Where the backup is restored: server (a scratch database on --sandbox-url, else the --db server, "
        "else the backup's own), local or container. SQLite: always a scratch file.",
    ),
    sandbox_url: SandboxUrlOption = None,
    pg_bin: PgBinOption = None,
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    manifest_key: ManifestKeyOption = None,
    journal: Path | None = typer.Option(
        None, "--journal", envvar="DBGUARD_JOURNAL", help=f"The audit journal (default: {DEFAULT_JOURNAL_PATH})."
    ),
    output_format: DrillFormat = typer.Option(
        DrillFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format: text, markdown, json."
    ),
    output: OutputOption = None,
) -> None:
    """Restore the newest full backup of --db (or the --backup chosen) into a sandbox, never into the
    database itself, and time it (a newer table-scoped backup, such as run's, is passed over and named):
    the restored tables' row counts and hashes must equal the manifest's, and the policy's invariants must
    hold on the restored data. Reports the RTO (seconds from the start of the
    restore to verified data) and the RPO (the backup's age, in seconds: what restoring it now would lose),
    and appends the result to the journal. The sandbox is removed afterwards, on Ctrl-C too.

    Exits 0 when the drill passed, 2 on a usage error (an unknown or ambiguous id, a backup of another
    database), 4 when the sandbox cannot be made, 5 when the drill failed (the dump is changed or does not
    restore, counts or hashes differ, an invariant is broken on the restored data), when there is no
    backup of --db, or when the restore could not finish or the journal cannot be written; 130 when
    interrupted.

    Examples:

    \b
        dbguard drill --db $URL                         # timed restore drill from the newest backup
        dbguard drill --backup 2026-11-27T10:00 --sandbox local --format markdown
        dbguard drill --db $URL --policy policies/warehouse.toml --format json -o drill.json
    """
    from dbguard.backup.store import BackupStore
    from dbguard.journal import Journal, journal_path
    writable_output(output)
    from dbguard.pipeline.drill import DrillFailed, DrillOptions, drill
    from dbguard.report.drill import json as drill_json
    from dbguard.report.drill import markdown as drill_markdown
    from dbguard.report.drill import text as drill_text
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()
    config = discover()
    key = manifest_key or (Path(config.manifest_key) if config.manifest_key else None)
    store = BackupStore(backup_directory(backup_dir, config), key)
    options = DrillOptions(provider=sandbox.value, sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None,
                           pg_bin=pg_bin)  # fmt: skip
    with stderr.status("drill") as status:

        def say(message: str) -> None:
            status.update(message)
            stderr.print(f"[dim]dbguard:[/dim] {escape(message)}", markup=True, highlight=False, soft_wrap=True)

        report = drill(DatabaseUrl.parse(db) if db else None, store, policy_from(policy, config), backup_id=backup_id,
                       journal=Journal(journal_path(journal, config)), options=options, progress=say)  # fmt: skip
    renderers = {DrillFormat.TEXT: drill_text.render, DrillFormat.MARKDOWN: drill_markdown.render,
                 DrillFormat.JSON: drill_json.render}  # fmt: skip
    emit(renderers[output_format](report), output)
    if not report.passed:  # the report is out; the reason goes to stderr as well, for cron's mail
        more = f" (and {len(report.reasons) - 1} more)" if len(report.reasons) > 1 else ""
        raise DrillFailed(f"drill of backup {report.backup_id} FAILED: {report.reasons[0]}{more}")
