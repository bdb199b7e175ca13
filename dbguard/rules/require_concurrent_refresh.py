"""REFRESH MATERIALIZED VIEW without CONCURRENTLY locks out every reader of the view.

Problem: a plain refresh holds ACCESS EXCLUSIVE on the materialized view for the whole refresh, so
every query that reads it waits until the new contents are computed.

Bad:
    REFRESH MATERIALIZED VIEW stock_summary;

Good:
    SET lock_timeout = '2s';
    REFRESH MATERIALIZED VIEW CONCURRENTLY stock_summary;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("require-concurrent-refresh", Severity.ERROR, "REFRESH MATERIALIZED VIEW without CONCURRENTLY",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("refresh"):
        if not action.get("concurrently"):
            yield Violation(
                message=f"REFRESH MATERIALIZED VIEW {action.table} holds ACCESS EXCLUSIVE for the whole refresh: "
                "every query on the view waits",
                help="Use REFRESH MATERIALIZED VIEW CONCURRENTLY (EXCLUSIVE: readers go on); it needs a unique "
                "index on the view.",
            )
