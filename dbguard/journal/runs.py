"""Records grouped by run: what `journal list` and `journal show` print, and what `run` checks first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbguard.errors import DbguardError, UsageError
from dbguard.journal.journal import Journal
from dbguard.journal.record import Kind, Record
from dbguard.targets.url import DatabaseUrl

NO_OUTCOME = "NO OUTCOME (crashed?)"


@dataclass(frozen=True)
class Run:
    run_id: str
    records: tuple[Record, ...]  # in journal order

    @property
    def intent(self) -> Record | None:
        return next((r for r in self.records if r.kind == Kind.INTENT), None)

    @property
    def outcome(self) -> Record | None:
        return next((r for r in reversed(self.records) if r.kind == Kind.OUTCOME), None)

    @property
    def unfinished(self) -> bool:
        """An intent with no outcome: the run crashed (or is running right now)."""
        return self.intent is not None and self.outcome is None

    @property
    def started_at(self) -> str:
        return self.records[0].at

    def get(self, name: str) -> Any:
        """A field from the intent, else from the first record that has it; None if none does."""
        ordered = [r for r in (self.intent, *self.records) if r is not None]
        return next((r.fields[name] for r in ordered if name in r.fields), None)

    @property
    def result(self) -> str:
        outcome = self.outcome
        if outcome is not None:
            return f"{outcome.fields.get('verdict')} (exit {outcome.fields.get('exit_code')})"
        if self.intent is not None:
            return NO_OUTCOME
        drill = next((r for r in self.records if r.kind == Kind.DRILL), None)
        if drill is not None:
            return f"drill {drill.fields.get('verdict')} (exit {drill.fields.get('exit_code')})"
        sign_off = next((r for r in self.records if r.kind == Kind.APPROVAL), None)
        if sign_off is not None:
            return f"approved by {sign_off.fields.get('reviewer')}"
        return ", ".join(dict.fromkeys(r.kind for r in self.records))  # e.g. "repair"


def group_runs(records: Iterable[Record]) -> list[Run]:
    """One Run per run id, in the order of each run's first record."""
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.run_id, []).append(record)
    return [Run(run_id, tuple(group)) for run_id, group in grouped.items()]


def find_run(runs: list[Run], prefix: str, where: str) -> Run:
    """The run whose id is `prefix`, or the only one that starts with it. UsageError otherwise, with the
    candidates."""
    exact = [run for run in runs if run.run_id == prefix]
    matches = exact or [run for run in runs if prefix and run.run_id.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no run {prefix!r} in journal {where} (`dbguard journal list` shows the runs)")
    shown = ", ".join(run.run_id for run in matches[:10]) + (", ..." if len(matches) > 10 else "")
    raise UsageError(f"run id prefix {prefix!r} is ambiguous, {len(matches)} runs start with it: {shown}")


def unfinished_runs(journal: Journal, target: DatabaseUrl) -> list[Run]:
    """Runs against `target` (the same database, whoever connected) with an intent and no outcome.

    `run` calls this before it starts. Raises JournalFailure if the journal does not verify: a run
    must not go ahead on an audit trail that cannot be trusted.
    """
    runs = group_runs(journal.trusted().records)
    return [run for run in runs if run.unfinished and _same_target(run.get("target"), target)]


def _same_target(recorded: Any, target: DatabaseUrl) -> bool:
    if not isinstance(recorded, str):
        return False
    try:
        return DatabaseUrl.parse(recorded).same_database(target)
    except DbguardError:
        return recorded == str(target)
