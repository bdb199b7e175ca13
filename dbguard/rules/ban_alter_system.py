"""ALTER SYSTEM changes the configuration of the whole server.

Problem: ALTER SYSTEM writes postgresql.auto.conf. It cannot run in a transaction, cannot be rolled
back with the script, and affects every database and session on the server after the next reload
or restart: far outside what a maintenance script should touch.

Bad:
    ALTER SYSTEM SET work_mem = '1GB';

    ALTER SYSTEM RESET ALL;

Good:
    SET LOCAL work_mem = '256MB';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import POSTGRES_ONLY, RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-alter-system", Severity.ERROR, "ALTER SYSTEM changes server configuration", dialects=POSTGRES_ONLY)
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("alter-system"):
        setting = f"the setting {action.get('name')}" if action.get("name") else "every setting"
        yield Violation(
            message=f"ALTER SYSTEM changes {setting} for the whole server; it cannot be rolled back with the script",
            help="Use SET LOCAL for a setting this script needs; change server configuration through the "
            "usual reviewed configuration process, not a maintenance script.",
        )
