"""`verify`'s checks on a live PostgreSQL database, through a read-only session, each one statement.

- every validated CHECK constraint, re-evaluated row by row on the table that declares it (a partitioned
  table's scan covers its partitions; the partitions' inherited copies are skipped, so no row counts twice);
- every validated foreign key, by an anti-join from the referencing table (the constraint the user declared:
  its partition clones, conparentid <> 0, are covered by it);
- every column of a domain type with CHECK constraints, re-cast to its domain on the leaf tables;
- invalid indexes (`pg_index.indisvalid` or `indisready` false);
- amcheck's `bt_index_check` on every btree index, when the extension is already installed (verify never
  installs anything: its session is read-only).

`sample_percent` reads that share of each table's pages (TABLESAMPLE SYSTEM) in the row-by-row checks.
The SQL follows the catalogs of PostgreSQL 12 and later.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from dbguard.errors import ConnectionFailure
from dbguard.monitor.model import CheckOutcome, Status
from dbguard.monitor.runner import PlannedCheck
from dbguard.targets.postgres import SAMPLE_LIMIT, ForeignKey, PostgresTarget, error_text, fk_side, table_identifier
from dbguard.targets.postgres_objects import USER_SCHEMA

_CORRUPTION_SQLSTATES = {"XX001", "XX002"}  # data_corrupted, index_corrupted
_SEED = secrets.randbelow(2**31)  # TABLESAMPLE's REPEATABLE seed, one per process

_CHECK_CONSTRAINTS = SQL("""
SELECT n.nspname || '.' || c.relname || '.' || con.conname, n.nspname || '.' || c.relname,
  pg_get_expr(con.conbin, con.conrelid), pg_get_constraintdef(con.oid), con.connoinherit
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'c' AND con.convalidated AND con.coninhcount = 0 AND c.relkind IN ('r', 'p') AND {user_schema}
ORDER BY 1""").format(user_schema=USER_SCHEMA)
_FOREIGN_KEYS = SQL("""
SELECT n.nspname || '.' || c.relname || '.' || con.conname, n.nspname || '.' || c.relname,
  pn.nspname || '.' || p.relname,
  ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.position),
  ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.position),
  con.confmatchtype = 'f', c.relkind = 'r', p.relkind = 'r'
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE con.contype = 'f' AND con.convalidated AND con.conparentid = 0 AND {user_schema}
ORDER BY 1""").format(user_schema=USER_SCHEMA)
# Leaf tables only: a partitioned table's column is its partitions' column.
_DOMAIN_COLUMNS = SQL("""
SELECT n.nspname || '.' || c.relname, a.attname, tn.nspname, t.typname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid AND t.typtype = 'd' JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND {user_schema}
  AND EXISTS (  -- a validated CHECK on the column's domain, or on a domain it is built on (any depth)
    WITH RECURSIVE chain(oid) AS (
      SELECT t.oid UNION ALL SELECT b.typbasetype FROM pg_type b JOIN chain ON b.oid = chain.oid WHERE b.typtype = 'd')
    SELECT FROM pg_constraint d JOIN chain ON d.contypid = chain.oid WHERE d.contype = 'c' AND d.convalidated)
ORDER BY 1, 2""").format(user_schema=USER_SCHEMA)
_INVALID_INDEXES = SQL("""
SELECT n.nspname || '.' || ic.relname, tn.nspname || '.' || tc.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
WHERE NOT (i.indisvalid AND i.indisready) AND {user_schema}
ORDER BY 1""").format(user_schema=USER_SCHEMA)
_INDEX_COUNT = SQL("""
SELECT count(*) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE {user_schema}""").format(user_schema=USER_SCHEMA)
_AMCHECK_SCHEMA = "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace " \
                  "WHERE e.extname = 'amcheck'"  # fmt: skip
_BTREE_INDEXES = SQL("""
SELECT n.nspname || '.' || ic.relname, tn.nspname || '.' || tc.relname, i.indexrelid
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
JOIN pg_am am ON am.oid = ic.relam
WHERE am.amname = 'btree' AND ic.relkind = 'i' AND i.indisvalid AND i.indisready AND ic.relpersistence <> 't'
  AND {user_schema}
