"""The demo's five steps, told with the real pipeline (check, dry-run, run, drill, restore) and the real
renderers; nothing is staged. Each step checks what it claims and records it (narration.Claim).

1. The rogue "optimisation" from the postmortem: `check` blocks it and says why.
2. The subtle script (scripts/demo/ship_picked_orders.sql) passes `check`; its dry-run breaks an invariant
   on the real data, and the dry-run report shows it.
3. The same script forced through `run` past its dry-run: the integrity gate fails, the run rolls back by
   itself, and the tables' counts and hashes before and after prove the data unchanged.
4. The good script (scripts/demo/ship_covered_orders.sql): checked, dry-run, backed up and verified, run,
   committed, journaled.
5. A restore drill of step 4's backup (its measured restore time), the backup restored into a scratch
   database, and the journal shown and verified.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from dbguard.backup.restore import restore_into
from dbguard.backup.store import VERIFIED, BackupStore
from dbguard.demo.narration import Narrator
from dbguard.demo.schema import ORDER_STATUSES
from dbguard.dialects import Dialect
from dbguard.errors import EXIT_INTERRUPTED, UsageError
from dbguard.inputs import Source
from dbguard.journal import Journal, group_runs
from dbguard.pipeline.check import check_sources
from dbguard.pipeline.drill import DrillOptions, drill
from dbguard.pipeline.dryrun import DryRunOptions, dry_run
from dbguard.pipeline.run import RunOptions, run_script
from dbguard.policy.policy import Policy
from dbguard.report.check.text import plural
from dbguard.report.drill import text as drill_text
from dbguard.report.dryrun import text as dryrun_text
from dbguard.report.run import text as run_text
from dbguard.report.run.model import RunPlan, RunReport
from dbguard.sandbox.signals import SIGTERM_EXIT_CODE
from dbguard.targets import open_target
from dbguard.targets.model import TableStats
from dbguard.targets.url import DatabaseUrl

ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout: scripts/ and policies/ live there
ROGUE_SCRIPT = "scripts/rogue_cleanup.sql"
SUBTLE_SCRIPT = "scripts/demo/ship_picked_orders.sql"
GOOD_SCRIPT = "scripts/demo/ship_covered_orders.sql"
DEMO_POLICY = "policies/demo.toml"
# What the postmortem's script did, and the rule that names each hazard.
ROGUE_HAZARDS = {
    "ban-tautological-where": "a cleanup whose WHERE is always true",
    "ban-disabling-integrity": "integrity switched off (replica role, triggers disabled)",
    "ban-column-type-change": "a type change that rewrites the stock table",
}
NEGATIVE_STOCK = "stock on hand is never negative"


@dataclass
class Story:
    """What every step shares: where the warehouse is, the demo's policy, store and journal."""

    narrator: Narrator
    target: DatabaseUrl
    scratch: DatabaseUrl  # an empty database (a file not yet made, for SQLite) to restore the backup into
    policy: Policy
    store: BackupStore
    journal: Journal
    pg_bin: Path | None = None
    forced: RunReport | None = None  # step 3's run
    good: RunReport | None = None  # step 4's run

    def tell(self) -> None:
        for step in (self.rogue, self.subtle_dry_run, self.forced_run, self.good_run, self.recovery):
            step()
        self.narrator.summary()

    # -- step 1 --

    def rogue(self) -> None:
        n = self.narrator
        n.chapter(1, 'the rogue "optimisation" from the postmortem')
        n.say(f"On 6 June 2024 a maintenance script meant to \"optimize the database\" corrupted the stock table "
              f"and stopped 90% of the warehouse for six and a half hours. It is kept in [bold]{ROGUE_SCRIPT}[/bold]. "
              "`dbguard check` reads it offline, as the PostgreSQL it was written for:")  # fmt: skip
        report = check_sources([Source(ROGUE_SCRIPT, script_text(ROGUE_SCRIPT))], Dialect.POSTGRES, self.policy)
        blocking = report.blocking
        n.lines([f"  line {f.line:>3}  {f.rule_id:<36} {f.message}" for f in blocking], cut=True)
        n.say(f"({plural(len(blocking), 'blocking finding')}; `dbguard check {ROGUE_SCRIPT}` explains each one.)")
        n.say("Among them, what the postmortem's script did:")
        named = {rule_id: next((f for f in blocking if f.rule_id == rule_id), None) for rule_id in ROGUE_HAZARDS}
        for rule_id, hazard in ROGUE_HAZARDS.items():
            if (found := named[rule_id]) is not None:
                n.say(f"[bold]{hazard}[/bold] (line {found.line}, {rule_id}): {escape(found.message)}.\n"
                      f"[dim]fix: {escape(found.help)}[/dim]")  # fmt: skip
        n.claim(1, f"check blocks the rogue script ({plural(len(blocking), 'blocking finding')} in "
                   f"{plural(report.statement_count, 'statement')}: exit 1)", bool(blocking),
                f"{report.counts()}")  # fmt: skip
        for rule_id, hazard in ROGUE_HAZARDS.items():
            n.claim(1, f"{rule_id} names {hazard}", named[rule_id] is not None,
                    "no blocking finding of that rule")  # fmt: skip

    # -- step 2 --

    def subtle_dry_run(self) -> None:
        n = self.narrator
        n.chapter(2, "a subtle script passes check; the dry-run catches it on the real data")
        source = Source(SUBTLE_SCRIPT, script_text(SUBTLE_SCRIPT))
        n.say(f"[bold]{SUBTLE_SCRIPT}[/bold] ships the picked orders: it books their lines out of stock and marks "
              "them shipped. Every statement has a WHERE clause, and its write to the protected stock table is "
              "waived with a reason, so the static check passes:")  # fmt: skip
        report = check_sources([source], self.target.dialect, self.policy)
        waived = sum(f.waived for f in report.findings)
        n.claim(2, f"check passes it ({plural(report.statement_count, 'statement')}, no blocking finding, "
                   f"{waived} waived with its reason)", not report.blocking and waived > 0,
                f"{len(report.blocking)} blocking, {waived} waived")  # fmt: skip
        n.say(
            "But it trusts that the stock on hand covers every picked line. The dry-run runs it on a copy of "
            f"the real data ({self.target}, never written) and checks the policy's invariants:"
        )
        before = table_images(self.target)
        report_dry = dry_run(source, self.target, self.policy, DryRunOptions(pg_bin=self.pg_bin), n.progress)
        n.report(dryrun_text.render(report_dry, color=n.color, width=n.width))
        broken = [g.result.name for g in report_dry.checks if g.blocks]
        n.claim(2, f"the dry-run is BLOCKED: invariant \"{NEGATIVE_STOCK}\" fails on the real data",
                report_dry.verdict == "BLOCKED" and NEGATIVE_STOCK in broken,
                f"verdict {report_dry.verdict}, failed checks: {broken or 'none'}")  # fmt: skip
        after = table_images(self.target)
        n.claim(2, "the target was only read: every table's count and hash are as before", before == after,
                f"changed: {changed_tables(before, after)}")  # fmt: skip

    # -- step 3 --

    def forced_run(self) -> None:
        n = self.narrator
        n.chapter(3, "forced through `run`: the integrity gate rolls it back by itself")
        n.say("Suppose someone insists: the write to stock is waived, the dry-run's objection is overridden "
              "(`dbguard run --skip-dry-run`, which the demo's policy allows and the journal records). `run` "
              "takes a verified backup inside its own transaction, runs the script on the real database, and "
              "checks integrity and the invariants before COMMIT:")  # fmt: skip
        source = Source(SUBTLE_SCRIPT, script_text(SUBTLE_SCRIPT))
        before = table_images(self.target)
        self.forced = run_script(source, self.target, self.policy, self.store, self.journal, _confirmed,
                                 RunOptions(skip_dry_run=True, pg_bin=self.pg_bin), n.progress)  # fmt: skip
        report = self.forced
        _stop_if_interrupted(report)
        n.report(run_text.render(report, color=n.color, width=n.width))
        after = table_images(self.target)
        n.say("dbguard's own proof is in the report above (\"rollback proved\"). Counted and hashed again, from "
              "outside the run, every table of the warehouse (the hashes shortened here, compared whole):")  # fmt: skip
        n.hashes(before, after)
        failed = [g.result.name for step in report.steps for g in step.blocking_gates]
        proofs = [step.proof for step in report.steps if step.proof is not None]
        n.claim(3, f"the integrity gate fails: \"{NEGATIVE_STOCK}\"", NEGATIVE_STOCK in failed,
                f"blocking checks: {failed or 'none'}")  # fmt: skip
        n.claim(3, "the run rolled back by itself (ROLLED BACK, exit 6)",
                (report.verdict, report.exit_code) == ("ROLLED BACK", 6),
                f"{report.verdict}, exit {report.exit_code}: {'; '.join(report.reasons)}")  # fmt: skip
        n.claim(3, "run proved the rollback (the written tables equal their pre-image)",
                bool(proofs) and all(proof.passed for proof in proofs), f"proof: {proofs}")  # fmt: skip
        n.claim(3, f"the data is unchanged: all {len(before)} tables' counts and hashes equal before and after",
                bool(before) and before == after, f"changed: {changed_tables(before, after)}")  # fmt: skip

    # -- step 4 --

    def good_run(self) -> None:
        n = self.narrator
        n.chapter(4, "the good script: checked, dry-run, backed up, run, committed, journaled")
        source = Source(GOOD_SCRIPT, script_text(GOOD_SCRIPT))
        n.say(
            f"[bold]{GOOD_SCRIPT}[/bold] is the fix: an order with a line that stock cannot cover waits as "
            "'backordered'; the rest ship. `dbguard run` does every step in order: check, dry-run, the plan, a "
            "backup verified by a restore test, the script, the integrity gate, COMMIT, the journal."
        )
        checked = check_sources([source], self.target.dialect, self.policy)
        n.claim(4, "check passes it", not checked.blocking, "blocking findings")

        def show_plan(plan: RunPlan) -> bool:
            n.report(run_text.render_plan(plan, color=n.color, width=n.width))
            return True  # the demo confirms, as `run --yes` does

        self.good = run_script(source, self.target, self.policy, self.store, self.journal, show_plan,
                               RunOptions(pg_bin=self.pg_bin), n.progress)  # fmt: skip
        report = self.good
        _stop_if_interrupted(report)
        dry = report.dry_run
        if dry is not None:
            n.say(
                f"Its dry-run (the full report is `dbguard dry-run {GOOD_SCRIPT}`): [bold]{dry.verdict}[/bold], "
                f"{plural(sum(not g.blocks for g in dry.checks), 'check')} of {len(dry.checks)} passed."
            )
        n.report(run_text.render(report, color=n.color, width=n.width))
        n.claim(4, "its dry-run is SAFE", dry is not None and dry.verdict == "SAFE",
                f"dry-run {dry.verdict if dry else 'skipped'}: {dry.blocking_reasons if dry else ''}")  # fmt: skip
        status = self.store.load(report.backup_id).verification.status if report.backup_id else "no backup"
        n.claim(4, f"a backup was taken in the run's transaction and verified ({report.backup_id})",
                status == VERIFIED, f"backup {status}")  # fmt: skip
        n.claim(4, "the run committed (COMMITTED, exit 0)", (report.verdict, report.exit_code) == ("COMMITTED", 0),
                f"{report.verdict}, exit {report.exit_code}: {'; '.join(report.reasons)}")  # fmt: skip
        runs = {run.run_id: run for run in group_runs(self.journal.verify().records)}
        journaled = runs.get(report.run_id)
        n.claim(4, "the journal holds its intent and its outcome",
                journaled is not None and journaled.intent is not None and journaled.outcome is not None,
                "not in the journal")  # fmt: skip
        orders = _orders_by_status(self.target)
        picked, backordered = orders.get("picked", 0), orders.get("backordered", 0)
        n.claim(4, f"no order is left picked; {backordered} oversold one(s) wait as backorders",
                picked == 0 and backordered > 0, f"{picked} picked, {backordered} backordered")  # fmt: skip

    # -- step 5 --

    def recovery(self) -> None:
        n = self.narrator
        n.chapter(5, "the backup drilled and restored, the journal verified")
        backup_id = self.good.backup_id if self.good else None
        if backup_id is None:
            n.claim(5, "step 4 left a backup to drill", False, "no backup")
            return
        n.say("The postmortem's second lesson: a backup nobody restores is a hope. A restore drill restores "
              "step 4's backup into a sandbox, times it (RTO), ages it (RPO), compares every table's count and "
              "hash with the manifest's and runs the policy's invariants on the restored data:")  # fmt: skip
        manifest = self.store.load(backup_id)
        if manifest.scope == "tables":
            n.say(f"The backup is scoped to the tables the script wrote ({', '.join(manifest.tables)}): the drill "
                  "skips, and says so, each invariant that reads another table.")  # fmt: skip
        report = drill(self.target, self.store, self.policy, backup_id=backup_id, journal=self.journal,
                       options=DrillOptions(pg_bin=self.pg_bin), progress=n.progress)  # fmt: skip
        n.report(drill_text.render(report))
        n.claim(5, f"the drill passed, restore time measured: {report.restore_seconds or 0:.2f} s", report.passed and
                report.restore_seconds is not None, "; ".join(report.reasons))  # fmt: skip
        n.say(f"And the backup restored for real into a scratch database, {self.scratch}:")
        restored = restore_into(self.store, manifest, self.scratch, pg_bin=self.pg_bin, progress=n.progress)
        n.lines([f"  restored {table}: {result.rows:,} rows, "
                 + ("matches the backup" if result.matches else "DIFFERS from the backup")
                 for table, result in restored.tables.items()] + [f"  in {restored.seconds:.2f} s"])  # fmt: skip
        n.claim(5, f"the backup restored into a scratch database in {restored.seconds:.2f} s, every table equal "
                   "to the backup", restored.exact and len(restored.tables) == len(manifest.tables),
                f"{[t for t, r in restored.tables.items() if not r.matches]}")  # fmt: skip
        self.journal_verified()

    def journal_verified(self) -> None:
        n = self.narrator
        verification = self.journal.verify()
        runs = group_runs(verification.records)
        n.say(f"The audit journal, {self.journal.path}: append-only, fsynced, each record chained to the one "
              "before by its sha256 (`dbguard journal list`, `dbguard journal verify`):")  # fmt: skip
        head = verification.head
        listed = [f"  {run.run_id}  {run.get('script_path') or '(restore drill)'!s:<40} {run.result}" for run in runs]
        state = "OK" if verification.ok else "BROKEN"
        n.lines([*listed, f"  journal {state}: {len(verification.records)} records, head sha256 "
                          f"{head.sha256 if head else '-'}"])  # fmt: skip
        results = {run.run_id: run.result for run in runs}
        expected = [(self.forced, "ROLLED BACK (exit 6)"), (self.good, "COMMITTED (exit 0)")]
        n.claim(5, "the journal verifies: its hash chain is intact", verification.ok,
                "; ".join(map(str, verification.problems[:3])))  # fmt: skip
        n.claim(5, "it records step 3 as ROLLED BACK, step 4 as COMMITTED, and the drill",
                all(run is not None and results.get(run.run_id) == want for run, want in expected)
                and any(result.startswith("drill PASSED") for result in results.values()),
                f"{results}")  # fmt: skip


