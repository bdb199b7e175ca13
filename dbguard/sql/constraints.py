"""What a script does to constraints, in order: which it adds (and how), where each is validated, and where
a column is SET NOT NULL. Rules ask it about one statement; it is computed once per script.

The safe recipes span statements: `ADD CONSTRAINT ... NOT VALID`, then `VALIDATE CONSTRAINT` in a later
step; `CHECK (col IS NOT NULL)` validated, then `SET NOT NULL` (no scan since PostgreSQL 12), then the CHECK
dropped. Offline, only what the script itself does is known: a constraint already on the table is not
(with `check --db` or `--stats`, the table's constraints come from the catalog: `not_null_column_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.enums import ConstrType

from dbguard.sql.classify_pg_ddl import not_null_column
from dbguard.sql.model import Script
from dbguard.sql.session import bare_table


@dataclass(frozen=True)
class AddedConstraint:
    statement: int  # index of the top-level statement that adds it
    line: int  # where that statement starts
    table: str
    name: str | None
    kind: str  # "check", "foreign", ...
    not_valid: bool
    not_null_column: str | None  # CHECK (column IS NOT NULL)


@dataclass
class ConstraintHistory:
    added: dict[tuple[str, str], AddedConstraint] = field(default_factory=dict)  # (table, name), first ADD
    validated_at: dict[tuple[str, str], int] = field(default_factory=dict)  # first statement that validates it
    not_null_set_at: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, column): first SET NOT NULL

    def validated_not_null_check(self, table: str, column: str, before: int) -> AddedConstraint | None:
        """A CHECK (column IS NOT NULL) on `table` that the script validated before statement `before`."""
        for (on, name), added in self.added.items():
            validated = self.validated_at.get((on, name))
            if on == key(table) and added.not_null_column == column and validated is not None and validated < before:
                return added
        return None


def not_null_column_of(definition: str) -> str | None:
    """The column of a CHECK (col IS NOT NULL) as pg_get_constraintdef() writes it ("CHECK ((sku IS NOT
    NULL))", a constraint already on the table, from `check --db`), or None for any other constraint."""
    try:
        (raw,) = pglast.parse_sql(f"ALTER TABLE t ADD {definition}")
    except (pglast.parser.ParseError, ValueError):
        return None
    commands = raw.stmt.cmds if isinstance(raw.stmt, ast.AlterTableStmt) else ()
    constraint = commands[0].def_ if commands else None
    if isinstance(constraint, ast.Constraint) and constraint.contype == ConstrType.CONSTR_CHECK:
        return not_null_column(constraint)
    return None


def key(name: str | None) -> str:
    return bare_table(name or "").lower()


def constraint_history(script: Script) -> ConstraintHistory:
    history = ConstraintHistory()
    for statement in script.statements:
        position = script.top_of[statement.index]
        for action in statement.actions:
            table = key(action.table)
            if action.kind == "add-constraint" and action.get("name"):
                name = str(action.get("name")).lower()
                added = AddedConstraint(position, statement.span.line, table, name, str(action.get("constraint")),
                                        bool(action.get("not_valid")), action.get("not_null_column"))  # fmt: skip
                history.added.setdefault((table, name), added)
                if not added.not_valid:
                    history.validated_at.setdefault((table, name), position)
            elif action.kind == "validate-constraint" and action.get("name"):
                history.validated_at.setdefault((table, str(action.get("name")).lower()), position)
            elif action.kind == "set-not-null" and action.column:
                history.not_null_set_at.setdefault((table, action.column), position)
    return history
