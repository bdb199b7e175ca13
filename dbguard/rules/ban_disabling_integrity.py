"""Switching off triggers, foreign keys or constraint checks lets bad data in unnoticed.

Problem: `ALTER TABLE ... DISABLE TRIGGER` (which includes the triggers that enforce foreign keys),
`SET session_replication_role = replica` (PostgreSQL), `SET foreign_key_checks = 0` (MySQL) and
`PRAGMA foreign_keys = off` or `PRAGMA writable_schema = on` (SQLite) let the script write rows that
break the database's own rules. Nothing re-checks those rows when the setting is turned back on.

Bad:
    ALTER TABLE stock DISABLE TRIGGER ALL;

    SET session_replication_role = replica;

Good:
    SET lock_timeout = '2s';
    ALTER TABLE stock ENABLE TRIGGER ALL;

    SET lock_timeout = '2s';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.constraints import key, not_null_column_of
from dbguard.sql.model import Action, Statement

_OFF, _ON = False, True
# setting -> whether turning it off (False) or on (True) switches a safeguard off
_HAZARDS = {
    "foreign_key_checks": _OFF,
    "unique_checks": _OFF,
    "foreign_keys": _OFF,
    "writable_schema": _ON,
    "ignore_check_constraints": _ON,
    "sql_log_bin": _OFF,  # MySQL: the writes that follow never reach the replicas
}
# SQLite ignores PRAGMA foreign_keys inside a transaction ("This pragma is a no-op within a transaction"),
# and dbguard runs every script in one: the schema-change recipe that starts with it then loses rows.
_SQLITE_FOREIGN_KEYS = (
    "PRAGMA foreign_keys = {value} does nothing inside a transaction, and dbguard runs the script in one: foreign "
    "keys stay enforced, so a DROP TABLE of a referenced table first deletes its rows, and ON DELETE CASCADE "
    "deletes the rows that refer to them"
)
_SQLITE_HELP = (
    "SQLite's recipe for schema changes turns foreign keys off before its transaction begins, so it cannot run "
    "inside dbguard's: run it by hand after a backup, or rebuild only tables that no foreign key refers to."
)
_WORDS = {"off": False, "false": False, "no": False, "on": True, "true": True, "yes": True}
_HELP = (
    "Keep triggers and checks on and fix the rows that fail them; if a bulk load truly needs them off, do "
    "it by hand and validate the data afterwards, or waive this rule with a reason after review."
)


@rule("ban-disabling-integrity", Severity.ERROR, "Disabling triggers, foreign keys or constraint checks")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("disable-trigger"):
        trigger = action.get("trigger") or "ALL"
        if action.get("what"):
            yield Violation(message=f"{action.get('what')} on {action.table} switches a safeguard off", help=_HELP)
            continue
        what = "every trigger, foreign-key enforcement included" if trigger == "ALL" else "that trigger"
        yield Violation(message=f"DISABLE TRIGGER {trigger} on {action.table} turns off {what}", help=_HELP)
    for action in statement.actions_of("drop-constraint"):
        if _replaced_by_not_null(action, statement, context):
            continue
        yield Violation(message=f"DROP CONSTRAINT {action.get('name')} on {action.table} removes a rule the data "
                        "was held to", help=_HELP)  # fmt: skip
    for action in statement.actions_of("drop"):
        if action.get("object") in ("trigger", "policy", "rule"):
            yield Violation(message=f"DROP {str(action.get('object')).upper()} {action.table} removes a safeguard",
                            help=_HELP)  # fmt: skip
    for action in statement.actions_of("set", "pragma"):
        name = _bare(action.get("name")).rsplit(".", 1)[-1].lstrip("@")
        value = _bare(action.get("value"))
        if _switches_off(name, value) and action.kind == "pragma" and name == "foreign_keys":
            yield Violation(message=_SQLITE_FOREIGN_KEYS.format(value=value), help=_SQLITE_HELP)
        elif _switches_off(name, value):
            verb = "PRAGMA" if action.kind == "pragma" else "SET"
            lasting = " for every later session" if action.get("persistent") else ""
            yield Violation(
                message=f"{verb} {name} = {value} switches off integrity checking for the writes that follow{lasting}",
                help=_HELP,
            )


def _replaced_by_not_null(drop: Action, statement: Statement, context: RuleContext) -> bool:
    """Dropping a CHECK (col IS NOT NULL) after the script set col NOT NULL: the column's NOT NULL holds the
    data to the same rule (the recipe of ban-set-not-null)."""
    table, name = key(drop.table), str(drop.get("name") or "").lower()
    added = context.constraints.added.get((table, name))
    column = added.not_null_column if added else None
    if added is None and (info := context.table(drop.table, statement)):  # a CHECK already on the table (--db)
        column = next((not_null_column_of(c.definition) for c in info.constraints if c.name.lower() == name), None)
    if column is None:
        return False
    set_at = context.constraints.not_null_set_at.get((table, column))
    return set_at is not None and set_at < context.position(statement)  # one ALTER drops before it checks


def _switches_off(name: str, value: str) -> bool:
    """Fail closed: a value that is not a plain word or number (an expression, a variable) counts."""
    if name == "session_replication_role":
        return value not in ("origin", "default", "")
    if name not in _HAZARDS:
        return False
    if value in _WORDS:
        return _WORDS[value] is _HAZARDS[name]
    try:
        return (float(value) != 0) is _HAZARDS[name]
    except ValueError:
        return True


def _bare(text: object) -> str:
    """`'REPLICA'` -> `replica`: settings compare without quotes or case."""
    return str(text or "").strip().strip("'\"`").lower()