def script_text(relative: str) -> str:
    """A script of the checkout (the demo's scripts and policy are not installed with the package)."""
    path = ROOT / relative
    try:
        return path.read_text("utf-8")
    except OSError as error:
        raise UsageError(f"the demo needs {relative} from a checkout of dbguard ({error.strerror}: {path})") from None


def table_images(url: DatabaseUrl) -> dict[str, TableStats]:
    """Every table's row count and content hash, read through a read-only session."""
    with closing(open_target(url, read_only=True)) as target:
        stats = target.table_stats(target.leaf_tables(target.all_tables()))
        if url.dialect is Dialect.POSTGRES:
            target.conn.rollback()
    return stats


def changed_tables(before: dict[str, TableStats], after: dict[str, TableStats]) -> list[str]:
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


def _orders_by_status(url: DatabaseUrl) -> dict[str, int]:
    """How many orders are in each status (a status with none is left out), in one read-only session."""
    with closing(open_target(url, read_only=True)) as target:
        rows = target.query("SELECT status, count(*) FROM orders GROUP BY status", limit=len(ORDER_STATUSES))
        if url.dialect is Dialect.POSTGRES:
            target.conn.rollback()
    return {status: int(count) for status, count in rows}


def _stop_if_interrupted(report: RunReport) -> None:
    """`run` reports a Ctrl-C or SIGTERM during its steps (rolled back and proved) instead of raising it:
    the demo stops there, as the user asked, and its databases are removed on the way out."""
    if report.exit_code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    if report.exit_code == SIGTERM_EXIT_CODE:
        raise SystemExit(SIGTERM_EXIT_CODE)


def _confirmed(_plan: RunPlan) -> bool:
    return True  # the demo runs as `run --yes` does
