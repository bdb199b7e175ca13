"""A script wrapped in its own BEGIN ... COMMIT: the wrapper says what dbguard does anyway.

Migration tools write each change as one transaction of its own (sqitch's deploy scripts, `sqlite3 .dump`'s
`BEGIN TRANSACTION; ... COMMIT;`). dbguard runs a one-step script in one transaction that it commits only
after its integrity gate, so a BEGIN that is the script's first statement and a COMMIT that is its last
ask for exactly that transaction: they are not executed, and dbguard's own transaction stands in for them.
Anything else is transaction control that would break the guarantee (ban-transaction-control): a COMMIT in
the middle makes work permanent before the gate, a wrapper around a script of several steps promises one
transaction that the steps do not give, and a BEGIN with options (ISOLATION LEVEL SERIALIZABLE, READ
ONLY), COMMIT AND CHAIN, ROLLBACK or a savepoint ask for something else.
"""

from __future__ import annotations

import re

from dbguard.run.steps import split_steps
from dbguard.sql.model import Script, Statement

_OPENS = (("BEGIN",), ("START", "TRANSACTION"), ("BEGIN", "DEFERRED"), ("BEGIN", "IMMEDIATE"), ("BEGIN", "EXCLUSIVE"))
_CLOSES = (("COMMIT",), ("END",))
_FILLER = re.compile(r"[\s;]*")


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