ORDER BY 1""").format(user_schema=USER_SCHEMA)


def planned_checks(target: PostgresTarget, sample_percent: float | None) -> list[PlannedCheck]:
    """Every check verify runs on this database, cheapest first (the catalogs are read now)."""
    conn = target.conn
    checks = [PlannedCheck("invalid index", "all indexes", None, lambda: _invalid_indexes(conn))]
    for name, table, expression, definition, no_inherit in conn.execute(_CHECK_CONSTRAINTS).fetchall():
        run = partial(_check_constraint, conn, name, table, expression, definition, no_inherit, sample_percent)
        checks.append(PlannedCheck("check constraint", name, table, run))
    for fields in conn.execute(_FOREIGN_KEYS).fetchall():
        key = ForeignKey(*fields)
        run = partial(_foreign_key, conn, key, sample_percent)
        checks.append(PlannedCheck("foreign key", key.name, key.table, run))
    for table, column, domain_schema, domain in conn.execute(_DOMAIN_COLUMNS).fetchall():
        subject = f"{table}.{column}"
        run = partial(_domain_column, conn, table, column, (domain_schema, domain), sample_percent)
        checks.append(PlannedCheck("domain check", subject, table, run))
    return checks


def amcheck_checks(target: PostgresTarget) -> list[PlannedCheck]:
    """bt_index_check on every btree index, or one SKIPPED outcome when amcheck is not installed."""
    conn = target.conn
    row = conn.execute(_AMCHECK_SCHEMA).fetchone()
    if row is None:
        skipped = CheckOutcome("amcheck", "btree indexes", None, Status.SKIPPED,
                               "amcheck is not installed in this database (verify installs nothing; "
                               "CREATE EXTENSION amcheck enables this check)")  # fmt: skip
        return [PlannedCheck("amcheck", "btree indexes", None, lambda: skipped)]
    function = Identifier(str(row[0]), "bt_index_check")
    return [PlannedCheck("amcheck", name, table, partial(_bt_index_check, conn, function, name, table, oid))
            for name, table, oid in conn.execute(_BTREE_INDEXES).fetchall()]  # fmt: skip


def arm(conn: psycopg.Connection[Any], lock_timeout: str) -> Callable[[float | None], None]:
    """Bound the next check by the budget's remaining seconds (statement_timeout), and never wait long for
    a lock a maintenance script holds (`lock_timeout`, as PostgreSQL spells it: "2s")."""

    def set_timeouts(remaining: float | None) -> None:
        statement_ms = 0 if remaining is None else max(1, int(remaining * 1000))
        conn.execute("SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
                     (str(statement_ms), lock_timeout))  # fmt: skip

    return set_timeouts


def why_stopped(conn: psycopg.Connection[Any]) -> Callable[[Exception], str]:
    def reason(error: Exception) -> str:
        if conn.broken:
            raise ConnectionFailure(f"the connection was lost during verify: {_text(error)}") from None
        if isinstance(error, psycopg.errors.QueryCanceled) and "statement timeout" in str(error):
            return "stopped: the time budget ran out during this check"  # the only statement_timeout verify sets
        if isinstance(error, psycopg.errors.LockNotAvailable):
            return "not checked: another session holds a lock on the table (lock_timeout)"
        if isinstance(error, psycopg.Error):
            return f"could not run: {error_text(error)}"
        raise error  # not the database's answer: a bug, reported as one

    return reason


# -- the checks --


def _sampled(sample_percent: float | None) -> Composable:
    """TABLESAMPLE SYSTEM with a seed of this process's own (REPEATABLE): the count and the rows shown read
    the same pages, and another run of verify reads other pages."""
    if sample_percent is None:
        return SQL("")
    return SQL(" TABLESAMPLE SYSTEM ({}) REPEATABLE ({})").format(Literal(sample_percent), Literal(_SEED))


def _counted(conn: psycopg.Connection[Any], shown: Composable, source: Composed,
             ) -> tuple[int, tuple[str, ...], list[tuple[Any, ...]]]:  # fmt: skip
    """(the rows of `FROM ... WHERE ...` in `source`, the names of the `shown` columns, up to SAMPLE_LIMIT
    of those rows). The count is a query of its own, which the server may run in parallel; the rows are
    fetched only when there are some: a clean table is read once."""
    row = conn.execute(SQL("SELECT count(*) {}").format(source)).fetchone()
    found = int(row[0]) if row else 0
    if not found:
        return 0, (), []
    cursor = conn.execute(SQL("SELECT {} {} LIMIT {}").format(shown, source, Literal(SAMPLE_LIMIT)))
    columns = tuple(column.name for column in cursor.description or ())
    return found, columns, [tuple(row) for row in cursor.fetchall()]


def _invalid_indexes(conn: psycopg.Connection[Any]) -> CheckOutcome:
    rows = conn.execute(_INVALID_INDEXES).fetchall()
    if not rows:
        (total,) = conn.execute(_INDEX_COUNT).fetchone() or (0,)
        return CheckOutcome("invalid index", "all indexes", None, Status.PASS, f"all {total} index(es) are valid", 0)
    names = ", ".join(str(row[0]) for row in rows)
    return CheckOutcome("invalid index", "all indexes", None, Status.FAIL,
                        f"{len(rows)} index(es) INVALID (a failed CREATE INDEX CONCURRENTLY or REINDEX): {names}",
                        len(rows), columns=("index", "table", "definition"),
                        sample=tuple(tuple(row) for row in rows[:SAMPLE_LIMIT]))  # fmt: skip


def _check_constraint(conn: psycopg.Connection[Any], name: str, table: str, expression: str, definition: str,
                      no_inherit: bool, sample_percent: float | None) -> CheckOutcome:  # fmt: skip
    # NOT (expr): a CHECK passes on NULL, and so does this filter
    source = SQL("FROM {only}{table} AS t{sampled} WHERE NOT ({expression})").format(
        only=SQL("ONLY ") if no_inherit else SQL(""), table=table_identifier(table),
        sampled=_sampled(sample_percent), expression=SQL(expression))  # fmt: skip
    found, columns, sample = _counted(conn, SQL("t.*"), source)
    where = _where(table, sample_percent)
    if not found:
        return CheckOutcome("check constraint", name, table, Status.PASS, f"{definition}: holds for every row{where}",
                            0, sample_percent)  # fmt: skip
    return CheckOutcome("check constraint", name, table, Status.FAIL,
                        f"{definition}: {found} row(s){where} violate it", found, sample_percent,
                        columns=columns, sample=tuple(sample))  # fmt: skip


def _foreign_key(conn: psycopg.Connection[Any], key: ForeignKey, sample_percent: float | None) -> CheckOutcome:
    """A plain table's INHERITS children are left out on both sides (see targets.postgres.ForeignKey); a
    partitioned table's rows are all in its partitions."""
    columns = [Identifier("c", column) for column in key.columns]
    # MATCH SIMPLE skips a key with any NULL; MATCH FULL checks every key that is not all NULL
    keyed = (SQL(" OR ") if key.match_full else SQL(" AND ")).join(SQL("{} IS NOT NULL").format(c) for c in columns)
    pairs = zip(key.referenced_columns, columns, strict=True)
    matches = SQL(" AND ").join(SQL("{} = {}").format(Identifier("p", parent), column) for parent, column in pairs)
    source = SQL("FROM {table} AS c{sampled} WHERE ({keyed}) "
                 "AND NOT EXISTS (SELECT FROM {referenced} AS p WHERE {matches})").format(
        table=fk_side(key.table, key.only), sampled=_sampled(sample_percent), keyed=keyed,
        referenced=fk_side(key.referenced_table, key.referenced_only), matches=matches)
    found, _columns, sample = _counted(conn, SQL(", ").join(columns), source)
    shape = f"{key.table} ({', '.join(key.columns)}) -> {key.referenced_table} ({', '.join(key.referenced_columns)})"
    where = _where(key.table, sample_percent)
    if not found:
        return CheckOutcome("foreign key", key.name, key.table, Status.PASS, f"{shape}: every key{where} has its row",
                            0, sample_percent)  # fmt: skip
    return CheckOutcome("foreign key", key.name, key.table, Status.FAIL,
                        f"{shape}: {found} row(s){where} reference a missing row", found, sample_percent,
                        columns=tuple(key.columns), sample=tuple(sample))  # fmt: skip


