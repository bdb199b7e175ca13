"""A statement that cannot run inside a transaction, and so cannot be rolled back.

Problem: dbguard runs a script inside one transaction, checks integrity before COMMIT and rolls back
on any failure. Some statements refuse to run in a transaction block, so they fall outside that
guarantee. The online ones (CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM without FULL,
DETACH PARTITION CONCURRENTLY) are the recommended practice: the default policy lets `run` execute
each as a step of its own (see require-separate-step); the strict policy (`allow_online_steps =
false`) refuses them. Every other one (ALTER SYSTEM, CREATE/DROP DATABASE, VACUUM FULL, DISCARD ALL,
SQLite's VACUUM) is refused unless the policy sets `allow_non_transactional = true`. MySQL's DDL
commits implicitly instead of refusing: that matters when a script mixes it with DML, which is rule
ban-mixed-ddl-and-dml.

Bad:
    CREATE DATABASE warehouse_copy;

    VACUUM FULL stock;

Good:
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

    ANALYZE stock;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement
from dbguard.sql.online import online_step


@rule("ban-non-transactional-statement", Severity.ERROR, "Statement that cannot run in a transaction")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if statement.facts.transactional or context.policy.allows_outside_transaction(statement):
        return
    if statement.dialect is Dialect.MYSQL:
        return  # it commits implicitly: alone it is all or nothing; mixed with DML, ban-mixed-ddl-and-dml fires
    on = f" on {', '.join(statement.facts.tables_written)}" if statement.facts.tables_written else ""
    why = "cannot run in a transaction"
    online = online_step(statement)
    concurrently = any(a.get("concurrently") for a in statement.actions)
    what = online or (f"{statement.kind} CONCURRENTLY" if concurrently else statement.kind)
    if online:
        yield Violation(
            message=f"{what}{on} {why}, and the policy refuses online steps outside the transaction "
            "(allow_online_steps = false)",
            help=f"Run {what} outside dbguard, in a maintenance window of its own; or, after review, set "
            "allow_online_steps = true in the policy so dbguard runs it as a step of its own with the verified "
            "backup as the fallback.",
        )
        return
    yield Violation(
        message=f"{what}{on} {why}: dbguard runs the script in one transaction, so it is "
        "refused, and it could not be rolled back if it were run",
        help="Use the transactional form where there is one (VACUUM instead of VACUUM FULL; REINDEX or CREATE "
        "INDEX CONCURRENTLY run as their own step); run server or database administration on its own, outside "
        "this script; or, after review, set allow_non_transactional = true in the policy so dbguard runs it as "
        "a separate step with the verified backup as the fallback.",
    )
