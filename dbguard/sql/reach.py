"""Statements whose effect reaches beyond the database they run in: the server's other databases, its
roles and tablespaces, its configuration, other sessions, other servers, the file system.

A dry-run never runs one in its sandbox: with the "server" provider the sandbox shares the target's
server, and `DROP DATABASE <target>` run there drops the target. `run` runs them (they are the script's),
but only after `check`, whose rules flag them, let them through with a waiver.

Bad (for a rehearsal):  DROP DATABASE warehouse;   ALTER DATABASE warehouse RENAME TO old;
                        SELECT pg_terminate_backend(pid) FROM pg_stat_activity;   COPY t TO PROGRAM '...';
Good:                   anything that stays inside the current database.
"""

from __future__ import annotations

import re

from pglast import ast, parse_sql
from pglast.enums import ObjectType
from pglast.parser import ParseError

from dbguard.dialects import Dialect
from dbguard.sql.classify_pg import DANGEROUS_FUNCTIONS
from dbguard.sql.model import Statement
from dbguard.sql.pg_tree import walk

# Statements about shared objects (databases, roles, tablespaces, subscriptions), the server's
# configuration, or connections to other servers.
_BEYOND_NODES = {
    "CreatedbStmt": "creates a database", "DropdbStmt": "drops a database", "AlterDatabaseStmt": "alters a database",
    "AlterDatabaseSetStmt": "alters a database", "AlterDatabaseRefreshCollStmt": "alters a database",
    "CreateRoleStmt": "creates a role", "AlterRoleStmt": "alters a role", "AlterRoleSetStmt": "alters a role",
    "DropRoleStmt": "drops a role", "GrantRoleStmt": "grants a role", "ReassignOwnedStmt": "reassigns objects",
    "CreateTableSpaceStmt": "creates a tablespace", "DropTableSpaceStmt": "drops a tablespace",
    "AlterTableSpaceOptionsStmt": "alters a tablespace", "AlterSystemStmt": "changes the server's configuration",
    "CreateSubscriptionStmt": "subscribes to another server", "AlterSubscriptionStmt": "alters a subscription",
    "DropSubscriptionStmt": "drops a subscription", "CheckPointStmt": "makes the server checkpoint",
    "LoadStmt": "loads a library into the server", "CreateForeignServerStmt": "defines another server",
    "AlterForeignServerStmt": "alters another server's definition",
    "CreateUserMappingStmt": "maps a user on another server",
    "AlterUserMappingStmt": "maps a user on another server", "ImportForeignSchemaStmt": "reads another server",
}  # fmt: skip
_SHARED = {ObjectType.OBJECT_DATABASE, ObjectType.OBJECT_ROLE, ObjectType.OBJECT_TABLESPACE,
           ObjectType.OBJECT_SUBSCRIPTION}  # fmt: skip
_CONSTANT_EXECUTE = re.compile(r"^\s*EXECUTE\s+'((?:[^']|'')*)'\s*(?:;\s*)?$", re.IGNORECASE | re.DOTALL)


def beyond_the_database(statement: Statement) -> str | None:
    """Why `statement` reaches beyond its database ("drops a database", "calls dblink_exec()"), or None.
    PostgreSQL only (a SQLite script reaches other files through ATTACH, which the executor refuses)."""
    if statement.dialect is not Dialect.POSTGRES:
        return None
    text = statement.text
    constant = _CONSTANT_EXECUTE.match(text)  # EXECUTE 'literal' in a PL/pgSQL body: the literal is the SQL
    if constant:
        text = constant.group(1).replace("''", "'")
    try:
        tree = parse_sql(text)
    except ParseError:
        return None  # not SQL pglast reads (a PL/pgSQL statement): the classifier's own facts cover it
    for node in walk(tree):
        why = _why(node)
        if why:
            return why
    return None


def _why(node: ast.Node) -> str | None:
    name = type(node).__name__
    if name in _BEYOND_NODES:
        return _BEYOND_NODES[name]
    if isinstance(node, ast.RenameStmt) and node.renameType in _SHARED:
        return "renames a shared object (a database, role or tablespace)"
    if isinstance(node, ast.AlterOwnerStmt) and node.objectType in _SHARED:
        return "changes a database's or tablespace's owner"
    if isinstance(node, ast.CommentStmt | ast.SecLabelStmt) and node.objtype in _SHARED:
        return "labels a shared object"
    if isinstance(node, ast.GrantStmt) and node.objtype in _SHARED:
        return "grants on a database or tablespace"
    if isinstance(node, ast.CopyStmt) and (node.is_program or node.filename):
        return "reads or writes a file or program on the server"
    if isinstance(node, ast.FuncCall) and node.funcname:
        function = str(node.funcname[-1].sval).lower()
        if function in DANGEROUS_FUNCTIONS:
            return f"calls {function}()"
    return None
