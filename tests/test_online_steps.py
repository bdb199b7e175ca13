"""The online statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...) under the
built-in policies, on real PostgreSQL: the default policy lets `run` execute them as steps of their own,
after its dry-run has run them too; the strict policy refuses them before anything touches the target."""

from __future__ import annotations

from pathlib import Path

from dbguard.backup.store import BackupStore
from dbguard.inputs import Source
from dbguard.journal import Journal, Transaction
from dbguard.pipeline.run import RunOptions, run_script
from dbguard.policy.policy import load_policy
from dbguard.report.run.model import RunReport
from dbguard.targets.url import DatabaseUrl
from tests.test_run import content, query

SCRIPT = """SET lock_timeout = '2s';
UPDATE stock SET qty = qty + 1 WHERE warehouse_id = 1;
CREATE INDEX CONCURRENTLY stock_qty_idx ON stock (qty);
VACUUM (ANALYZE) stock;
"""


def _run(url: str, tmp_path: Path, policy: str) -> RunReport:
    return run_script(Source(str(tmp_path / "online.sql"), SCRIPT), DatabaseUrl.parse(url), load_policy(policy),
                      BackupStore(tmp_path / "backups"), Journal(tmp_path / "journal.jsonl"), lambda _plan: True,
                      RunOptions())  # fmt: skip


def test_the_default_policy_runs_online_statements_as_steps_of_their_own(warehouse_pg: str, tmp_path: Path) -> None:
    qty_before = query(warehouse_pg, "SELECT sum(qty) FROM stock WHERE warehouse_id = 1")[0][0]
    report = _run(warehouse_pg, tmp_path, "default")
    assert report.exit_code == 0 and report.transaction is Transaction.COMMITTED, report.reasons
    assert {f.rule_id for f in report.check.findings} == {"require-separate-step"}
    assert report.dry_run is not None and report.dry_run.verdict == "SAFE"
    assert [s.separate_step for s in report.dry_run.execution.runs] == [False, False, True, True]
    assert [(s.number, s.transactional, s.transaction) for s in report.steps] == [
        (1, True, Transaction.COMMITTED), (2, False, Transaction.COMMITTED), (3, False, Transaction.COMMITTED)]
    assert query(warehouse_pg, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'stock_qty_idx'::regclass") == [
        (True,)]  # fmt: skip
    assert query(warehouse_pg, "SELECT sum(qty) FROM stock WHERE warehouse_id = 1")[0][0] == qty_before + 40


def test_the_strict_policy_refuses_them_before_touching_the_target(warehouse_pg: str, tmp_path: Path) -> None:
    before = content(warehouse_pg)
    report = _run(warehouse_pg, tmp_path, "strict")
    assert report.exit_code == 1 and report.verdict == "BLOCKED" and not report.journaled
    refused = [r for r in report.reasons if "ban-non-transactional-statement" in r]
    assert len(refused) == 2 and "allow_online_steps = false" in refused[0], report.reasons
    assert content(warehouse_pg) == before
