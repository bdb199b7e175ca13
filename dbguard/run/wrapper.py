"""Transaction control that asks for nothing dbguard does not do anyway: a BEGIN ... COMMIT wrapper, and
savepoints the script releases.

Migration tools write each change as one transaction of its own (sqitch's deploy scripts, `sqlite3 .dump`'s
`BEGIN TRANSACTION; ... COMMIT;`). dbguard runs a one-step script in one transaction that it commits only
after its integrity gate, so a BEGIN that is the script's first statement and a COMMIT that is its last
ask for exactly that transaction: they are not executed, and dbguard's own transaction stands in for them.
Anything else is transaction control that would break the guarantee (ban-transaction-control): a COMMIT in
the middle makes work permanent before the gate, a wrapper around a script of several steps promises one
transaction that the steps do not give, and a BEGIN with options (ISOLATION LEVEL SERIALIZABLE, READ
ONLY), COMMIT AND CHAIN, ROLLBACK or a savepoint ask for something else.

A SAVEPOINT that a later RELEASE of the same step releases nests inside dbguard's transaction (SQLite and
PostgreSQL docs: RELEASE of an inner savepoint commits nothing; its work stays part of the transaction), so
the pair is sent to the server as written. ROLLBACK TO SAVEPOINT undoes part of the script and stays an
error, as does a savepoint never released, a RELEASE of one the script did not make, and any use of the
name of dbguard's own savepoint.
"""

from __future__ import annotations

import re

from dbguard.run.steps import split_steps
from dbguard.sql.model import Script, Statement

_OPENS = (("BEGIN",), ("START", "TRANSACTION"), ("BEGIN", "DEFERRED"), ("BEGIN", "IMMEDIATE"), ("BEGIN", "EXCLUSIVE"))
_CLOSES = (("COMMIT",), ("END",))
_FILLER = re.compile(r"[\s;]*")
DBGUARD_SAVEPOINT = "dbguard_before_script"  # run's own (commit_or_rollback.SAVEPOINT; that module loads psycopg)


def transaction_wrapper(script: Script) -> frozenset[int]:
    """The indexes of the BEGIN and COMMIT that wrap the whole of `script` (empty when they do not): the
    first and last statements of its text, plain, around one step of transactional statements with no
    other transaction control. A step cut out of a longer script is never wrapped: its statements are not
    the first and last of the text."""
    top = [s for s in script.statements if s.parent is None]
    if len(top) < 2 or not _is(top[0], _OPENS) or not _is(top[-1], _CLOSES):
        return frozenset()
    if not (_nothing_but_comments(script, 0, top[0].span.start)
            and _nothing_but_comments(script, top[-1].span.end, len(script.text))):  # fmt: skip
        return frozenset()
    if any(s.actions_of("transaction-control") for s in top[1:-1]) or len(split_steps(script)) != 1:
        return frozenset()
    return frozenset({top[0].index, top[-1].index})


def _is(statement: Statement, commands: tuple[tuple[str, ...], ...]) -> bool:
    actions = statement.actions_of("transaction-control")
    return len(actions) == 1 and tuple(str(actions[0].get("command") or "").upper().split()) in commands


def _nothing_but_comments(script: Script, start: int, end: int) -> bool:
    text = script.text
    cursor = start
    for comment_start, comment_end in sorted(script.comments):
        if comment_end <= cursor or comment_start >= end:
            continue
        if not _FILLER.fullmatch(text, cursor, max(cursor, comment_start)):
            return False
        cursor = max(cursor, comment_end)
    return _FILLER.fullmatch(text, min(cursor, end), end) is not None


def released_savepoints(script: Script) -> frozenset[int]:
    """The indexes of each SAVEPOINT that a later RELEASE in the same step releases, of that RELEASE, and of
    the savepoints made between them (a RELEASE releases those too)."""
    marks = []  # (SAVEPOINT or RELEASE, savepoint name, statement index), in script order
    for statement in (s for s in script.statements if s.parent is None):
        actions = statement.actions_of("transaction-control")
        words = str(actions[0].get("command") or "").split() if len(actions) == 1 else []
        if words and words[0].upper() in ("SAVEPOINT", "RELEASE"):
            name = _savepoint_name(words[-1]) if len(words) > 1 else ""
            if name != DBGUARD_SAVEPOINT:
                marks.append((words[0].upper(), name, statement.index))
    if not any(command == "RELEASE" for command, _, _ in marks):
        return frozenset()  # nothing released: the script's steps need not be cut (every check asks)
    step_of = {s.index: step.number for step in split_steps(script) for s in step.script.statements}
    made: list[tuple[str, int]] = []  # (name, statement index), innermost last
    released: set[int] = set()
    for command, name, at in marks:
        if command == "SAVEPOINT":
            made.append((name, at))
            continue
        same = [i for i, (n, index) in enumerate(made) if n == name and step_of[index] == step_of[at]]
        if same:
            released.update(index for _, index in made[same[-1] :])
            released.add(at)
            del made[same[-1] :]
    return frozenset(released)


def _savepoint_name(word: str) -> str:
    """Savepoint names as the server compares them: unquoted ones case-insensitively."""
    return word[1:-1].replace('""', '"') if word.startswith('"') and word.endswith('"') else word.lower()
