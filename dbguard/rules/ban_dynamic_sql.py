"""Dynamic SQL (PL/pgSQL EXECUTE) cannot be checked.

Problem: the text that EXECUTE runs is built while the block runs, so dbguard cannot see which
statement it will be: it could be a DROP TABLE as easily as a SELECT. dbguard fails closed on what
it cannot check. MySQL's `PREPARE stmt FROM @variable` is the same; `PREPARE stmt FROM 'literal'` is
checked as the statement it holds.

Bad:
    DO $$ BEGIN EXECUTE 'TRUNCATE ' || 'stock'; END $$;

Good:
    DO $$ BEGIN UPDATE stock SET qty = 0 WHERE qty < 0; END $$;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-dynamic-sql", Severity.ERROR, "Dynamic SQL that cannot be checked",
      dialects=frozenset({Dialect.POSTGRES, Dialect.MYSQL}))  # fmt: skip
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("dynamic-sql"):
        origin = f" in {statement.origin}" if statement.origin else ""
        yield Violation(
            message=f"{action.get('statement') or 'EXECUTE'} {action.get('expression')}{origin} runs SQL built at "
            "run time, which dbguard "
            "cannot check",
            help="Write the statements out as plain SQL in the script (one per table if need be) so each "
            "one is checked; if the dynamic SQL has been reviewed, waive this rule with a reason.",
        )
