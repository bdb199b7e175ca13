"""A script cut into steps: each step is one transaction with its own gate.

A script is one step unless a comment line `-- dbguard: step` cuts it (the pattern `ADD CONSTRAINT ...
NOT VALID`, then `VALIDATE CONSTRAINT` in a later step, needs that; so does a batched backfill). A
statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...) is a step of its own,
run in autocommit, only where the policy allows it.

Bad:  one transaction that builds an index CONCURRENTLY (PostgreSQL refuses it).
Good:
    UPDATE stock SET qty = 0 WHERE qty < 0;
    -- dbguard: step
    CREATE INDEX CONCURRENTLY stock_qty ON stock (qty);
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dbguard.sql.model import Script, Statement

STEP_MARKER = re.compile(r"--\s*dbguard:\s*step\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    number: int  # 1-based
    script: Script  # the step's own statements (nested ones included), as a script of its own
    transactional: bool  # False: one statement that must run outside a transaction, in autocommit

    @property
    def statements(self) -> list[Statement]:
        """The step's top-level statements."""
        return [s for s in self.script.statements if s.parent is None]

    @property
    def first_line(self) -> int:
        return self.statements[0].span.line if self.statements else 0


def split_steps(script: Script) -> list[Step]:
    """Cut `script` at its `-- dbguard: step` comments and around statements that cannot run in a
    transaction. Empty steps (two markers in a row) are dropped."""
    markers = sorted(start for start, end in script.comments if STEP_MARKER.fullmatch(script.text[start:end].strip()))
    groups: list[list[Statement]] = []
    current: list[Statement] = []
    next_marker = 0
    for statement in script.statements:
        if statement.parent is not None:
            if groups and statement.parent in {s.index for s in groups[-1]}:
                groups[-1].append(statement)
            else:
                current.append(statement)
            continue
        while next_marker < len(markers) and markers[next_marker] < statement.span.start:
            next_marker += 1
            if current:
                groups.append(current)
                current = []
        if not statement.facts.transactional:
            if current:
                groups.append(current)
            groups.append([statement])
            current = []
            continue
        current.append(statement)
    if current:
        groups.append(current)
    return [
        Step(number, replace(script, statements=tuple(group)), all(s.facts.transactional for s in group))
        for number, group in enumerate(groups, start=1)
    ]
