"""The command line.

A command's module is imported only when that command runs: `dbguard check x.sql` loads the parsers and the
rules, never the database drivers, so a pre-commit hook starts in a fraction of a second. `--help`, an
unknown command, and `from dbguard.cli import app` (tests, docs) register every command, in `--help` order.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# Each command -> the module in dbguard.cli that registers it; `--help` lists them in this order.
COMMANDS: dict[str, str] = {
    "check": "check",
    "stats": "stats",
    "dry-run": "dryrun",
    "run": "run",
    "approve": "approve",
    "approvals": "approve",
    "backup": "backup",
    "restore": "backup",
    "verify": "verify",
    "drill": "drill",
    "journal": "journal",
    "rules": "rules",
    "cleanup": "cleanup",
    "demo": "demo",
}


def load(command: str | None = None) -> typer.Typer:
    """The app with `command` registered, or every command when `command` is None or not one of COMMANDS."""
    from dbguard.cli.base import app

    modules = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    for module in modules:
        importlib.import_module(f"dbguard.cli.{module}")
    return app


def main() -> None:
    """The `dbguard` console script."""
    command = sys.argv[1] if len(sys.argv) > 1 else None  # the root takes no option before a command
    load(command)()


def __getattr__(name: str) -> Any:  # PEP 562: `from dbguard.cli import app` registers every command
    if name == "app":
        return load()
    if name == "rules_markdown":
        load()
        from dbguard.cli.rules import rules_markdown

        return rules_markdown
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
