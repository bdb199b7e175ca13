"""A DO block or function body in a language dbguard cannot read.

Problem: dbguard checks the SQL inside PL/pgSQL and SQL bodies like top-level SQL. A body in another
language (plpython3u, plperl, C, ...) can run any statement, and none of it is visible to the rules:
dbguard fails closed rather than pass what it has not read.

Bad:
    DO LANGUAGE plpython3u $$ plpy.execute("DELETE FROM stock") $$;

    CREATE FUNCTION purge() RETURNS void LANGUAGE plperl AS $$ spi_exec_query("TRUNCATE stock") $$;

Good:
    DO $$ BEGIN DELETE FROM stock WHERE qty < 0; END $$;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-unchecked-body", Severity.ERROR, "Code in a language dbguard cannot check", dialects=POSTGRES_ONLY)
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("opaque-body"):
        language = action.get("language", "another language")
        yield Violation(
            message=f"{statement.kind} runs code in {language}: dbguard cannot see which statements it runs",
            help="Write the maintenance step in SQL or PL/pgSQL, which dbguard checks; or waive this rule with a "
            "reason after a review of the code.",
        )
