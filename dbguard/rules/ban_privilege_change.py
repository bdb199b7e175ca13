"""GRANT and REVOKE change who may read or change data, above all when granted to PUBLIC.

Problem: a privilege change is a security change, not maintenance. A GRANT can expose data or allow
writes to roles that should not have them (to PUBLIC: every role, present and future), and a REVOKE
can break the applications that rely on the privilege.

Bad:
    GRANT SELECT, UPDATE ON stock TO PUBLIC;

    REVOKE INSERT ON stock FROM warehouse_app;

Good:
    SELECT grantee, privilege_type FROM information_schema.role_table_grants WHERE table_name = 'stock';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Statement


@rule("ban-privilege-change", Severity.ERROR, "GRANT or REVOKE in a maintenance script")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("grant", "revoke"):
        verb = action.kind.upper()
        privileges = ", ".join(action.get("privileges") or ["privileges"]).upper()
        objects = ", ".join(action.get("objects") or ())
        what = f"{verb} {privileges} ON {objects}" if objects else f"{verb} of a role membership"
        if action.kind == "grant" and action.get("to_public"):
            message = f"{what} TO PUBLIC gives every role, present and future, that access: a security change"
        else:
            message = f"{what} changes who may read or change the data: a security change, not maintenance"
        yield Violation(
            message=message,
            help="Make privilege changes in a reviewed migration or role-management change, granting to a "
            "named role with the least privilege needed, never to PUBLIC.",
        )
