"""The command line. Importing this package registers every command on `app`, in `--help` order."""

# ruff: noqa: I001, F401 - the imports below register the commands, in this order
from dbguard.cli.base import app, main
from dbguard.cli import check, dryrun, run
from dbguard.cli import approve
from dbguard.cli import backup
from dbguard.cli import drill
from dbguard.cli import journal
from dbguard.cli import rules
from dbguard.cli import cleanup
from dbguard.cli.rules import rules_markdown

__all__ = ["app", "main", "rules_markdown"]
