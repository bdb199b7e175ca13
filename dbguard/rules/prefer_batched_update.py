"""An UPDATE or DELETE on a large table that cannot find its rows by index: batch it.

Problem: a backfill such as `UPDATE orders SET region = 'eu' WHERE region IS NULL` on a table of
millions of rows scans the whole table and locks every row it changes until the transaction commits:
concurrent writers of those rows wait, dead tuples pile up, replicas fall behind. IS NULL / IS NOT NULL
on an unindexed column, a join (UPDATE ... FROM, DELETE ... USING), a missing WHERE, or any WHERE with no
equality or range on a column that leads an index: the server must read every row. This rule needs
the table's size and indexes (`check --db` or `check --stats`); offline it never fires. It fires
only above the policy's `large_table_rows` (default 100,000).

Bad:
    UPDATE orders SET region = 'eu' WHERE region IS NULL;

    UPDATE orders o SET region = c.region FROM customers c WHERE c.id = o.customer_id;

Good:
    WITH batch AS (SELECT id FROM orders WHERE region IS NULL LIMIT 10000 FOR UPDATE SKIP LOCKED)
    UPDATE orders SET region = 'eu' FROM batch WHERE orders.id = batch.id;
    -- dbguard: step
    WITH batch AS (SELECT id FROM orders WHERE region IS NULL LIMIT 10000 FOR UPDATE SKIP LOCKED)
    UPDATE orders SET region = 'eu' FROM batch WHERE orders.id = batch.id;

    UPDATE orders SET region = 'eu' WHERE id = 42;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.catalog.snapshot import TableInfo
from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement
from dbguard.sql.row_search import RowSearch, row_searches


@rule("prefer-batched-update", Severity.WARNING, "UPDATE or DELETE on a large table that cannot use an index")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if context.catalog is None or not statement.actions_of("update", "delete"):
        return
    large = context.policy.thresholds.large_table_rows
    for search in row_searches(statement):
        table = context.table(search.table, statement)
        if table is None or table.estimated_rows is None or table.estimated_rows <= large:
            continue
        indexed = table.indexed_leading_columns()
        if search.bounded or (search.has_where and not search.joined and search.index_usable(indexed)):
            continue
        yield Violation(message=f"{search.kind.upper()} {search.table} {_why(search, indexed)}: one statement "
                        "reads the whole table and holds every changed row's lock until commit",
                        help=_recipe(search, table, statement.dialect))  # fmt: skip


def _why(search: RowSearch, indexed: set[str]) -> str:
    if not search.has_where:
        return "has no WHERE"
    if search.joined:
        return "joins another table to find its rows"
    nulls = [column for column, op in search.terms if op in ("null", "not-null") and column not in indexed]
    if nulls:
        return f"finds its rows by IS [NOT] NULL on {', '.join(dict.fromkeys(nulls))}, which no index leads"
    return "has no equality or range on an indexed column in its WHERE"


def _key(table: TableInfo, dialect: Dialect) -> str:
    for constraint in table.constraints:
        if constraint.type == "primary":
            unique = [i for i in table.indexes if i.unique and i.valid and len(i.columns) == 1 and i.columns[0]]
            if unique:
                return str(unique[0].columns[0])
    return "rowid" if dialect is Dialect.SQLITE else "id"


def _recipe(search: RowSearch, table: TableInfo, dialect: Dialect) -> str:
    where = search.condition or "<the rows to change>"
    name, key, update = search.table, _key(table, dialect), search.kind == "update"
    head = f"UPDATE {name} SET ..." if update else f"DELETE FROM {name}"
    if dialect is Dialect.POSTGRES:
        pick = f"WITH batch AS (SELECT {key} FROM {name} WHERE {where} LIMIT 10000 FOR UPDATE SKIP LOCKED) "
        batch = pick + (f"UPDATE {name} SET ... FROM batch WHERE {name}.{key} = batch.{key};" if update
                        else f"DELETE FROM {name} USING batch WHERE {name}.{key} = batch.{key};")  # fmt: skip
    elif dialect is Dialect.MYSQL:
        batch = f"{head} WHERE {where} LIMIT 10000;"
    else:
        batch = f"{head} WHERE {key} IN (SELECT {key} FROM {name} WHERE {where} LIMIT 10000);"
    return (f"Change the rows in batches, each in its own transaction: repeat `{batch}` with a `-- dbguard: step` "
            "line between repetitions until it changes no row (its WHERE must leave out the rows already "
            "changed, as an IS NULL backfill does); or first create an index the WHERE can use")  # fmt: skip
