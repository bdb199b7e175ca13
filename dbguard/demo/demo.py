"""One whole demo: a working directory, the warehouse database made and filled, the story told, and
everything the demo made removed afterwards (the working directory only when it was a temporary one)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dbguard.backup.store import BackupStore
from dbguard.demo import data
from dbguard.demo.database import demo_databases, working_directory
from dbguard.demo.narration import Claim, Narrator
from dbguard.demo.story import DEMO_POLICY, ROOT, Story, script_text
from dbguard.journal import Journal
from dbguard.policy.policy import load_policy
from dbguard.targets.url import DatabaseUrl


@dataclass(frozen=True)
class DemoResult:
    target: str  # where the warehouse was (password masked), gone now unless it was a file in --workdir
    rows: int  # rows generated
    claims: tuple[Claim, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """Every claim of the story held."""
        return bool(self.claims) and all(claim.held for claim in self.claims)


def run_demo(narrator: Narrator, server: DatabaseUrl | None = None, workdir: Path | None = None, scale: float = 1.0,
             pg_bin: Path | None = None, policy_path: Path | None = None) -> DemoResult:  # fmt: skip
    """Tell the story on a new warehouse: SQLite in `workdir` (default: a temporary directory), or a
    PostgreSQL database of its own on `server`'s server (dropped afterwards, on error and Ctrl-C too).
    `scale` multiplies the data's size (1.0: ~43,000 rows). `policy_path`: a policy other than
    policies/demo.toml (the story expects its invariants: without them its claims fail). The journal, the
    backup store and the manifest key live in the working directory, never in the user's own .dbguard/.

    Returns what was claimed and whether it held. Raises UsageError (exit 2) for a bad scale, a --workdir
    that is not empty, or a checkout without the demo's scripts; ConnectionFailure (4) when the server
    cannot be reached.
    """
    started = time.monotonic()
    if policy_path is None:
        script_text(DEMO_POLICY)  # a missing checkout fails here, before anything is made
    policy = load_policy(policy_path or ROOT / DEMO_POLICY)
    warehouse = data.generate(scale)
    with working_directory(workdir) as directory, demo_databases(server, directory) as (target, scratch):
        narrator.progress(f"loading {warehouse.total_rows:,} generated rows into {target}")
        data.load(target, warehouse)
        where = "a SQLite file" if server is None else "a PostgreSQL database of its own"
        tables = ", ".join(f"{len(rows):,} {table}" for table, rows in warehouse.rows.items())
        narrator.say(f"[bold]The warehouse[/bold]: {warehouse.total_rows:,} rows in {where}, {target}: {tables}. "
                     f"The demo's policy is {DEMO_POLICY}; its journal and backups are in {directory}.")  # fmt: skip
        store = BackupStore(directory / "backups", directory / "manifest.key")
        story = Story(narrator, target, scratch, policy, store, Journal(directory / "journal.jsonl"), pg_bin)
        story.tell()
    return DemoResult(str(target), warehouse.total_rows, tuple(narrator.claims), time.monotonic() - started)
