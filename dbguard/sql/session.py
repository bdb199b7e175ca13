"""The session as the server sees it before each statement: settings made with SET, and whether an
explicit transaction block (BEGIN ... COMMIT) is open. Computed in one forward pass over a script."""

from __future__ import annotations

from dataclasses import dataclass

from dbguard.sql.model import Script

_OPENS = ("BEGIN", "START")
_CLOSES = ("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE")


@dataclass(frozen=True)
class SessionState:
    settings: dict[str, str]  # name -> value as last SET; RESET removes it
    in_transaction_block: bool


def session_states(script: Script) -> dict[int, SessionState]:
    """State before each statement, by index; a nested statement sees the state before its parent."""
    settings: dict[str, str] = {}
    in_block = False
    states: dict[int, SessionState] = {}
    for statement in script.statements:
        if statement.parent is not None:
            states[statement.index] = states[statement.parent]
            continue
        states[statement.index] = SessionState(dict(settings), in_block)
        for action in statement.actions_of("set", "transaction-control"):
            if action.kind == "transaction-control":
                in_block = _block_after(str(action.get("command", "")), in_block)
            elif not action.get("persistent"):  # ALTER DATABASE/ROLE ... SET: later sessions only
                _apply(settings, str(action.get("name") or ""), action.get("value"), statement.kind)
    return states


def _apply(settings: dict[str, str], name: str, value: object, kind: str) -> None:
    if kind == "RESET" and name in ("", "all"):
        settings.clear()
    elif value is None:  # RESET name, or SET name TO DEFAULT
        settings.pop(name, None)
    else:
        settings[name] = str(value)


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
