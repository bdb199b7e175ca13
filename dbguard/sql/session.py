"""The session as the server sees it before each statement: settings made with SET, and whether an
explicit transaction block (BEGIN ... COMMIT) is open. Computed in one forward pass over a script."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from dbguard.sql.model import Script

_OPENS = ("BEGIN", "START")
_CLOSES = ("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE")


@dataclass
class _History:
    """Every SET and RESET of a script, by the position (top-level statement number) from which it holds."""

    changes: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # None: reset
    resets_all: list[int] = field(default_factory=list)

    def record(self, position: int, name: str, value: object, kind: str) -> None:
        if kind == "RESET" and name in ("", "all"):
            self.resets_all.append(position)
        else:  # value None: RESET name, or SET name TO DEFAULT
            self.changes.setdefault(name, []).append((position, None if value is None else str(value)))


class Settings(Mapping[str, str]):
    """The settings in force at one position of the script, name -> value as last SET: a view of the
    script's history, so that a state per statement costs no copy of everything set before it."""

    def __init__(self, history: _History, position: int) -> None:
        self._history, self._position = history, position

    def __getitem__(self, name: str) -> str:
        changes = self._history.changes.get(name, [])
        last = bisect_right(changes, self._position, key=lambda change: change[0]) - 1
        since, value = changes[last] if last >= 0 else (0, None)
        resets = self._history.resets_all
        reset_all = resets[bisect_right(resets, self._position) - 1] if resets and resets[0] <= self._position else -1
        if value is None or reset_all >= since:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._history.changes if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class SessionState:
    settings: Mapping[str, str]  # name -> value as last SET; RESET removes it
    in_transaction_block: bool


def session_states(script: Script) -> dict[int, SessionState]:
    """State before each statement, by index; a nested statement sees the state before its parent."""
    history = _History()
    in_block = False
    states: dict[int, SessionState] = {}
    for position, statement in enumerate(script.statements):
        if statement.parent is not None:
            states[statement.index] = states[statement.parent]
            continue
        states[statement.index] = SessionState(Settings(history, position), in_block)
        for action in statement.actions_of("set", "transaction-control"):
            if action.kind == "transaction-control":
                in_block = _block_after(str(action.get("command", "")), in_block)
            elif not action.get("persistent"):  # ALTER DATABASE/ROLE ... SET: later sessions only
                history.record(position + 1, str(action.get("name") or ""), action.get("value"), statement.kind)
    return states


def _block_after(command: str, in_block: bool) -> bool:
    words = command.upper().split()
    if not words:
        return in_block
    if words[0] in _OPENS:
        return True
    if words[0] in _CLOSES and words[1:2] != ["TO"]:  # ROLLBACK TO SAVEPOINT keeps the block open
        return "CHAIN" in words and "NO" not in words  # COMMIT AND CHAIN opens the next one at once
    return in_block


def first_creations(script: Script) -> dict[str, int]:
    """Index of the top-level statement that first creates each table (`public.` prefix dropped)."""
    created: dict[str, int] = {}
    for statement in script.statements:
        for action in statement.actions_of("create-table"):
            if action.table and not action.get("if_not_exists"):  # IF NOT EXISTS may find the old, busy table
                created.setdefault(bare_table(action.table), statement.parent or statement.index)
    return created


def bare_table(table: str) -> str:
    return table.removeprefix("public.")
