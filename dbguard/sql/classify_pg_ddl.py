"""Classify PostgreSQL DDL: DROP, ALTER TABLE, ALTER DOMAIN, ALTER TYPE, RENAME, CREATE TABLE, CREATE FUNCTION.

Lock levels follow each command's reference page in the PostgreSQL 15 docs.
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from dbguard.sql.model import LockMode
from dbguard.sql.pg_tree import Collector, deparse, dotted, name_of, walk
from dbguard.sql.pg_types import ColumnType

L = LockMode

# Functions known not to be volatile: a default using only these does not rewrite the table.
NON_VOLATILE_FUNCTIONS = frozenset(
    {
        "now",
        "transaction_timestamp",
        "statement_timestamp",
        "current_setting",
        "lower",
        "upper",
        "length",
        "abs",
        "round",
        "coalesce",
        "concat",
        "to_char",
        "to_date",
        "to_timestamp",
        "date_trunc",
        "make_interval",
        "jsonb_build_object",
        "json_build_object",
        "jsonb_build_array",
        "array_length",
        "btrim",
        "trim",
        "replace",
        "nullif",
        "greatest",
        "least",
        "md5",
    }
)


# ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE (ALTER TABLE reference page).
_ALTER_LOCKS = {
    AlterTableType.AT_ValidateConstraint: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetStatistics: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetOptions: L.SHARE_UPDATE_EXCLUSIVE,  # ALTER COLUMN SET (n_distinct = ...)
    AlterTableType.AT_ResetOptions: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_ClusterOn: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_DropCluster: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetRelOptions: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_ResetRelOptions: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_AttachPartition: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_EnableTrig: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_EnableAlwaysTrig: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_EnableReplicaTrig: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_DisableTrig: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_EnableTrigAll: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_DisableTrigAll: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_EnableTrigUser: L.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_DisableTrigUser: L.SHARE_ROW_EXCLUSIVE,
}

_DISABLE_TRIGGER = {
    AlterTableType.AT_DisableTrig,
    AlterTableType.AT_DisableTrigAll,
    AlterTableType.AT_DisableTrigUser,
}
# Subcommands that switch a safeguard off without disabling a trigger by name.
_DISABLE_SAFEGUARD = {
    AlterTableType.AT_EnableReplicaTrig: "ENABLE REPLICA TRIGGER (it no longer fires in normal sessions)",
    AlterTableType.AT_DisableRule: "DISABLE RULE",
    AlterTableType.AT_EnableReplicaRule: "ENABLE REPLICA RULE",
    AlterTableType.AT_DisableRowSecurity: "DISABLE ROW LEVEL SECURITY",
    AlterTableType.AT_NoForceRowSecurity: "NO FORCE ROW LEVEL SECURITY",
}
# Subcommands that rewrite the whole table under ACCESS EXCLUSIVE.
_REWRITE = {
    AlterTableType.AT_SetLogged: "SET LOGGED",
    AlterTableType.AT_SetUnLogged: "SET UNLOGGED",
    AlterTableType.AT_SetTableSpace: "SET TABLESPACE",
    AlterTableType.AT_SetAccessMethod: "SET ACCESS METHOD",
}

_CONSTRAINT_NAMES = {
    ConstrType.CONSTR_FOREIGN: "foreign",
    ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_UNIQUE: "unique",
    ConstrType.CONSTR_PRIMARY: "primary",
    ConstrType.CONSTR_EXCLUSION: "exclusion",
    ConstrType.CONSTR_NOTNULL: "not-null",
}


def cascade(behavior: Any) -> bool:
    return int(behavior or 0) == 1  # DropBehavior.DROP_CASCADE


_DROP_OBJECTS = {
    ObjectType.OBJECT_TABLE: "table",
    ObjectType.OBJECT_SCHEMA: "schema",
    ObjectType.OBJECT_INDEX: "index",
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_SEQUENCE: "sequence",
    ObjectType.OBJECT_TYPE: "type",
    ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_TRIGGER: "trigger",
    ObjectType.OBJECT_EXTENSION: "extension",
    ObjectType.OBJECT_FOREIGN_TABLE: "foreign table",
}


# Dropped relations get ACCESS EXCLUSIVE (DROP INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE).
_DROPPED_RELATIONS = ("table", "index", "view", "materialized view", "sequence", "foreign table")


def drop(node: ast.DropStmt, c: Collector) -> tuple[str, bool]:
    obj = _DROP_OBJECTS.get(ObjectType(node.removeType), ObjectType(node.removeType).name[7:].lower())
    cascades = cascade(node.behavior)
    for target in node.objects or ():
        parts = target if isinstance(target, list | tuple) else (target,)
        name = dotted(parts) or deparse(target)
        if obj in _DROPPED_RELATIONS:  # DROP TRIGGER t ON tbl locks tbl: see pg_locks
            c.write(name, L.SHARE_UPDATE_EXCLUSIVE if node.concurrent else L.ACCESS_EXCLUSIVE)
        c.add("drop", name, object=obj, cascade=cascades, concurrently=bool(node.concurrent))
    return f"DROP {obj.upper()}", not node.concurrent


def alter_table(node: ast.AlterTableStmt, c: Collector) -> tuple[str, bool]:
    table = name_of(node.relation)
    lock = L.SHARE_UPDATE_EXCLUSIVE  # the weakest any subcommand takes; the strongest one decides
    detach_concurrently = False
    for cmd in node.cmds:
        sub = AlterTableType(cmd.subtype)
        lock = max(lock, _command_lock(sub, cmd))
        if sub == AlterTableType.AT_AddColumn:
            _add_column(table, cmd.def_, c)
        elif sub == AlterTableType.AT_DropColumn:
            c.add("drop-column", table, cmd.name, cascade=cascade(cmd.behavior))
        elif sub == AlterTableType.AT_AlterColumnType:
            c.add("alter-column-type", table, cmd.name, type=_type_name(cmd.def_.typeName),
                  new_type=str(ColumnType.of(cmd.def_.typeName)), using=cmd.def_.raw_default is not None)  # fmt: skip
        elif sub == AlterTableType.AT_SetNotNull:
            c.add("set-not-null", table, cmd.name)
        elif sub == AlterTableType.AT_AddConstraint:
            con = cmd.def_
            kind = _CONSTRAINT_NAMES.get(ConstrType(con.contype), "other")
            if kind == "foreign" and con.pktable is not None:
                c.write(name_of(con.pktable), L.SHARE_ROW_EXCLUSIVE)  # the referenced table is locked too
            c.add(
                "add-constraint",
                table,
                constraint=kind,
                not_valid=bool(con.skip_validation),
                using_index=bool(con.indexname),
                name=con.conname,
                not_null_column=not_null_column(con) if kind == "check" else None,
            )
        elif sub == AlterTableType.AT_ValidateConstraint:
            c.add("validate-constraint", table, name=cmd.name)
        elif sub in _DISABLE_TRIGGER:
            c.add("disable-trigger", table, trigger=cmd.name or "ALL")
        elif sub in _DISABLE_SAFEGUARD:
            c.add("disable-trigger", table, trigger=cmd.name or "", what=_DISABLE_SAFEGUARD[sub])
        elif sub in _REWRITE:
            c.add("vacuum", table, full=True, how=f"ALTER TABLE ... {_REWRITE[sub]}")
        elif sub == AlterTableType.AT_ChangeOwner:
            c.add("grant", to_public=False, privileges=["ownership"], objects=[table])
        elif sub == AlterTableType.AT_DetachPartition:
            detach_concurrently = detach_concurrently or bool(getattr(cmd.def_, "concurrent", False))
            c.add("detach-partition", table, partition=name_of(cmd.def_.name),
                  concurrently=bool(getattr(cmd.def_, "concurrent", False)))  # fmt: skip
        elif sub == AlterTableType.AT_DropConstraint:
            c.add("drop-constraint", table, name=cmd.name, cascade=cascade(cmd.behavior))
    if ObjectType(node.objtype) == ObjectType.OBJECT_TYPE:  # ALTER TYPE ... ADD / ALTER / DROP ATTRIBUTE
        c.add("alter-type", table, object="type")
    c.write(table, lock)
    c.add("alter-table", table, object="view" if node.objtype == ObjectType.OBJECT_VIEW else None)
    return "ALTER TABLE", not detach_concurrently  # DETACH PARTITION CONCURRENTLY refuses a transaction block


def alter_type(node: ast.AlterDomainStmt | ast.AlterEnumStmt, c: Collector) -> tuple[str, bool]:
    """ALTER DOMAIN checks or changes every column of the domain; ALTER TYPE on an enum changes its values."""
    name = ".".join(str(part.sval) for part in node.typeName)
    if not isinstance(node, ast.AlterDomainStmt):
        c.add("alter-type", name, object="type")
        return "ALTER TYPE", True
    # What makes the server check the values already stored in columns of the domain: PostgreSQL 15 takes a
    # SHARE lock on every table with such a column and scans it (ADD CHECK, SET NOT NULL, VALIDATE; seen in
    # pg_locks). ADD ... NOT VALID checks new values only.
    constraint = node.def_ if isinstance(node.def_, ast.Constraint) else None
    contype = ConstrType(constraint.contype) if constraint is not None else None
    if node.subtype == "C" and contype == ConstrType.CONSTR_CHECK and constraint is not None:
        c.add("alter-type", name, object="domain", change="add-check", name=constraint.conname,
              not_valid=bool(constraint.skip_validation))  # fmt: skip
    elif node.subtype == "O" or (node.subtype == "C" and contype == ConstrType.CONSTR_NOTNULL):
        c.add("alter-type", name, object="domain", change="set-not-null")
    else:
        c.add("alter-type", name, object="domain", change={"V": "validate"}.get(str(node.subtype)))
    return "ALTER DOMAIN", True


def _command_lock(sub: AlterTableType, cmd: ast.AlterTableCmd) -> LockMode:
    """ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE; other subcommands as _ALTER_LOCKS says, else ACCESS EXCLUSIVE."""
    if sub == AlterTableType.AT_AddConstraint and ConstrType(cmd.def_.contype) == ConstrType.CONSTR_FOREIGN:
        return L.SHARE_ROW_EXCLUSIVE
    if sub == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
        return L.SHARE_UPDATE_EXCLUSIVE
    return _ALTER_LOCKS.get(sub, L.ACCESS_EXCLUSIVE)


def _add_column(table: str, col: ast.ColumnDef, c: Collector) -> None:
    constraints = list(col.constraints or ())
    types = {ConstrType(k.contype) for k in constraints}
    default = next((k.raw_expr for k in constraints if k.contype == ConstrType.CONSTR_DEFAULT), None)
    # Identity, GENERATED ... STORED and serial columns get a value per row: adding one rewrites the table.
    type_name = _type_name(col.typeName)
    serial = type_name in ("serial", "serial2", "serial4", "serial8", "smallserial", "bigserial")
    generated = ConstrType.CONSTR_IDENTITY in types or ConstrType.CONSTR_GENERATED in types or serial
    c.add(
        "add-column",
        table,
        col.colname,
        type=type_name,
        not_null=ConstrType.CONSTR_NOTNULL in types or ConstrType.CONSTR_PRIMARY in types or col.is_not_null,
        has_default=default is not None or generated,
        default_volatile=generated or _volatile(default),
        default_sql=deparse(default) if default is not None else None,
    )
    unique = {ConstrType.CONSTR_UNIQUE: "unique", ConstrType.CONSTR_PRIMARY: "primary"}
    for constraint_type, name in unique.items():  # ADD COLUMN ... UNIQUE builds an index like ADD CONSTRAINT
        if constraint_type in types:
            c.add("add-constraint", table, constraint=name, not_valid=False, using_index=False, name=None)
    for foreign in (k for k in constraints if k.contype == ConstrType.CONSTR_FOREIGN):
        # ADD COLUMN ... REFERENCES locks the referenced table like ADD FOREIGN KEY. It checks the existing rows
        # only when the new column has a DEFAULT: without one every value is NULL, and the server skips the
        # check (transformFKConstraints), as NOT VALID would; NOT VALID itself is not allowed inline.
        c.add("add-constraint", table, constraint="foreign", not_valid=default is None, using_index=False,
              name=foreign.conname, inline=True)  # fmt: skip


def not_null_column(check: ast.Constraint) -> str | None:
    """The column of `CHECK (column IS NOT NULL)`: once validated, it lets SET NOT NULL skip its scan."""
    expr = check.raw_expr
    if isinstance(expr, ast.NullTest) and int(expr.nulltesttype) == 1 and isinstance(expr.arg, ast.ColumnRef):
        last = expr.arg.fields[-1]
        return str(last.sval) if isinstance(last, ast.String) else None
    return None


def _volatile(expr: ast.Node | None) -> bool:
    """Fail closed: a function we do not know to be stable counts as volatile."""
    if expr is None:
        return False
    for node in walk(expr):
        if isinstance(node, ast.FuncCall):
            name = node.funcname[-1].sval.lower()
            if name not in NON_VOLATILE_FUNCTIONS:
                return True
    return False


def _type_name(type_name: ast.TypeName | None) -> str:
    if type_name is None:
        return ""
    names = [n.sval for n in type_name.names if isinstance(n, ast.String)]
    return names[-1].lower() if names else ""


def rename(node: ast.RenameStmt, c: Collector) -> tuple[str, bool]:
    rename_type = ObjectType(node.renameType)
    if node.relation is None:
        return "ALTER RENAME", True
    table = name_of(node.relation)
    c.write(table, L.SHARE_UPDATE_EXCLUSIVE if rename_type == ObjectType.OBJECT_INDEX else L.ACCESS_EXCLUSIVE)
    if rename_type == ObjectType.OBJECT_COLUMN:
        c.add("rename-column", table, node.subname, new_name=node.newname)
        return "ALTER TABLE", True
    if rename_type in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        c.add("rename-table", table, new_name=node.newname,
              object="view" if rename_type == ObjectType.OBJECT_VIEW else None)  # fmt: skip
        return "ALTER TABLE", True
    return "ALTER RENAME", True


def create_table(node: ast.CreateStmt, c: Collector) -> tuple[str, bool]:
    table = name_of(node.relation)
    table_pk: set[str] = set()
    for elt in node.tableElts or ():
        if isinstance(elt, ast.Constraint) and elt.contype == ConstrType.CONSTR_PRIMARY:
            table_pk |= {k.sval for k in elt.keys or ()}
    columns = []
    for elt in node.tableElts or ():
        if isinstance(elt, ast.ColumnDef):
            kinds = {ConstrType(k.contype) for k in elt.constraints or ()}
            columns.append(
                (
                    elt.colname,
                    _type_name(elt.typeName),
                    ConstrType.CONSTR_PRIMARY in kinds or elt.colname in table_pk,
                    ConstrType.CONSTR_IDENTITY in kinds,
                )
            )
    c.add("create-table", table, columns=tuple(columns), if_not_exists=bool(node.if_not_exists))
    return "CREATE TABLE", True


def create_function(node: ast.CreateFunctionStmt, c: Collector) -> tuple[str, bool]:
    options = {o.defname: o.arg for o in node.options or ()}
    language = getattr(options.get("language"), "sval", "sql").lower()
    name = ".".join(n.sval for n in node.funcname)
    as_arg = options.get("as")
    bodies = [s.sval for s in as_arg] if isinstance(as_arg, list | tuple) else []
    kind = "CREATE PROCEDURE" if node.is_procedure else "CREATE FUNCTION"
    if node.sql_body is not None:  # BEGIN ATOMIC ... END, or RETURN expr
        body = node.sql_body[0] if isinstance(node.sql_body, tuple) else (node.sql_body,)
        sql = ";\n".join(deparse(s) for s in body if not isinstance(s, ast.ReturnStmt))
        if sql:
            c.nested.append((f"body of {name}()", sql, "sql"))
    elif language == "plpgsql" and bodies:
        # The whole CREATE FUNCTION: PL/pgSQL needs the signature to know NEW, OLD and the arguments.
        c.nested.append((f"body of {name}()", deparse(node), "plpgsql"))
    elif language == "sql" and bodies:
        c.nested.append((f"body of {name}()", bodies[0], "sql"))
    elif bodies:
        c.add("opaque-body", language=language)
    return kind, True
