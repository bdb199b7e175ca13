"""Facts several rules need about the script around a statement (helpers, not a rule)."""

from __future__ import annotations

from dbguard.rules.registry import RuleContext
from dbguard.sql.model import Statement


def _bare(table: str) -> str:
    return table.removeprefix("public.")


def created_earlier(table: str | None, statement: Statement, context: RuleContext) -> bool:
    """Whether an earlier statement of the script creates `table`: nobody else can be using it yet."""
    if table is None:
        return False
    return any(
        action.table is not None and _bare(action.table) == _bare(table)
        for earlier in context.earlier(statement)
        for action in earlier.actions_of("create-table")
    )
