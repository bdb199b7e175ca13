"""Running `verify`'s checks one by one within a time budget, so that a check the budget did not reach,
or stopped, is reported INCOMPLETE ("not checked"), never as a pass.

A dialect supplies the planned checks (each a function returning its CheckOutcome), how to arm the
remaining time on its connection (PostgreSQL: statement_timeout; SQLite: a progress handler), and how to
tell an interruption from any other error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from dbguard.monitor.model import CheckOutcome, Status


@dataclass
class Budget:
    """The time `verify` may take, from its start (`seconds` None: no limit)."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        """Seconds left (never below 0); None without a budget."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    def exhausted(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0


@dataclass(frozen=True)
class PlannedCheck:
    check: str
    subject: str
    table: str | None
    run: Callable[[], CheckOutcome]


NOT_REACHED = "not checked: the time budget ran out before this check"


def run_planned(
    planned: Iterable[PlannedCheck],
    budget: Budget,
    arm: Callable[[float | None], None],
    why_stopped: Callable[[Exception], str],
) -> list[CheckOutcome]:
    """Each planned check's outcome, in order. Before each check `arm(remaining seconds)` bounds it; an
    exception from a check becomes INCOMPLETE with `why_stopped(error)` as its detail (which re-raises
    what must stop verify altogether, such as a lost connection)."""
    outcomes = []
    for item in planned:
        if budget.exhausted():
            outcomes.append(CheckOutcome(item.check, item.subject, item.table, Status.INCOMPLETE, NOT_REACHED))
            continue
        start = time.monotonic()
        try:
            arm(budget.remaining())  # on the connection too: a session lost since the last check is said here
            outcome = item.run()
        except Exception as error:  # whatever stopped it, the check did not finish: fail closed
            outcome = CheckOutcome(item.check, item.subject, item.table, Status.INCOMPLETE, why_stopped(error))
        outcomes.append(replace(outcome, seconds=round(time.monotonic() - start, 6)))
    return outcomes
