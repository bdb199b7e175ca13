"""`dbguard demo`: the postmortem's story, end to end, on a generated warehouse database."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from dbguard.cli.base import PgBinOption, app, stderr


@app.command("demo")
def demo_command(
    db: str | None = typer.Option(
        None,
        "--db",
        help="A PostgreSQL server to tell the story on (postgresql://user@host:5432/postgres): the "
        "demo makes a database of its own there, dbguard_demo_<time>_<pid>, and drops it afterwards. Without "
        "it, SQLite. (DBGUARD_DB is not read: the demo never goes near a real target by accident.)",
    ),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="A new or empty directory to keep the demo's files in (database, backups, journal); "
        "default: a temporary one, removed afterwards.",
    ),
    scale: float = typer.Option(
        1.0, "--scale", help="Size of the generated warehouse: 1.0 is ~43,000 rows; 0.1 a tenth of that."
    ),
    pg_bin: PgBinOption = None,
) -> None:
    """Tell the story of the Stockpocalypse postmortem with the real dbguard, on a generated warehouse
    (warehouses, products, stock, orders, order lines, reservations):

    \b
    1. the rogue "optimisation" script: check blocks it and says why;
    2. a subtle script passes check, but its dry-run breaks an invariant on the real data;
    3. the same script forced through run: the integrity gate fails, the run rolls back by itself,
       and the tables' hashes before and after prove the data unchanged;
    4. a good script: checked, dry-run, backed up and verified, run, committed, journaled;
    5. a restore drill of its backup (timed), the backup restored into a scratch database, and the
       journal verified.

    Each claim is checked against what dbguard returned: exits 0 when every claim held, 1 when one did
    not, 2 on a usage error, 4 when the PostgreSQL server cannot be reached, 130 when interrupted. The
    demo's databases (and its temporary directory) are removed afterwards, on error and Ctrl-C too; the
    user's .dbguard/ is never written.

    Examples:

    \b
        dbguard demo
        dbguard demo --db postgresql://postgres@127.0.0.1:5432/postgres
        dbguard demo --workdir /tmp/demo --scale 0.2     # keep the SQLite file, backups and journal
    """
    from dbguard.demo.demo import run_demo
    from dbguard.demo.narration import Narrator
    from dbguard.sandbox.signals import install_sigterm_handler
    from dbguard.targets.url import DatabaseUrl

    install_sigterm_handler()  # SIGTERM unwinds like Ctrl-C: the demo's databases are dropped
    console = Console(highlight=False)
    if not console.is_terminal:  # piped or in CI: the reports' own width, not 80
        console = Console(highlight=False, width=100)
    narrator = Narrator(console, stderr)
    result = run_demo(narrator, DatabaseUrl.parse(db) if db else None, workdir, scale, pg_bin)
    narrator.console.print(f"Told in {result.seconds:.1f} s on {result.target}.", highlight=False)
    if not result.ok:
        raise typer.Exit(1)
