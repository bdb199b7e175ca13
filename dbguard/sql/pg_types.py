"""PostgreSQL column types, and whether changing one to another rewrites the table.

ALTER TABLE's reference page (PostgreSQL 15): "when changing the type of an existing column, if the USING
clause does not change the column contents and the old type is either binary coercible to the new type or
an unconstrained domain over the new type, a table rewrite is not needed". Binary-coercible pairs are the
`castmethod = 'b'` rows of pg_cast (varchar -> text, text -> varchar, cidr -> inet, xml -> text, ...); a
length or precision that only widens is checked by the type's support function, with no rewrite
(varchar(n) -> varchar(m) for m >= n, numeric(p,s) -> numeric(q,s) for q >= p or -> numeric, varbit
likewise, timestamp/time/interval precision raised). Everything else rewrites the table and its indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pglast
from pglast import ast

# (old, new) pairs that are binary coercible, as pg_cast lists them, for the types scripts change.
_BINARY_COERCIBLE = frozenset({("varchar", "text"), ("text", "varchar"), ("cidr", "inet"), ("xml", "text")})
# Types whose length or precision may grow without a rewrite.
_WIDENING = frozenset({"varchar", "varbit", "numeric", "timestamp", "timestamptz", "time", "timetz", "interval"})
# New types that some other type (or a narrower form of the same one) reaches without a rewrite.
_REACHABLE_WITHOUT_REWRITE = frozenset({"text", "inet"}) | _WIDENING


@dataclass(frozen=True)
class ColumnType:
    """A type as the server names it internally (varchar, int4, timestamptz), with its modifiers."""

    name: str
    modifiers: tuple[int, ...] = ()
    array: bool = False

    @classmethod
    def of(cls, type_name: ast.TypeName) -> ColumnType:
        names = [str(n.sval).lower() for n in type_name.names or () if isinstance(n, ast.String)]
        modifiers = tuple(int(m.val.ival) for m in type_name.typmods or () if isinstance(getattr(m, "val", None),
                                                                                       ast.Integer))  # fmt: skip
        return cls(names[-1] if names else "", modifiers, bool(type_name.arrayBounds))

    @classmethod
    def parse(cls, text: str) -> ColumnType | None:
        """From SQL ("varchar(20)") or format_type()'s words ("character varying(20)"); None if not a type."""
        try:
            (raw,) = pglast.parse_sql(f"SELECT NULL::{text}")
        except (pglast.parser.ParseError, ValueError):
            return None
        select = raw.stmt
        targets = select.targetList if isinstance(select, ast.SelectStmt) else None
        cast = targets[0].val if targets and isinstance(targets[0], ast.ResTarget) else None
        if isinstance(cast, ast.TypeCast) and cast.typeName is not None:
            return cls.of(cast.typeName)
        return None

    def __str__(self) -> str:
        modifiers = f"({','.join(map(str, self.modifiers))})" if self.modifiers else ""
        return f"{_SQL_NAMES.get(self.name, self.name)}{modifiers}{'[]' if self.array else ''}"


# The internal names pglast and the catalogs use, as scripts write them.
_SQL_NAMES = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
              "bool": "boolean", "bpchar": "char"}  # fmt: skip


def rewrites(old: ColumnType, new: ColumnType) -> bool:
    """Whether ALTER COLUMN ... TYPE from `old` to `new` (with no USING) rewrites the table."""
    if old.array != new.array:
        return True
    if old.name == new.name:
        return not (old.modifiers == new.modifiers or (old.name in _WIDENING and _widens(old, new)))
    if (old.name, new.name) in _BINARY_COERCIBLE:
        return bool(new.modifiers)  # text -> varchar(n) must check every value's length
    return True


def may_skip_rewrite(new: ColumnType) -> bool:
    """Offline (the current type unknown): whether some current type could reach `new` without a rewrite."""
    return not new.array and new.name in _REACHABLE_WITHOUT_REWRITE


def _widens(old: ColumnType, new: ColumnType) -> bool:
    if not new.modifiers:
        return True  # numeric, varchar, varbit with no limit: every old value fits as it is
    if not old.modifiers:
        return False  # a limit where there was none: every value must be checked
    if old.name == "numeric":
        old_scale = old.modifiers[1] if len(old.modifiers) > 1 else 0
        new_scale = new.modifiers[1] if len(new.modifiers) > 1 else 0
        return new_scale == old_scale and new.modifiers[0] >= old.modifiers[0]
    return new.modifiers[0] >= old.modifiers[0]
