"""`dbguard check`: the policy's rules over scripts, offline or against a database's table statistics (`--db`
read-only, or a `--stats` file from `dbguard stats`), in seven report formats."""

from __future__ import annotations

import importlib
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dbguard.cli.base import app, emit, policy_from, stderr
from dbguard.config import Config, discover
from dbguard.dialects import Dialect
from dbguard.errors import EXIT_FINDINGS, UsageError
from dbguard.inputs import read_sources
from dbguard.registry import Severity

if TYPE_CHECKING:
    from dbguard.catalog.snapshot import Catalog
    from dbguard.report.check.model import CheckReport


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    JUNIT = "junit"
    GITHUB = "github"
    GITLAB = "gitlab"


class FailOn(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NEVER = "never"
    OFF = "off"  # the policy's own word for never


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
    db: str | None = typer.Option(
        None, "--db", help="Read table sizes, columns and indexes from this database (read-only; no data)."
    ),
    stats: str | None = typer.Option(
        None, "--stats", envvar="DBGUARD_STATS", help="Read them from a file `dbguard stats` wrote (- reads stdin)."
    ),
) -> None:
    """Check scripts against the policy's safety rules. Exits 1 on blocking findings.

    Offline by default. With --db or --stats, findings know each table's size: a long lock or full scan
    on a table above the policy's large_table_rows is an error, below small_table_rows a warning; type
    changes are decided from the real column type; a name that is not in the database is a finding.

    Examples:

    \b
        dbguard check scripts/fix_stock.sql
        dbguard check scripts/ --format sarif --output results.sarif
        cat x.sql | dbguard check - --dialect sqlite
        dbguard check scripts/ --db postgresql://readonly@db1:5432/shop
        dbguard stats --db postgresql://readonly@db1:5432/shop > stats.json
        dbguard check scripts/ --stats stats.json
    """
    from dbguard.pipeline.check import check_sources  # the parsers load here, not for every command
    from dbguard.report.check.model import CheckReport

    config = discover()
    chosen = dialect or config.dialect
    chosen_dialect = Dialect.parse(chosen) if chosen else None  # None: each script's directive, else postgres
    chosen_policy = policy_from(policy, config)
    chosen_format = _format(output_format, config)
    threshold = _fail_on(fail_on, config)
    if db is not None and stats is not None:
        raise UsageError("give --db or --stats, not both: both are the same table statistics")
    if stats == "-" and "-" in paths:
        raise UsageError("--stats - and a script from - cannot both read stdin")
    sources = list(read_sources(paths))
    catalog = _catalog(db, stats)
    with _progress(len(sources)) as advance:
        report = check_sources(sources, chosen_dialect, chosen_policy, on_file=advance, catalog=catalog)
    if threshold is not None:
        report = CheckReport(policy=report.policy, files=report.files, fail_on=threshold)
    emit(_render(report, chosen_format, output), output)
    if report.blocking:
        raise typer.Exit(EXIT_FINDINGS)


def _catalog(db: str | None, stats: str | None) -> Catalog | None:
    """The table statistics to check against, if asked for: the database is opened read-only."""
    if stats is not None:
        from dbguard.catalog.read import load_stats

        return load_stats(stats)
    if db is not None:
        from dbguard.catalog.read import read_catalog  # the database driver loads only here
        from dbguard.targets.url import DatabaseUrl

        return read_catalog(DatabaseUrl.parse(db))
    return None


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
    if str(value) in ("never", "off"):
        return Severity.OFF
    try:
        return Severity(str(value))
    except ValueError:
        raise UsageError(f"fail_on must be error, warning, info or never, not {value!r}") from None


def _render(report: CheckReport, output_format: Format, output: Path | None) -> str:
    module = importlib.import_module(f"dbguard.report.check.{output_format.value}")
    if output_format is Format.TEXT:
        color = output is None and sys.stdout.isatty()
        return str(module.render(report, color=color))
    return str(module.render(report))


class _progress:
    """A progress bar on stderr for many files; none for one file or when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.bar: Any = None
        if total >= 2 and stderr.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # 25 ms: only to show

            self.bar = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), console=stderr, transient=True)  # fmt: skip
            self.task = self.bar.add_task("", total=total)

    def __enter__(self) -> Any:
        if self.bar is None:
            return lambda name: None
        self.bar.start()
        return lambda name: self.bar.update(self.task, advance=1, description=name)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