def _domain_column(conn: psycopg.Connection[Any], table: str, column: str, domain: tuple[str, str],
                   sample_percent: float | None) -> CheckOutcome:  # fmt: skip
    """The column's values cast to their domain again through text, which runs every CHECK of the domain
    (and of the domains it is built on); the first violation ends the query with the server's message."""
    subject, where = f"{table}.{column}", _where(table, sample_percent)
    query = SQL("SELECT count(*) FROM {table}{sampled} WHERE {column} IS NOT NULL "
                "AND ({column}::text::{domain}) IS NULL").format(
        table=table_identifier(table), sampled=_sampled(sample_percent), column=Identifier(column),
        domain=Identifier(*domain))
    try:
        with conn.transaction():
            conn.execute(query)
    except psycopg.errors.CheckViolation as error:
        broken = error.diag.constraint_name or ""
        if not _domain_constraint_validated(conn, domain, broken):
            # ALTER DOMAIN ... ADD ... NOT VALID leaves the rows it finds: not a broken promise, but the query
            # stopped there, so the validated constraints were not checked past that value
            return CheckOutcome("domain check", subject, table, Status.INCOMPLETE,
                                f"a value{where} breaks {broken}, a NOT VALID constraint of the domain "
                                f"{'.'.join(domain)} (old rows may: not a violation); its validated constraints "
                                "could not be checked past it", None, sample_percent)  # fmt: skip
        return CheckOutcome("domain check", subject, table, Status.FAIL,
                            f"a value{where} violates its domain {'.'.join(domain)}: {error_text(error)}",
                            None, sample_percent)  # fmt: skip
    return CheckOutcome("domain check", subject, table, Status.PASS,
                        f"every value{where} satisfies its domain {'.'.join(domain)}", 0, sample_percent)  # fmt: skip


