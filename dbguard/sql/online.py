"""The online statements that cannot run in a transaction block: the recommended way to do their job.

CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY, a plain VACUUM (no FULL) and
ALTER TABLE ... DETACH PARTITION CONCURRENTLY let reads and writes go on (SHARE UPDATE EXCLUSIVE), and
PostgreSQL refuses each of them inside a transaction block (their reference pages in the PostgreSQL 15
docs). dbguard's `run` executes such a statement as a step of its own, in autocommit, when the policy
allows it (`allow_online_steps`, on in the default policy). Other statements that refuse a transaction
(ALTER SYSTEM, CREATE/DROP DATABASE, VACUUM FULL, DISCARD ALL, REINDEX SYSTEM, ...) are not online
maintenance: only `allow_non_transactional` lets them through. (ANALYZE runs inside a transaction block:
it is transactional, nothing here.)
"""

from __future__ import annotations

from dbguard.dialects import Dialect
from dbguard.sql.model import Statement


def online_step(statement: Statement) -> str | None:
    """What makes `statement` an online statement that must run as a step of its own ("CREATE INDEX
    CONCURRENTLY", "VACUUM", ...), or None: it runs in a transaction, or it is not online maintenance."""
    if statement.facts.transactional or statement.dialect is not Dialect.POSTGRES or statement.parent is not None:
        return None
    kinds = {a.kind for a in statement.actions}
    if statement.kind == "CREATE INDEX" and _all_concurrently(statement, "create-index"):
        return "CREATE INDEX CONCURRENTLY"
    if statement.kind == "DROP INDEX" and _all_concurrently(statement, "drop"):
        return "DROP INDEX CONCURRENTLY"
    if statement.kind == "REINDEX" and _all_concurrently(statement, "reindex"):
        return "REINDEX CONCURRENTLY"
    if statement.kind == "VACUUM" and not any(a.get("full") for a in statement.actions_of("vacuum")):
        return "VACUUM"
    if statement.kind == "ALTER TABLE" and kinds <= {"alter-table", "detach-partition"} and any(
        a.get("concurrently") for a in statement.actions_of("detach-partition")
    ):
        return "DETACH PARTITION CONCURRENTLY"
    return None


def _all_concurrently(statement: Statement, kind: str) -> bool:
    actions = statement.actions_of(kind)
    return bool(actions) and all(a.get("concurrently") for a in actions)
