"""`dbguard cleanup`: dbguard's own leftovers after a crash, listed and removed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dbguard.cli.backup import DEFAULT_BACKUP_DIR, backup_directory
from dbguard.cli.base import app, stderr
from dbguard.config import discover
from dbguard.errors import ConnectionFailure, UsageError

if TYPE_CHECKING:
    from dbguard.targets.url import DatabaseUrl


@app.command("cleanup")
def cleanup_command(
    db: str | None = typer.Option(
        None, "--db", help="Any database of the server whose sandbox databases to look at (without: local only)."
    ),
    older_than: str = typer.Option(
        "1h", "--older-than", help="Leftovers from other hosts count as stale after this long: 30m, 1h, 2d, 1h30m."
    ),
    backup_dir: Path | None = typer.Option(
        None, "--backup-dir", envvar="DBGUARD_BACKUP_DIR", help=f"Backup store (default: {DEFAULT_BACKUP_DIR})."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove the stale leftovers without asking."),
) -> None:
    """List and remove what crashed dbguard runs left behind: sandbox databases on the --db server,
    local sandbox directories (a running throwaway cluster is stopped first) and partial files in the
    backup store. Only what carries dbguard's marker is touched, and only when stale: its process on
    this host is gone, or, from another host, it is older than --older-than. A sandbox whose process
    still runs is never removed. Asks first unless --yes; without a terminal and without --yes, it only
    lists, and exits 2 if there was something to remove.

    Example:

    \b
        dbguard cleanup --db postgresql://postgres@127.0.0.1:5432/postgres
        dbguard cleanup --db $URL --older-than 30m --yes
    """
    from dbguard.sandbox.leftovers import find_leftovers, parse_duration, remove_leftover
    from dbguard.targets.url import DatabaseUrl

    age = parse_duration(older_than)
    server = DatabaseUrl.parse(db) if db else None
    store = backup_directory(backup_dir, discover())
    found = find_leftovers(server, store, age)
    stale = [leftover for leftover in found if leftover.stale]
    if not found:
        typer.echo("no dbguard leftovers" + (f" on {server.host}:{server.port}" if server else "") + ", local or in "
                   f"{store}")  # fmt: skip
        return
    for leftover in found:
        alone = "" if leftover.stale else ": left alone"
        typer.echo(f"{leftover.state.value:<15}{leftover}: {leftover.reason}{alone}")
    if not stale:
        typer.echo("nothing stale to remove")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"nothing removed (no terminal to confirm on): pass --yes to remove the {len(stale)} "
                             "stale leftover(s) listed")  # fmt: skip
        typer.confirm(f"Remove the {len(stale)} stale leftover(s)?", abort=True)
    failures = []
    for leftover in stale:
        try:
            remove_leftover(leftover, server)
        except (ConnectionFailure, UsageError) as error:
            stderr.print(f"dbguard: {error}", soft_wrap=True, markup=False)
            failures.append(leftover)
            continue
        typer.echo(f"removed {leftover}")
    if failures:
        raise ConnectionFailure(f"{len(failures)} of {len(stale)} stale leftover(s) could not be removed (above)")
    typer.echo(f"removed {len(stale)} stale leftover(s)")


def mention_stale_leftovers(server: DatabaseUrl | None, backup_dir: Path | None = None) -> None:
    """For `dry-run` and `backup`: one line on stderr when they see stale leftovers of crashed runs."""
    from dbguard.sandbox.leftovers import stale_notice

    notice = stale_notice(server, backup_dir)
    if notice is not None:
        stderr.print(notice, soft_wrap=True, markup=False, highlight=False)