_DOMAIN_CONSTRAINT_VALIDATED = """
WITH RECURSIVE chain(oid) AS (
  SELECT to_regtype(%s)::oid
  UNION ALL SELECT t.typbasetype FROM pg_type t JOIN chain ON t.oid = chain.oid WHERE t.typtype = 'd')
SELECT bool_and(con.convalidated) FROM pg_constraint con JOIN chain ON con.contypid = chain.oid
WHERE con.conname = %s"""


def _domain_constraint_validated(conn: psycopg.Connection[Any], domain: tuple[str, str], constraint: str) -> bool:
    """Whether `constraint`, of the domain or a domain it is built on, is validated; True when it cannot be
    told (the violation then stands as one)."""
    spelled = Identifier(*domain).as_string(conn)
    row = conn.execute(_DOMAIN_CONSTRAINT_VALIDATED, (spelled, constraint)).fetchone()
    return row is None or row[0] is not False


def _bt_index_check(conn: psycopg.Connection[Any], function: Identifier, name: str, table: str,
                    oid: int) -> CheckOutcome:  # fmt: skip
    try:
        with conn.transaction():
            conn.execute(SQL("SELECT {}({}::oid::regclass)").format(function, Literal(oid)))
    except psycopg.Error as error:
        if error.sqlstate not in _CORRUPTION_SQLSTATES:
            raise  # not about the index: the runner reports the check INCOMPLETE
        return CheckOutcome("amcheck", name, table, Status.FAIL, f"bt_index_check: {error_text(error)}", 1,
                            columns=("index", "error"), sample=((name, error_text(error)),))  # fmt: skip
    return CheckOutcome("amcheck", name, table, Status.PASS, "bt_index_check found the btree consistent", 0)


def _where(table: str, sample_percent: float | None) -> str:
    return f" of {table}" if sample_percent is None else f" in a {sample_percent:g}% sample of {table}'s pages"


def _text(error: Exception) -> str:
    return error_text(error) if isinstance(error, psycopg.Error) else str(error)
