"""What the parse layer knows about a script: statements, their spans, and the actions inside them.

Rules never look at a parser's tree directly. Each dialect's classifier (pglast for PostgreSQL,
sqlglot for SQLite and MySQL) turns a statement into the same `Action` records, so one rule serves
every dialect. The action kinds, with the details each carries:

| kind | table / column | details |
|---|---|---|
| delete, update | table | has_where; where: the sqlglot expression when it may be always true, else None |
| insert, merge | table | replace (REPLACE INTO, INSERT OR REPLACE: deletes the conflicting row first) |
| truncate | table | cascade |
| drop | name | object ("table", "schema", "database", "index", "view", ...), cascade, concurrently |
| drop-column | table, column | cascade |
| add-column | table, column | type, not_null, has_default, default_volatile, default_sql; more in ⁷ |
| alter-column-type | table, column | type; new_type (pg_types.ColumnType text), using (PostgreSQL) |
| set-not-null | table, column | |
| detach-partition | table | partition, concurrently |
| add-constraint | table | constraint (foreign, check, ...), not_valid, using_index, name, not_null_column¹, inline² |
| validate-constraint | table | name |
| alter-table | table | algorithm, lock (MySQL online DDL options, lower case); object ("view": ALTER VIEW) |
| alter-type | name (of the domain or type) | object ("domain", "type"); ALTER DOMAIN: change¹⁰, name, not_valid |
| create-table | table | columns: tuple of (name, type, is_primary_key, is_identity), if_not_exists, how³ |
| create-relation | name | object ("view", "materialized view", "sequence"), if_not_exists (or OR REPLACE) |
| create-index | table | concurrently, unique, only (ON ONLY: partitioned, nothing built); more in ⁷ |
| reindex | name | concurrently, target |
| vacuum | table or None | full |
| cluster | table or None | |
| lock-table | table | mode |
| rename-table, rename-column | table, column | new_name; object ("view": ALTER VIEW ... RENAME) |
| rename-index | table | name, new_name (MySQL ALTER TABLE ... RENAME INDEX) |
| set-default | table, column | (SET / DROP DEFAULT on SQLite and MySQL) |
| catalog-write | table | (a write to sqlite_schema/sqlite_master or MySQL's mysql.* tables) |
| set | | name, value, local |
| transaction-control | | command |
| disable-trigger | table | trigger |
| alter-system | | |
| copy | table | program, file, is_from, statement, path⁸ |
| grant, revoke | | to_public, privileges, objects; PostgreSQL: scope⁹, grant_option, roles |
| sequence-reset | name | how, value (None: check cannot evaluate it), from_data⁴, table_emptied⁵ |
| pragma | | name, value |
| dynamic-sql | | expression (EXECUTE in PL/pgSQL: its text cannot be checked) |

¹ the column of a CHECK (col IS NOT NULL). ² ADD COLUMN ... REFERENCES; not_valid when the column has no
DEFAULT (all NULL: the server skips the check). ³ "SELECT ... INTO" or "CREATE TABLE AS" (columns empty).
⁴ setval() to a max() read from the data: the standard repair. ⁵ TRUNCATE ... RESTART IDENTITY.
⁷ SQLite and MySQL, add-column: default_expression (MySQL's `DEFAULT (expr)`), default_constant (a
literal: all SQLite's ADD COLUMN accepts); create-index: algorithm, lock, index_kind ("fulltext",
"spatial"). ⁸ MySQL's LOAD DATA [LOCAL] INFILE and SELECT ... INTO OUTFILE | DUMPFILE: the statement's
name and the file. ⁹ "object", "all in schema", "default privileges" (ALTER DEFAULT PRIVILEGES), "role membership".
¹⁰ "add-check", "set-not-null" (also ADD CONSTRAINT ... NOT NULL), "validate", or None.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Any

from dbguard.dialects import Dialect


class LockMode(IntEnum):
    """PostgreSQL table-level lock modes, weakest first ("Explicit Locking" in the docs)."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def blocks_reads(self) -> bool:
        return self is LockMode.ACCESS_EXCLUSIVE

    @property
    def blocks_writes(self) -> bool:
        return self >= LockMode.SHARE


@dataclass(frozen=True)
class Span:
    """Where a statement sits in its script: 1-based lines and columns, 0-based character offsets."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    @classmethod
    def of(cls, lines: LineIndex, start: int, end: int) -> Span:
        line, column = lines.position(start)
        end_line, end_column = lines.position(end)
        return cls(line, column, end_line, end_column, start, end)


_NEWLINE = re.compile("\n")


class LineIndex:
    """Line and column of a character offset, in O(log n): scripts can hold tens of thousands of lines."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(newline.end() for newline in _NEWLINE.finditer(text))]  # C speed: 10x enumerate

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1


@dataclass(frozen=True)
class Action:
    kind: str
    table: str | None = None
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.details.get(key, default)


@dataclass(frozen=True)
class Facts:
    """What a classifier learned about one statement."""

    kind: str
    tables_read: tuple[str, ...] = ()
    tables_written: tuple[str, ...] = ()
    # (relation, mode): the strongest lock the statement takes on each relation it names, in the order met.
    # PostgreSQL only; proven against the server's pg_locks by tests/test_lock_oracle.py.
    locks: tuple[tuple[str, LockMode], ...] = ()
    transactional: bool = True
    actions: tuple[Action, ...] = ()
    nested_sql: tuple[tuple[str, str, str], ...] = ()  # (origin, sql, language): bodies checked like top-level SQL

    @cached_property  # rules ask for it once per statement each
    def lock(self) -> LockMode | None:
        """The strongest of `locks`, or None when the statement locks no relation it names."""
        return max((mode for _, mode in self.locks), default=None)


UNRECOGNIZED = "UNRECOGNIZED"
META_COMMAND = "PSQL META-COMMAND"


@dataclass(frozen=True)
class Statement:
    index: int
    text: str
    span: Span
    dialect: Dialect
    facts: Facts
    parse_error: str | None = None
    origin: str | None = None  # "DO block", "function f()": where nested SQL came from
    parent: int | None = None  # index of the statement that holds this nested one

    @property
    def kind(self) -> str:
        return self.facts.kind

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.facts.actions

    @property
    def recognized(self) -> bool:
        return self.facts.kind not in (UNRECOGNIZED, META_COMMAND)

    def actions_of(self, *kinds: str) -> list[Action]:
        return [a for a in self.facts.actions if a.kind in kinds]


@dataclass(frozen=True)
class Script:
    """A parsed script: its source, its statements in order, and its comments (for waivers)."""

    path: str
    text: str
    dialect: Dialect
    statements: tuple[Statement, ...]
    comments: tuple[tuple[int, int], ...]  # character ranges

    @cached_property
    def top_of(self) -> dict[int, int]:
        """Statement index -> the index of the top-level statement holding it (nested SQL, such as a DO
        block's or a function's body, belongs to its parent), or its own for a top-level statement."""
        top: dict[int, int] = {}
        for statement in self.statements:  # parents come before their children: one pass reaches the top
            top[statement.index] = top[statement.parent] if statement.parent is not None else statement.index
        return top
