"""GRANT and REVOKE change who may read or change data, above all when granted to PUBLIC.

Problem: a privilege change is a security change, not maintenance. A GRANT can expose data or allow
writes to roles that should not have them (to PUBLIC: every role, present and future; ALL PRIVILEGES,
ALL TABLES IN SCHEMA, ALTER DEFAULT PRIVILEGES, WITH GRANT OPTION, a role membership: more than the
statement names), and a REVOKE can break the applications that rely on the privilege. The least
privilege form, named privileges (SELECT, INSERT, UPDATE, DELETE, USAGE, EXECUTE) on named objects to
a named role, is how a migration ends (read access on a new view for a reporting role): a warning,
for the reviewer to see. On MySQL, where check cannot tell the grant's scope and options apart, every
GRANT is an error.

Bad:
    GRANT SELECT, UPDATE ON stock TO PUBLIC;

    REVOKE INSERT ON stock FROM warehouse_app;

    GRANT ALL ON ALL TABLES IN SCHEMA public TO reporting;

Good:
    SELECT grantee, privilege_type FROM information_schema.role_table_grants WHERE table_name = 'stock';
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Action, Statement

# Privileges that reach only the named object's data (no TRUNCATE past DELETE triggers, no TRIGGER or
# REFERENCES that act on other roles' statements, no CREATE).
_LEAST = frozenset({"select", "insert", "update", "delete", "usage", "execute"})


@rule("ban-privilege-change", Severity.ERROR, "GRANT or REVOKE in a maintenance script")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    for action in statement.actions_of("grant", "revoke"):
        verb = action.kind.upper()
        privileges = ", ".join(action.get("privileges") or ["privileges"]).upper()
        objects = ", ".join(action.get("objects") or ())
        scope = action.get("scope")
        if scope == "default privileges":
            what = f"ALTER DEFAULT PRIVILEGES {verb} {privileges}"
        else:
            what = f"{verb} {privileges} ON {objects}" if objects else f"{verb} of a role membership"
        least = action.kind == "grant" and _least_privilege(action)
        if action.kind == "grant" and action.get("to_public"):
            message = f"{what} TO PUBLIC gives every role, present and future, that access: a security change"
        elif least:
            to = ", ".join(action.get("roles") or ())
            message = f"{what} TO {to} gives a named role that access, on the objects named only: a change to review"
        elif scope == "default privileges":
            message = f"{what} changes the privileges of objects not yet created: a security change, not maintenance"
        else:
            message = f"{what} changes who may read or change the data: a security change, not maintenance"
        yield Violation(
            message=message,
            help="Make privilege changes in a reviewed migration or role-management change, granting to a "
            "named role with the least privilege needed, never to PUBLIC.",
            at_most=Severity.WARNING if least else None,
        )


def _least_privilege(action: Action) -> bool:
    """Named privileges on named objects to named roles, with no grant option (PostgreSQL's classifier says
    the scope; a dialect that does not is never the least)."""
    privileges = {str(p).lower() for p in action.get("privileges") or ()}
    return (action.get("scope") == "object" and not action.get("grant_option") and not action.get("to_public")
            and bool(action.get("objects")) and bool(privileges) and privileges <= _LEAST)  # fmt: skip
