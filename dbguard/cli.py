"""The command line: a thin typer layer over the library. Only this module turns errors into exit codes."""

from __future__ import annotations

import difflib
import importlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from dbguard import __version__
from dbguard.check import check_sources
from dbguard.config import Config, discover
from dbguard.dialects import Dialect
from dbguard.errors import EXIT_FINDINGS, EXIT_INTERRUPTED, BackupFailure, DbguardError, UsageError
from dbguard.inputs import read_sources
from dbguard.policy.policy import Policy, load_policy
from dbguard.report.model import CheckReport
from dbguard.rules import RULES, Rule, Severity

stderr = Console(stderr=True, highlight=False)


class _Guarded(TyperGroup):
    """Turns every DbguardError into its one-line message and exit code, for every command at once."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DbguardError as error:
            stderr.print(Text.assemble(("dbguard: error: ", "bold red"), str(error)), soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("dbguard: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=_Guarded,
    help="Make database maintenance scripts safe to run: parse, check, dry-run, back up, run under guard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals can hold passwords
    add_completion=False,
    rich_markup_mode="rich",
)
rules_app = typer.Typer(cls=_Guarded, help="List and explain the safety rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
backup_app = typer.Typer(
    cls=_Guarded,
    help="Take a verified backup (no subcommand), or list and verify backups.",
    invoke_without_command=True,
)
app.add_typer(backup_app, name="backup")

DEFAULT_BACKUP_DIR = ".dbguard/backups"


def _backup_dir(option: Path | None, config: Config) -> Path:
    return option or Path(config.backup_dir or DEFAULT_BACKUP_DIR)


def _backup_progress() -> Any:
    return stderr.status("backup")


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    JUNIT = "junit"
    GITHUB = "github"


class FailOn(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dbguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """dbguard checks maintenance SQL before it runs. Exit codes: 0 ok, 1 blocking findings, 2 usage or
    config error, 3 unreadable or unparseable input, 4 connection or sandbox failure, 5 backup failed,
    6 rolled back, 7 a person is needed, 130 interrupted."""


@app.command()
def check(
    paths: list[str] = typer.Argument(..., help="SQL files or directories of .sql files; - reads stdin."),
    dialect: str | None = typer.Option(
        None, "--dialect", "-d", envvar="DBGUARD_DIALECT", help="postgres (default), sqlite or mysql."
    ),
    policy: str | None = typer.Option(
        None,
        "--policy",
        "-p",
        envvar="DBGUARD_POLICY",
        help="Policy TOML file, or a built-in one: default, strict.",
    ),
    output_format: Format | None = typer.Option(
        None, "--format", "-f", envvar="DBGUARD_FORMAT", case_sensitive=False, help="Report format (default: text)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file, not stdout."),
    fail_on: FailOn | None = typer.Option(
        None,
        "--fail-on",
        envvar="DBGUARD_FAIL_ON",
        case_sensitive=False,
        help="Lowest severity that exits 1 (default: the policy's fail_on, error).",
    ),
) -> None:
    """Check scripts against the policy's safety rules, offline. Exits 1 on blocking findings.

    [bold]Examples:[/]

        dbguard check scripts/fix_stock.sql
        dbguard check scripts/ --format sarif --output results.sarif
        cat x.sql | dbguard check - --dialect sqlite
    """
    config = discover()
    chosen_dialect = Dialect.parse(dialect or config.dialect or "postgres")
    chosen_policy = _policy(policy, config)
    chosen_format = _format(output_format, config)
    threshold = _fail_on(fail_on, config)
    sources = list(read_sources(paths))
    with _progress(len(sources)) as advance:
        report = check_sources(sources, chosen_dialect, chosen_policy, on_file=advance)
    if threshold is not None:
        report = CheckReport(policy=report.policy, files=report.files, fail_on=threshold)
    _emit(_render(report, chosen_format, output), output)
    if report.blocking:
        raise typer.Exit(EXIT_FINDINGS)


class DryRunFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"


class SandboxKind(StrEnum):
    SERVER = "server"
    LOCAL = "local"
    CONTAINER = "container"


@app.command("dry-run")
def dry_run_command(
    script: str = typer.Argument(..., help="The SQL script; - reads stdin."),
    db: str = typer.Option(
        ..., "--db", envvar="DBGUARD_DB", help="Target URL: postgresql://user@host:5432/db or sqlite:///file.db."
    ),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER,
        "--sandbox",
        case_sensitive=False,
        help="Where the copy lives: server (a scratch database on the target's server, or on --sandbox-url), "
        "local (a throwaway initdb cluster) or container (testcontainers; needs Docker).",
    ),
    sandbox_url: str | None = typer.Option(
        None,
        "--sandbox-url",
        envvar="DBGUARD_SANDBOX_URL",
        help="Server for the scratch database, e.g. postgresql://postgres@staging:5432/postgres.",
    ),
    full: bool = typer.Option(False, "--full", help="Copy every table's data, not only what the script touches."),
    pg_bin: Path | None = typer.Option(
        None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_dump, pg_restore, initdb and pg_ctl."
    ),
    policy: str | None = typer.Option(None, "--policy", "-p", envvar="DBGUARD_POLICY", help="Policy TOML file."),
    output_format: DryRunFormat = typer.Option(
        DryRunFormat.TEXT, "--format", "-f", case_sensitive=False, help="Report format."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file, not stdout."),
) -> None:
    """Run the script on a scoped copy of the real data in a sandbox, and report what it did: rows and
    locks per statement, data and schema differences, integrity checks. The target is only read.
    Exits 0 when SAFE, 1 when BLOCKED, 4 when the database or the sandbox cannot be reached.

    [bold]Examples:[/]

        dbguard dry-run scripts/fix_stock.sql --db postgresql://postgres@127.0.0.1:5432/warehouse
        dbguard dry-run scripts/fix_stock.sql --db sqlite:///warehouse.db --format markdown > report.md
        dbguard dry-run x.sql --db $URL --sandbox local
    """
    from dbguard.dryrun import DryRunOptions, dry_run
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()  # SIGTERM unwinds like Ctrl-C, so the sandbox is always removed
    config = discover()
    (source,) = list(read_sources([script]))
    target_url = DatabaseUrl.parse(db)
    options = DryRunOptions(
        provider=sandbox.value,
        sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None,
        full=full,
        pg_bin=pg_bin,
    )
    with stderr.status("dry-run") as status:
        report = dry_run(
            source, target_url, _policy(policy, config), options,
            progress=lambda message: status.update(message),
            on_statement=lambda run: status.update(f"statement {run.index} (line {run.line}): {run.text[:60]}"),
        )  # fmt: skip
    module = importlib.import_module(f"dbguard.report.dryrun_{output_format.value}")
    color = output is None and sys.stdout.isatty() and output_format is DryRunFormat.TEXT
    text = module.render(report, color=color) if output_format is DryRunFormat.TEXT else module.render(report)
    _emit(str(text), output)
    if report.verdict != "SAFE":
        raise typer.Exit(EXIT_FINDINGS)


@backup_app.callback()
def backup(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", envvar="DBGUARD_DB", help="The database to back up."),
    tables: str | None = typer.Option(
        None, "--tables", help="Comma-separated tables (PostgreSQL): the whole schema, but only their rows."
    ),
    backup_dir: Path | None = typer.Option(
        None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help=f"Backup store (default: {DEFAULT_BACKUP_DIR})."
    ),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Restore-test the backup right away."),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the restore test happens."
    ),
    sandbox_url: str | None = typer.Option(
        None, "--sandbox-url", envvar="DBGUARD_SANDBOX_URL", help="Server for the restore test's scratch database."
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_dump."),
) -> None:
    """Back up a database from one consistent snapshot, with row counts and content hashes taken in that
    same snapshot, then prove the backup by restoring it into a sandbox and comparing. Exits 0 when the
    backup is VERIFIED, 5 when it is not.

    [bold]Examples:[/]

        dbguard backup --db $URL                         # full logical backup
        dbguard backup --db $URL --tables stock,orders   # scoped
        dbguard backup list
        dbguard backup verify 2026-11-27T10-00-00.000000Z-stock
    """
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise UsageError("dbguard backup needs --db URL (or DBGUARD_DB); see dbguard backup --help")
    from dbguard.backup.store import BackupStore
    from dbguard.backup.take import take_backup
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()
    store = BackupStore(_backup_dir(backup_dir, discover()))
    chosen = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    with _backup_progress() as status:
        manifest = take_backup(
            DatabaseUrl.parse(db), store, chosen, verify=verify, provider=sandbox.value,
            sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None, pg_bin=pg_bin,
            progress=lambda message: status.update(message),
        )  # fmt: skip
    _print_manifest(manifest, store.directory)


@backup_app.command("list")
def backup_list(
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
) -> None:
    """List the backups in the store, newest first, with their verification status.

    [bold]Example:[/]

        dbguard backup list --backup-dir /var/backups/dbguard
    """
    from dbguard.backup.store import BackupStore

    store = BackupStore(_backup_dir(backup_dir, discover()))
    entries = store.list()
    if not entries:
        typer.echo(f"no backups in {store.directory}")
        return
    table = Table("id", "status", "tables", "size", "target", box=None, pad_edge=False)
    for entry in entries:
        if isinstance(entry, tuple):
            table.add_row(entry[0], "UNREADABLE", "", "", entry[1])
        else:
            size = f"{entry.dump_bytes / 1024 / 1024:.1f} MiB"
            table.add_row(entry.id, entry.verification.status, str(len(entry.tables)), size, entry.target)
    Console(highlight=False, width=max(140, Console().width)).print(table)


@backup_app.command("verify")
def backup_verify(
    backup_id: str = typer.Argument(..., help="A backup id from `dbguard backup list`."),
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the restore test happens."
    ),
    sandbox_url: str | None = typer.Option(
        None,
        "--sandbox-url",
        envvar="DBGUARD_SANDBOX_URL",
        help="Server for the scratch database (default: the backup's own server, password from PGPASSWORD).",
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_restore."),
) -> None:
    """Restore-test an existing backup again (a scheduled restore drill): sha256 and size, pg_restore
    --list, a restore into a sandbox, and row counts and hashes equal to the manifest's. Exits 5 if not.

    [bold]Example:[/]

        dbguard backup verify 2026-11-27T10-00-00.000000Z-stock --sandbox local
    """
    from dbguard.backup.store import BackupStore
    from dbguard.backup.verify import verify_backup
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()
    store = BackupStore(_backup_dir(backup_dir, discover()))
    manifest = store.load(backup_id)
    provider = sandbox.value if manifest.dialect == "postgres" else "sqlite"
    with _backup_progress() as status:
        manifest = verify_backup(
            store, manifest, provider=provider, server_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None,
            pg_bin=pg_bin, progress=lambda message: status.update(message),
        )  # fmt: skip
    _print_manifest(manifest, store.directory)


def _print_manifest(manifest: Any, directory: Path) -> None:
    from dbguard.backup.store import VERIFIED

    verification = manifest.verification
    typer.echo(f"backup {manifest.id}: {verification.status}")
    typer.echo(f"  target    {manifest.target} ({manifest.dialect} {manifest.server_version})")
    dump = directory / manifest.dump_file
    typer.echo(f"  dump      {dump} ({manifest.dump_bytes} bytes, sha256 {manifest.dump_sha256[:16]}...)")
    rows = sum(image.rows for image in manifest.tables.values())
    typer.echo(
        f"  tables    {len(manifest.tables)} ({manifest.scope}), {rows} rows, snapshot {manifest.snapshot or '-'}"
    )
    if verification.method:
        typer.echo(f"  checked   {verification.method}, at {verification.at}")
    if verification.status != VERIFIED:
        reason = verification.reason or "not verified (--no-verify): run `dbguard backup verify`"
        if verification.reason:
            raise BackupFailure(f"backup {manifest.id} FAILED verification: {reason}")
        typer.echo(f"  note      {reason}")


@app.command("restore")
def restore_command(
    backup_id: str = typer.Argument(..., help="A backup id from `dbguard backup list`."),
    db: str | None = typer.Option(
        None, "--db", help="Put the --tables back into this database (no DBGUARD_DB: say where, explicitly)."
    ),
    tables: str | None = typer.Option(
        None, "--tables", help="Comma-separated tables to put back, among the backup's tables (required with --db)."
    ),
    into: str | None = typer.Option(
        None, "--into", help="Restore the whole backup into another database: an empty one, or a new SQLite file."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace the tables' rows without asking."),
    backup_dir: Path | None = typer.Option(None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help="Backup store."),
    sandbox: SandboxKind = typer.Option(
        SandboxKind.SERVER, "--sandbox", case_sensitive=False, help="Where the dump is unpacked before its rows move."
    ),
    sandbox_url: str | None = typer.Option(
        None, "--sandbox-url", envvar="DBGUARD_SANDBOX_URL", help="Server for that scratch database."
    ),
    pg_bin: Path | None = typer.Option(None, "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_restore."),
) -> None:
    """Put back the exact content of chosen tables in one transaction (--db with --tables), or restore the
    whole backup into another, empty database (--into). Counts and hashes must equal the backup's, and
    foreign keys must hold, before anything is committed. Exits 0 when restored, 5 when not (nothing changed).

    [bold]Examples:[/]

        dbguard restore 2026-11-27T10-00-00.000000Z-stock --db $URL --tables stock
        dbguard restore 2026-11-27T10-00-00.000000Z-stock --db $URL --tables stock,reservations --yes
        dbguard restore 2026-11-27T10-00-00.000000Z-stock --into postgresql://postgres@127.0.0.1:5432/scratch
    """
    from dbguard.backup.restore import current_stats, resolve_tables, restore_into, restore_tables
    from dbguard.backup.store import BackupStore
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    if (db is None) == (into is None):
        raise UsageError("dbguard restore needs one of --db URL --tables a,b (tables back in place) "
                         "or --into URL (the whole backup into another database)")  # fmt: skip
    if into is not None and tables:
        raise UsageError("--tables goes with --db: --into restores the whole backup")
    install_sigterm_handler()
    store = BackupStore(_backup_dir(backup_dir, discover()))
    manifest = store.load(backup_id)
    if into is not None:
        with stderr.status("restore") as status:
            result = restore_into(store, manifest, DatabaseUrl.parse(into), pg_bin=pg_bin,
                                  progress=lambda message: status.update(message))  # fmt: skip
    else:
        assert db is not None
        if not tables:
            raise UsageError(f"--db needs --tables, among the backup's tables: {', '.join(manifest.tables)}")
        target_url = DatabaseUrl.parse(db)
        chosen = resolve_tables(manifest, tables.split(","))
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"restore replaces every row of {', '.join(chosen)} in {target_url}: "
                                 "pass --yes to confirm non-interactively")  # fmt: skip
            typer.echo(f"backup {manifest.id} ({manifest.verification.status}, {manifest.created_at}) -> {target_url}")
            for table, now in current_stats(manifest, target_url, chosen).items():
                image = manifest.tables[table]
                same = now is not None and (now.rows, now.hash) == (image.rows, image.hash)
                state = "no such table" if now is None else f"{now.rows} rows" + (" (unchanged)" if same else "")
                typer.echo(f"  {table}: {state} now -> {image.rows} rows from the backup")
            typer.confirm(f"Replace the rows of {len(chosen)} table(s)?", abort=True)
        with stderr.status("restore") as status:
            result = restore_tables(
                store, manifest, target_url, chosen, provider=sandbox.value if manifest.dialect == "postgres"
                else "sqlite", sandbox_url=DatabaseUrl.parse(sandbox_url) if sandbox_url else None, pg_bin=pg_bin,
                progress=lambda message: status.update(message),
            )  # fmt: skip
    for table, restored in result.tables.items():
        verdict = "matches the backup" if restored.matches else "DIFFERS from the backup"
        typer.echo(f"restored {table}: {restored.rows} rows, hash {restored.hash} {verdict}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"backup {result.backup_id} restored into {result.target} in {result.seconds:.1f} s")


@rules_app.command("list")
def rules_list(
    policy: str | None = typer.Option(
        None, "--policy", "-p", envvar="DBGUARD_POLICY", help="Show severities as this policy sets them."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in the README)."),
) -> None:
    """List every rule with its severity, dialects and summary.

    [bold]Example:[/]

        dbguard rules list --policy policies/strict.toml
    """
    chosen = _policy(policy, discover())
    if markdown:
        typer.echo(rules_markdown(chosen), nl=False)
        return
    table = Table("rule", "severity", "dialects", "summary", box=None, pad_edge=False)
    for rule in sorted(RULES.values(), key=lambda r: r.id):
        table.add_row(rule.id, chosen.severity_of(rule.id).value, _where(rule), rule.summary)
    Console(highlight=False, width=max(120, Console().width)).print(table)


@rules_app.command("explain")
def rules_explain(rule_id: str = typer.Argument(..., help="A rule id, as `dbguard rules list` shows.")) -> None:
    """Explain one rule: the problem, a bad example and the safer way.

    [bold]Example:[/]

        dbguard rules explain ban-delete-without-where
    """
    rule = RULES.get(rule_id)
    if rule is None:
        close = difflib.get_close_matches(rule_id, RULES, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see `dbguard rules list`"
        raise UsageError(f"unknown rule {rule_id!r}{hint}")
    typer.echo(f"{rule.id} ({rule.severity.value}, {_where(rule)})\n{rule.summary}\n\n{rule.doc}")


def rules_markdown(policy: Policy) -> str:
    lines = ["| rule | default severity | dialects | what it catches |", "|---|---|---|---|"]
    for rule in sorted(RULES.values(), key=lambda r: r.id):
        lines.append(f"| `{rule.id}` | {policy.severity_of(rule.id).value} | {_where(rule)} | {rule.summary} |")
    return "\n".join(lines) + "\n"


def _where(rule: Rule) -> str:
    dialects = "all" if rule.dialects == frozenset(Dialect) else ", ".join(sorted(d.value for d in rule.dialects))
    return f"{dialects} (dry-run)" if rule.stage == "dry-run" else dialects


def _policy(option: str | None, config: Config) -> Policy:
    return load_policy(option or config.policy)


def _format(option: Format | None, config: Config) -> Format:
    value = option or config.format or Format.TEXT
    try:
        return Format(str(value).lower())
    except ValueError:
        raise UsageError(
            f"unknown format {value!r} in {config.source}; choose one of: {', '.join(f.value for f in Format)}"
        ) from None


def _fail_on(option: FailOn | None, config: Config) -> Severity | None:
    value = option or config.fail_on
    if value is None:
        return None
    if str(value) == "never":
        return Severity.OFF
    try:
        return Severity(str(value))
    except ValueError:
        raise UsageError(f"fail_on must be error, warning or never, not {value!r}") from None


def _render(report: CheckReport, output_format: Format, output: Path | None) -> str:
    module = importlib.import_module(f"dbguard.report.render_{output_format.value}")
    if output_format is Format.TEXT:
        color = output is None and sys.stdout.isatty()
        return str(module.render(report, color=color))
    return str(module.render(report))


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, "utf-8")
    except OSError as error:
        raise UsageError(f"cannot write the report to {output}: {error.strerror}") from None
    stderr.print(f"report written to {output}")


class _progress:
    """A progress bar on stderr for many files; silent for one file or when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.bar = Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=stderr,
            transient=True,
            disable=total < 2 or not stderr.is_terminal,
        )
        self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> Any:
        self.bar.start()
        return lambda name: self.bar.update(self.task, advance=1, description=name)

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def main() -> None:
    app()
