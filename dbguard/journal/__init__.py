"""The audit journal that `run` writes: JSON Lines, appended, fsynced and hash-chained.

How `run` uses it::

    journal = Journal(journal_path(option, config))
    for crashed in unfinished_runs(journal, target):  # raises JournalFailure if the journal is broken
        ...  # say so before anything else
    run_id = new_run_id()
    subject = Subject.for_run(target, script_path, script_sha256, policy.name, policy_sha256)
    journal.append(run_id, Intent(subject=subject, dialect=..., findings=..., dry_run=..., backup_id=...))
    journal.append(run_id, Attempt(step=1, attempt=1, result=AttemptResult.LOCK_TIMEOUT, ...))
    journal.append(run_id, Outcome(subject=subject, transaction=Transaction.COMMITTED, verdict=..., exit_code=0, ...))
"""

from dbguard.journal.entries import (
    Attempt,
    AttemptResult,
    Drill,
    DrillCheck,
    DryRunSummary,
    FindingEntry,
    Intent,
    LockWait,
    Outcome,
    Repair,
    StatementEntry,
    Subject,
    Transaction,
    current_command,
)
from dbguard.journal.journal import DEFAULT_JOURNAL_PATH, Journal, journal_path, new_run_id
from dbguard.journal.record import GENESIS, Kind, Record
from dbguard.journal.runs import Run, find_run, group_runs, unfinished_runs
from dbguard.journal.verify import Breakage, Problem, Verification

__all__ = [
    "DEFAULT_JOURNAL_PATH",
    "GENESIS",
    "Attempt",
    "AttemptResult",
    "Breakage",
    "Drill",
    "DrillCheck",
    "DryRunSummary",
    "FindingEntry",
    "Intent",
    "Journal",
    "Kind",
    "LockWait",
    "Outcome",
    "Problem",
    "Record",
    "Repair",
    "Run",
    "StatementEntry",
    "Subject",
    "Transaction",
    "Verification",
    "current_command",
    "find_run",
    "group_runs",
    "journal_path",
    "new_run_id",
    "unfinished_runs",
]
