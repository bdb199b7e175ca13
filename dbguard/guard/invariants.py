"""The policy's invariants, checked on a target before COMMIT: each one becomes a `CheckResult`.

Every check is a query through `Target.query`, so one implementation serves PostgreSQL and SQLite.
An invariant that cannot be evaluated (bad SQL, a missing table or column, a value that cannot be
written as SQL) fails: it never passes because it could not run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from dbguard.dialects import Dialect
from dbguard.policy.policy import Invariant
from dbguard.targets.model import UNCHECKED, CheckResult, TableStats, Target
from dbguard.targets.sqlite import quote_identifier

SAMPLE_LIMIT = 10


class _Unresolved(Exception):
    """The invariant names a table the target does not have."""


def evaluate(invariants: Sequence[Invariant], target: Target, before: Mapping[str, TableStats],
             after: Mapping[str, TableStats]) -> list[CheckResult]:  # fmt: skip
    """One result per invariant, in order. `before` and `after` are keyed by canonical table name."""
    return [_evaluate_one(invariant, target, before, after) for invariant in invariants]


def _evaluate_one(invariant: Invariant, target: Target, before: Mapping[str, TableStats],
                  after: Mapping[str, TableStats]) -> CheckResult:  # fmt: skip
    try:
        if invariant.kind == "row_count":
            return _row_count(invariant, target, before, after)
        sql, what = _violations_query(invariant, target)
        columns, rows = target.query_with_columns(sql, limit=SAMPLE_LIMIT + 1)
    except _Unresolved as error:
        return CheckResult(invariant.name, False, str(error))
    except Exception as error:  # whatever stops the check fails the invariant: fail closed
        return CheckResult(invariant.name, False, f"{UNCHECKED}: {_first_line(error)}")
    if not rows:
        return CheckResult(invariant.name, True, f"no {what}")
    count = f"more than {SAMPLE_LIMIT}" if len(rows) > SAMPLE_LIMIT else str(len(rows))
    sample = tuple(tuple(row) for row in rows[:SAMPLE_LIMIT])
    return CheckResult(invariant.name, False, f"{count} {what}", sample, columns=columns)


def _violations_query(invariant: Invariant, target: Target) -> tuple[str, str]:
    """The query whose rows are the violations, and what those rows are (for the result's detail)."""
    if invariant.kind == "sql":
        if not invariant.sql:
            raise ValueError("a sql invariant needs a query")
        # As a subquery it can only be a query: a DELETE here must fail, not "return no rows" and pass.
        query = invariant.sql.strip().rstrip(";")
        return f"SELECT * FROM (\n{query}\n) AS invariant", "row(s) returned by the invariant's query"
    if not invariant.columns:
        raise ValueError(f"a {invariant.kind} invariant needs columns")
    table = _table(invariant, target)
    # Qualified with the table's alias: SQLite reads a bare "name" that is no column as a string, which
    # would make `"typo" IS NULL` quietly false; `t."typo"` is an error, as it should be.
    columns = [f"t.{quote_identifier(column)}" for column in invariant.columns]
    names = ", ".join(invariant.columns)
    if invariant.kind == "not_null":
        where = " OR ".join(f"{column} IS NULL" for column in columns)
        return f"SELECT t.* FROM {table} AS t WHERE {where}", f"row(s) of {invariant.table} with NULL in {names}"
    if invariant.kind == "unique":
        # NULLs are distinct, as in a UNIQUE constraint: a key with a NULL in it duplicates nothing.
        keyed = " AND ".join(f"{column} IS NOT NULL" for column in columns)
        grouped = ", ".join(columns)
        sql = f"SELECT {grouped}, count(*) FROM {table} AS t WHERE {keyed} GROUP BY {grouped} HAVING count(*) > 1"
        return sql, f"duplicated value(s) of ({names}) in {invariant.table}"
    if invariant.kind == "accepted_values":
        # NULL stays out of the list: `x NOT IN (..., NULL)` is never true, which would pass every row.
        listed = ", ".join(sql_literal(value, target.dialect) for value in invariant.values if value is not None)
        outside = [f"{column} IS NOT NULL" + (f" AND {column} NOT IN ({listed})" if listed else "")
                   for column in columns]  # fmt: skip
        where = " OR ".join(f"({condition})" for condition in outside)
        return f"SELECT t.* FROM {table} AS t WHERE {where}", f"row(s) of {invariant.table} with {names} not accepted"
    raise ValueError(f"unknown invariant kind {invariant.kind!r}")


def _row_count(invariant: Invariant, target: Target, before: Mapping[str, TableStats],
               after: Mapping[str, TableStats]) -> CheckResult:  # fmt: skip
    name, spelled = invariant.name, invariant.table or ""
    canonical = target.resolve([spelled]).get(spelled)
    key = canonical or _stats_key(spelled, before)  # a table the script dropped resolves no more
    old, new = before.get(key), after.get(key)
    if old is not None and new is None and canonical is None:
        return CheckResult(name, False, f"{spelled} had {old.rows} row(s) before the script and no longer exists")
    if old is None or new is None:
        missing = " and ".join(side for side, stats in (("before", old), ("after", new)) if stats is None)
        return CheckResult(name, False, f"no row counts for {spelled} {missing} the script")  # fail closed
    delta = new.rows - old.rows
    removed_percent = 100.0 * max(0, -delta) / old.rows if old.rows else 0.0
    detail = f"{old.table}: {old.rows} -> {new.rows} row(s), net change {delta:+d}"
    problems = []
    if invariant.min_delta is not None and delta < invariant.min_delta:
        problems.append(f"below the minimum change {invariant.min_delta:+d}")
    if invariant.max_delta is not None and delta > invariant.max_delta:
        problems.append(f"above the maximum change {invariant.max_delta:+d}")
    if invariant.max_delete_percent is not None and removed_percent > invariant.max_delete_percent:
        problems.append(f"{removed_percent:.1f}% removed, more than {invariant.max_delete_percent:g}%")
    return CheckResult(name, not problems, "; ".join([detail, *problems]))


def _stats_key(spelled: str, stats: Mapping[str, TableStats]) -> str:
    """The one key of `stats` that names the table as spelled ("stock" for "public.stock"), if any."""
    wanted = spelled.lower()
    matches = [key for key in stats if key.lower() == wanted or key.lower().endswith("." + wanted)]
    return matches[0] if len(matches) == 1 else spelled


def _table(invariant: Invariant, target: Target) -> str:
    spelled = invariant.table or ""
    canonical = target.resolve([spelled]).get(spelled)
    if canonical is None:
        raise _Unresolved(f"table {spelled!r} does not exist")
    return quote_table(canonical, target.dialect)


def quote_table(canonical: str, dialect: Dialect) -> str:
    """A canonical table name as SQL: "schema"."table" on PostgreSQL; one name on SQLite, where a dot
    may be part of the name itself."""
    if dialect is Dialect.POSTGRES and "." in canonical:
        schema, _, table = canonical.partition(".")
        return f"{quote_identifier(schema)}.{quote_identifier(table)}"
    return quote_identifier(canonical)


def sql_literal(value: Any, dialect: Dialect) -> str:
    """A value as an SQL literal, for queries that can only be passed as text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if dialect is Dialect.POSTGRES:
            return "TRUE" if value else "FALSE"
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no SQL literal")
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        if "\0" in value:
            raise ValueError("a string with a NUL character has no SQL literal")
        if "\\" in value and dialect is not Dialect.SQLITE:
            # An E'' string means the same whatever standard_conforming_strings is set to; MySQL always
            # reads backslashes as escapes.
            escaped = value.replace("\\", "\\\\").replace("'", "''")
            return f"E'{escaped}'" if dialect is Dialect.POSTGRES else f"'{escaped}'"
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} value {value!r}")


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
