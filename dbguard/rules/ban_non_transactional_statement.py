"""A statement that cannot run inside a transaction, and so cannot be rolled back.

Problem: dbguard runs a script inside one transaction, checks integrity before COMMIT and rolls back
on any failure. VACUUM, CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, CREATE/DROP DATABASE and
ALTER SYSTEM refuse to run in a transaction block, so they fall outside that guarantee. They are
refused unless the policy sets `allow_non_transactional = true`; then they run as separate steps
with the verified backup as the only fallback.

Bad:
    VACUUM stock;

    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

Good:
    CREATE INDEX stock_sku_idx ON stock (sku);

    ANALYZE stock;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-non-transactional-statement", Severity.ERROR, "Statement that cannot run in a transaction")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if not statement.facts.transactional and not context.policy.allow_non_transactional:
        on = f" on {', '.join(statement.facts.tables_written)}" if statement.facts.tables_written else ""
        # MySQL accepts DDL in a transaction but commits implicitly around it: rollback is lost all the same
        mysql = statement.dialect is Dialect.MYSQL
        why = "commits implicitly in MySQL" if mysql else "cannot run in a transaction"
        concurrently = any(a.get("concurrently") for a in statement.actions)
        what = f"{statement.kind} CONCURRENTLY" if concurrently else statement.kind
        yield Violation(
            message=f"{what}{on} {why}: dbguard runs the script in one transaction, so it is "
            "refused, and it could not be rolled back if it were run",
            help="Use the transactional form where there is one (CREATE INDEX or REINDEX without "
            "CONCURRENTLY); run maintenance such as VACUUM on its own, outside this script; or, after "
            "review, set allow_non_transactional = true in the policy so dbguard runs it as a separate "
            "step with the verified backup as the fallback.",
        )
