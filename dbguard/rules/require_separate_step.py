"""An online statement that cannot run in a transaction runs as a step of its own, outside the script's one.

Problem: none; this says what will happen. CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY,
VACUUM without FULL and ALTER TABLE ... DETACH PARTITION CONCURRENTLY let reads and writes go on, and
PostgreSQL refuses them inside a transaction block. Under a policy with `allow_online_steps = true`
(the default), `run` executes each as a step of its own, in autocommit: the steps before it commit
first, it is not rolled back with the rest of the script, and the verified backup is the fallback. A
failed CREATE INDEX CONCURRENTLY leaves an INVALID index, which `run` drops. The strict policy refuses
these statements (rule ban-non-transactional-statement).

Bad:
    CREATE INDEX CONCURRENTLY stock_sku_idx ON stock (sku);

    VACUUM (ANALYZE) stock;

Good:
    ANALYZE stock;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement
from dbguard.sql.online import online_step


@rule("require-separate-step", Severity.INFO, "Online statement run as a step of its own, outside the transaction",
      dialects=POSTGRES_ONLY)  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    what = online_step(statement)
    if what is None or not context.policy.allows_outside_transaction(statement):
        return
    on = f" on {', '.join(statement.facts.tables_written)}" if statement.facts.tables_written else ""
    yield Violation(
        message=f"{what}{on} cannot run in a transaction: `run` executes it as a step of its own, in "
        "autocommit, after committing the steps before it; it is not rolled back with the rest of the script",
        help="Nothing to change. Put the statements it depends on in the steps before it, and those that "
        "depend on it after it; if it fails, the steps before it stay committed and the verified backup is the "
        "fallback (a failed CREATE INDEX CONCURRENTLY leaves an INVALID index, which `run` drops).",
    )
