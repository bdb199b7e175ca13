"""The command line's frame: the app, the one place errors become exit codes, and what commands share.

The CLI is a thin typer layer over the library. Each group of commands has its own module here.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import UsageError as CommandLineError  # typer vendors click from 0.27 on
from typer.core import TyperGroup

from dbguard import __version__
from dbguard.config import Config
from dbguard.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, DbguardError, UsageError
from dbguard.policy.policy import Policy, load_policy

stderr = Console(stderr=True, highlight=False)


class Guarded(TyperGroup):
    """Turns every DbguardError into its one-line message and exit code, for every command at once."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DbguardError as error:
            from dbguard.report.printable import visible  # a file name may hold escape sequences

            stderr.print(Text.assemble(("dbguard: error: ", "bold red"), visible(_one_line(str(error)))),
                         soft_wrap=True)  # fmt: skip
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            stderr.print("dbguard: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # the reader went away (`| head`): it has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            raise typer.Exit(0) from None
        except CommandLineError as error:  # one line, like every other error (help is printed whole, as asked)
            if type(error).__name__ == "NoArgsIsHelpError":
                raise
            command = error.ctx.command_path if error.ctx else "dbguard"
            message = " ".join(error.format_message().replace("Value error, ", "").split())
            stderr.print(Text.assemble(("dbguard: error: ", "bold red"), message, f" (see {command} --help)"),
                         soft_wrap=True)  # fmt: skip
            raise typer.Exit(error.exit_code) from None
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):  # click handles its own
            raise
        except Exception as error:  # a bug: still one line, never a traceback (it could show a password)
            if os.environ.get("DBGUARD_DEBUG"):
                raise
            from dbguard.targets.url import mask

            message = f"internal error ({type(error).__name__}: {_one_line(mask(str(error)))}); DBGUARD_DEBUG=1 " \
                "shows where"
            from dbguard.report.printable import visible

            stderr.print(Text.assemble(("dbguard: ", "bold red"), visible(message)), soft_wrap=True)
            raise typer.Exit(EXIT_INTERNAL) from None


def _one_line(message: str) -> str:
    """A message that may carry a driver's DETAIL or HINT on lines of their own, on one line: errors are one
    line each, for a log or an alert to show whole."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


app = typer.Typer(
    cls=Guarded,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals can hold passwords
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: paragraphs reflow, \b keeps examples as written
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dbguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Make database maintenance scripts safe to run: check them against safety rules, dry-run them on a
    scoped copy of the real data, and take verified backups with no gap.

    Exit codes:

    \b
      0  ok                              4  connection or sandbox failure
      1  blocking findings, BLOCKED      5  backup or verification failed
      2  usage or configuration error    6  rolled back (the rollback proved)
      3  unreadable input                7  a person is needed
      8  verify: a check did not finish
       70  internal error (a bug)      130  interrupted (Ctrl-C); 143 on SIGTERM
    """


# Options that dry-run and run share, spelled and explained once.
TargetOption = Annotated[str, typer.Option(
    "--db", envvar="DBGUARD_DB", help="Target URL: postgresql://user@host:5432/db or sqlite:///file.db.")]
PolicyOption = Annotated[str | None, typer.Option(
    "--policy", "-p", envvar="DBGUARD_POLICY", help="Policy TOML file, or a built-in one: default, strict.")]
SandboxUrlOption = Annotated[str | None, typer.Option(
    "--sandbox-url", envvar="DBGUARD_SANDBOX_URL",
    help="Server for the scratch databases, e.g. postgresql://postgres@staging:5432/postgres.")]
PgBinOption = Annotated[Path | None, typer.Option(
    "--pg-bin", envvar="DBGUARD_PG_BIN", help="Directory of pg_dump, pg_restore, initdb and pg_ctl.")]
OutputOption = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the report to this file, not stdout.")]  # fmt: skip


class SandboxKind(StrEnum):
    SERVER = "server"
    LOCAL = "local"
    CONTAINER = "container"


def policy_from(option: str | None, config: Config) -> Policy:
    return load_policy(option or config.policy)


def writable_output(output: Path | None) -> None:
    """Refuse (UsageError, exit 2) an --output path that cannot be written, before a long command does any
    work: a drill journaled as PASSED, or a verify run against the database, must not end in "cannot write"."""
    if output is None:
        return
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise UsageError(f"cannot write the report to {output}: it is a directory")
    if not folder.is_dir():
        raise UsageError(f"cannot write the report to {output}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UsageError(f"cannot write the report to {output}: permission denied")


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, "utf-8")
    except OSError as error:
        raise UsageError(f"cannot write the report to {output}: {error.strerror}") from None
    stderr.print(f"report written to {output}")


def main() -> None:
    app()
