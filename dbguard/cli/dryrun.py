"""`dbguard dry-run`: the script on a scoped copy of the real data."""

from __future__ import annotations

import importlib
import sys
from enum import StrEnum
from typing import Annotated

import typer

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
from dbguard.errors import EXIT_FINDINGS, UsageError
from dbguard.inputs import read_sources


class DryRunFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


@app.command("dry-run")
def dry_run_command(
    script: Annotated[str, typer.Argument(help="The SQL script; - reads stdin.")],
    db: TargetOption,
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER,
        "--sandbox",
        case_sensitive=False,
        help="Where the copy lives: server (a scratch database on the target's server, or on --sandbox-url), "
        "local (a throwaway initdb cluster) or container (testcontainers; needs Docker).",
    ),
    sandbox_url: SandboxUrlOption = None,
    full: bool = typer.Option(False, "--full", help="Copy every table's data, not only what the script touches."),
    pg_bin: PgBinOption = None,
    policy: PolicyOption = None,
    output_format: DryRunFormat = typer.Option(
        DryRunFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format."
    ),
    output: OutputOption = None,
) -> None:
    """Run the script on a scoped copy of the real data in a sandbox, and report what it did: rows and
    locks per statement, data and schema differences, integrity checks. The target is only read.
    Exits 0 when SAFE, 1 when BLOCKED, 4 when the database or the sandbox cannot be reached.

    Examples:

    \b
        dbguard dry-run scripts/fix_stock.sql --db postgresql://postgres@127.0.0.1:5432/warehouse
        dbguard dry-run scripts/fix_stock.sql --db sqlite:///warehouse.db --format markdown > report.md
        dbguard dry-run x.sql --db $URL --sandbox local
    """
    from dbguard.cli.cleanup import mention_stale_leftovers
    from dbguard.pipeline.dryrun import DryRunOptions, dry_run
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()  # SIGTERM unwinds like Ctrl-C, so the sandbox is always removed
    writable_output(output)
    config = discover()
    sources = list(read_sources([script]))
    if len(sources) != 1:
        raise UsageError(f"dry-run takes one script; {script} holds {len(sources)} (run them one by one)")
    (source,) = sources
    target_url = DatabaseUrl.parse(db)
    options = DryRunOptions(
        provider=sandbox.value,
        sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None,
        full=full,
        pg_bin=pg_bin,
    )
    mention_stale_leftovers(options.sandbox_url or target_url)
    with stderr.status("dry-run") as status:
        report = dry_run(
            source, target_url, policy_from(policy, config), options,
            progress=lambda message: status.update(message),
            on_statement=lambda run: status.update(f"statement {run.index} (line {run.line}): {run.text[:60]}"),
        )  # fmt: skip
    module = importlib.import_module(f"dbguard.report.dryrun.{output_format.value}")
    color = output is None and sys.stdout.isatty() and output_format is DryRunFormat.TEXT
    text = module.render(report, color=color) if output_format is DryRunFormat.TEXT else module.render(report)
    emit(str(text), output)
    if report.verdict != "SAFE":
        raise typer.Exit(EXIT_FINDINGS)
