"""Switching off triggers, foreign keys or constraint checks lets bad data in unnoticed.

Problem: `ALTER TABLE ... DISABLE TRIGGER` (which includes the triggers that enforce foreign keys),
`SET session_replication_role = replica` (PostgreSQL), `SET foreign_key_checks = 0` (MySQL) and
`PRAGMA foreign_keys = off` or `PRAGMA writable_schema = on` (SQLite) let the script write rows that
break the database's own rules. Nothing re-checks those rows when the setting is turned back on.

Bad:
    ALTER TABLE stock DISABLE TRIGGER ALL;

    SET session_replication_role = replica;

Good:
    ALTER TABLE stock ENABLE TRIGGER ALL;

    SET lock_timeout = '2s';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement

_OFF = frozenset({"0", "off", "false", "no"})
_ON = frozenset({"1", "on", "true", "yes"})
# setting -> the values that switch a safeguard off
_HAZARDS = {
    "session_replication_role": frozenset({"replica"}),
    "foreign_key_checks": _OFF,
    "unique_checks": _OFF,
    "foreign_keys": _OFF,
    "writable_schema": _ON,
    "ignore_check_constraints": _ON,
}
_HELP = (
    "Keep triggers and checks on and fix the rows that fail them; if a bulk load truly needs them off, do "
    "it by hand and validate the data afterwards, or waive this rule with a reason after review."
)


@rule("ban-disabling-integrity", Severity.ERROR, "Disabling triggers, foreign keys or constraint checks")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("disable-trigger"):
        trigger = action.get("trigger") or "ALL"
        what = "every trigger, foreign-key enforcement included" if trigger == "ALL" else "that trigger"
        yield Violation(message=f"DISABLE TRIGGER {trigger} on {action.table} turns off {what}", help=_HELP)
    for action in statement.actions_of("set", "pragma"):
        name = _bare(action.get("name")).rsplit(".", 1)[-1].lstrip("@")
        value = _bare(action.get("value"))
        if value in _HAZARDS.get(name, ()):
            verb = "PRAGMA" if action.kind == "pragma" else "SET"
            yield Violation(
                message=f"{verb} {name} = {value} switches off integrity checking for the writes that follow",
                help=_HELP,
            )


def _bare(text: object) -> str:
    """`'REPLICA'` -> `replica`: settings compare without quotes or case."""
    return str(text or "").strip().strip("'\"`").lower()
