"""A SQLite PRAGMA that turns off crash safety can corrupt the database file.

Problem: with `PRAGMA journal_mode = OFF` SQLite keeps no rollback journal, so ROLLBACK cannot undo
the transaction and a crash in the middle of it "will very likely" corrupt the file; with
`journal_mode = MEMORY` the journal lives in memory and is lost with a crash. `PRAGMA synchronous
= OFF` hands data to the operating system without waiting for it to reach the disk, so a power loss
or an OS crash can corrupt the database (SQLite docs, "Pragma statements"). dbguard's guard relies on
ROLLBACK and on a file that survives a crash.

Bad:
    PRAGMA journal_mode = OFF;

    PRAGMA synchronous = OFF;

Good:
    PRAGMA journal_mode = WAL;

    PRAGMA synchronous = NORMAL;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

# setting -> the values that switch crash safety off, and what each costs
_UNSAFE = {
    "journal_mode": {"off": "there is no rollback journal: ROLLBACK cannot undo the transaction and a crash "
                     "in the middle of it corrupts the file",
                     "memory": "the rollback journal lives in memory: a crash in the middle of the transaction "
                     "leaves the file half written"},
    "synchronous": {"off": "SQLite stops waiting for writes to reach the disk: a power loss or OS crash can "
                    "corrupt the file", "0": "SQLite stops waiting for writes to reach the disk: a power loss or "
                    "OS crash can corrupt the file"},
}  # fmt: skip


@rule("ban-unsafe-pragma", Severity.ERROR, "SQLite PRAGMA that turns off crash safety",
      dialects=frozenset({Dialect.SQLITE}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("pragma"):
        name = str(action.get("name") or "")
        value = str(action.get("value") or "").strip("'\"` ").lower()
        cost = _UNSAFE.get(name, {}).get(value)
        if cost:
            yield Violation(
                message=f"PRAGMA {name} = {value.upper()}: {cost}",
                help="Keep the default journal (DELETE) or WAL, and synchronous at NORMAL or FULL; a bulk load "
                "that needs speed is safer in one transaction than without a journal.",
            )
