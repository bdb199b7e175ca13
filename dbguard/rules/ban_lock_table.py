"""An explicit LOCK TABLE holds a table lock until the end of the transaction.

Problem: PostgreSQL's LOCK TABLE takes the named lock (ACCESS EXCLUSIVE by default) and keeps it until
COMMIT (docs, LOCK). Every query that conflicts with it, and with ACCESS EXCLUSIVE that is every query,
waits for the whole rest of the script. MySQL's LOCK TABLES also commits the open transaction first,
which breaks the run's single transaction and its rollback.

Bad:
    LOCK TABLE stock;

    LOCK TABLE stock IN SHARE ROW EXCLUSIVE MODE;

Good:
    SELECT * FROM stock WHERE sku = 'A-1' FOR UPDATE;
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.dialects import Dialect
from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import LockMode, Statement


def _blocked(mode: str) -> str:
    lock = LockMode.__members__.get(mode.upper().replace(" ", "_"), LockMode.ACCESS_EXCLUSIVE)
    if lock.blocks_reads:
        return "every query on {table} waits"
    return "writes to {table} wait" if lock.blocks_writes else "DDL and maintenance on {table} wait"


@rule("ban-lock-table", Severity.ERROR, "explicit LOCK TABLE")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("lock-table"):
        mode = str(action.get("mode") or "ACCESS EXCLUSIVE")
        if statement.dialect is Dialect.MYSQL:
            message = (f"LOCK TABLES {action.table} {mode} commits the open transaction and blocks other "
                       f"sessions' {'access to' if mode.upper() == 'WRITE' else 'writes to'} "
                       f"{action.table} until UNLOCK TABLES")  # fmt: skip
        else:
            blocked = _blocked(mode).format(table=action.table)
            message = (f"LOCK TABLE {action.table} takes the {mode} lock and holds it until the transaction "
                       f"ends: {blocked} for the rest of the script")  # fmt: skip
        yield Violation(
            message=message,
            help="Let each statement take the locks it needs, or lock only the rows you change with "
            "SELECT ... FOR UPDATE; if a table lock is really needed, set lock_timeout first and waive "
            "this rule with a reason.",
        )
