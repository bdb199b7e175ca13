"""Classify a PostgreSQL statement from pglast's tree (the server's own grammar).

Lock levels and the transaction-block rule follow the PostgreSQL 15 docs: "Explicit Locking" (13.3)
and each command's reference page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlglot
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType, ReindexObjectType
from pglast.stream import RawStream
from sqlglot import exp

from dbguard.sql.model import UNRECOGNIZED, Action, Facts, LockMode

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

LOCK_MODE_NAMES = {
    1: L.ACCESS_SHARE,
    2: L.ROW_SHARE,
    3: L.ROW_EXCLUSIVE,
    4: L.SHARE_UPDATE_EXCLUSIVE,
    5: L.SHARE,
    6: L.SHARE_ROW_EXCLUSIVE,
    7: L.EXCLUSIVE,
    8: L.ACCESS_EXCLUSIVE,
}

# ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE (ALTER TABLE reference page).
_ALTER_LOCKS = {
    AlterTableType.AT_ValidateConstraint: L.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetStatistics: L.SHARE_UPDATE_EXCLUSIVE,
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

_CONSTRAINT_NAMES = {
    ConstrType.CONSTR_FOREIGN: "foreign",
    ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_UNIQUE: "unique",
    ConstrType.CONSTR_PRIMARY: "primary",
    ConstrType.CONSTR_EXCLUSION: "exclusion",
    ConstrType.CONSTR_NOTNULL: "not-null",
}

# Command tags for statements that need nothing beyond a name.
_SIMPLE_KINDS: dict[type, tuple[str, LockMode | None, bool]] = {
    ast.VariableShowStmt: ("SHOW", None, True),
    ast.ExplainStmt: ("EXPLAIN", L.ACCESS_SHARE, True),
    ast.CommentStmt: ("COMMENT", L.SHARE_UPDATE_EXCLUSIVE, True),
    ast.CreateSchemaStmt: ("CREATE SCHEMA", None, True),
    ast.CreateSeqStmt: ("CREATE SEQUENCE", None, True),
    ast.CreateExtensionStmt: ("CREATE EXTENSION", None, True),
    ast.CreateTrigStmt: ("CREATE TRIGGER", L.SHARE_ROW_EXCLUSIVE, True),
    ast.CreateEnumStmt: ("CREATE TYPE", None, True),
    ast.CompositeTypeStmt: ("CREATE TYPE", None, True),
    ast.CreateDomainStmt: ("CREATE DOMAIN", None, True),
    ast.CreatedbStmt: ("CREATE DATABASE", None, False),
    ast.CreateTableSpaceStmt: ("CREATE TABLESPACE", None, False),
    ast.DropTableSpaceStmt: ("DROP TABLESPACE", None, False),
    ast.AlterEnumStmt: ("ALTER TYPE", None, True),
    ast.AlterDomainStmt: ("ALTER DOMAIN", None, True),
    ast.AlterRoleStmt: ("ALTER ROLE", None, True),
    ast.CreateRoleStmt: ("CREATE ROLE", None, True),
    ast.NotifyStmt: ("NOTIFY", None, True),
    ast.DeallocateStmt: ("DEALLOCATE", None, True),
    ast.PrepareStmt: ("PREPARE", None, True),
    ast.DiscardStmt: ("DISCARD", None, True),
    ast.CheckPointStmt: ("CHECKPOINT", None, True),
    ast.RefreshMatViewStmt: ("REFRESH MATERIALIZED VIEW", L.ACCESS_EXCLUSIVE, True),
    ast.AlterOwnerStmt: ("ALTER OWNER", L.ACCESS_EXCLUSIVE, True),
    ast.AlterObjectSchemaStmt: ("ALTER SET SCHEMA", L.ACCESS_EXCLUSIVE, True),
    ast.CreateStatsStmt: ("CREATE STATISTICS", L.SHARE_UPDATE_EXCLUSIVE, True),
    ast.AlterFunctionStmt: ("ALTER FUNCTION", None, True),
    ast.AlterExtensionStmt: ("ALTER EXTENSION", None, True),
    ast.CreatePolicyStmt: ("CREATE POLICY", L.ACCESS_EXCLUSIVE, True),
    ast.AlterPolicyStmt: ("ALTER POLICY", L.ACCESS_EXCLUSIVE, True),
    ast.ListenStmt: ("LISTEN", None, True),
    ast.UnlistenStmt: ("UNLISTEN", None, True),
    ast.DeclareCursorStmt: ("DECLARE CURSOR", L.ACCESS_SHARE, True),
    ast.FetchStmt: ("FETCH", None, True),
    ast.ClosePortalStmt: ("CLOSE", None, True),
}
# Anything else (DROP OWNED, REASSIGN OWNED, CREATE RULE, LOAD, ...) is UNRECOGNIZED: dbguard does not vouch
# for a statement whose effect it has not modelled.


def name_of(range_var: ast.RangeVar) -> str:
    parts = [range_var.schemaname, range_var.relname]
    return ".".join(p for p in parts if p)


def walk(node: Any) -> Iterator[ast.Node]:
    """Every node below `node`, in source order (scalar attributes are never pushed: this is the hot loop)."""
    stack = [node]
    push, pop = stack.append, stack.pop
    while stack:
        item = pop()
        if isinstance(item, ast.Node):
            yield item
            for attr in reversed(list(item)):
                value = getattr(item, attr)
                if isinstance(value, ast.Node | tuple):
                    push(value)
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


def deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


def to_sqlglot(node: ast.Node | None) -> exp.Expr | None:
    """Re-read a pglast expression with sqlglot, for rules that reason about expressions."""
    if node is None:
        return None
    try:
        return sqlglot.parse_one(deparse(node), read="postgres")
    except Exception:  # any failure means the rules cannot simplify it: they treat it as opaque
        return None


class _Collector:
    def __init__(self) -> None:
        self.read: list[str] = []
        self.written: list[str] = []
        self.actions: list[Action] = []
        self.lock: LockMode | None = None
        self.nested: list[tuple[str, str, str]] = []

    def write(self, table: str, lock: LockMode) -> None:
        if table not in self.written:
            self.written.append(table)
        self.take(lock)

    def take(self, lock: LockMode | None) -> None:
        if lock is not None and (self.lock is None or lock > self.lock):
            self.lock = lock

    def add(self, kind: str, table: str | None = None, column: str | None = None, **details: Any) -> None:
        self.actions.append(Action(kind, table, column, details))


def classify(node: ast.Node) -> Facts:
    """Facts about one top-level pglast statement node."""
    c = _Collector()
    nodes = list(walk(node))
    kind, transactional = _classify_into(node, nodes, c)
    cte_names = {cte.ctename for cte in nodes if isinstance(cte, ast.CommonTableExpr)}
    for rv in nodes:
        if isinstance(rv, ast.RangeVar):
            name = name_of(rv)
            if name not in c.written and name not in c.read and name not in cte_names:
                c.read.append(name)
    if c.read and c.lock is None and kind in ("SELECT", "WITH"):
        c.take(L.ACCESS_SHARE)
    return Facts(
        kind=kind,
        tables_read=tuple(c.read),
        tables_written=tuple(c.written),
        lock=c.lock,
        transactional=transactional,
        actions=tuple(c.actions),
        nested_sql=tuple(c.nested),
    )


def _classify_into(node: ast.Node, nodes: list[ast.Node], c: _Collector) -> tuple[str, bool]:
    for inner in nodes:
        if isinstance(inner, _DML_NODES):
            _dml(inner, c)
    match node:
        case ast.SelectStmt():
            if node.lockingClause:
                c.take(L.ROW_SHARE)
            if _is_sequence_reset(nodes, c):
                return "SELECT", True
            return ("WITH" if node.withClause and c.actions else "SELECT"), True
        case ast.InsertStmt() | ast.UpdateStmt() | ast.DeleteStmt() | ast.MergeStmt():
            return type(node).__name__.removesuffix("Stmt").upper(), True
        case ast.TruncateStmt():
            for rv in node.relations:
                c.write(name_of(rv), L.ACCESS_EXCLUSIVE)
                c.add("truncate", name_of(rv), cascade=_cascade(node.behavior))
            return "TRUNCATE", True
        case ast.DropStmt():
            return _drop(node, c)
        case ast.AlterTableStmt():
            return _alter_table(node, c)
        case ast.RenameStmt():
            return _rename(node, c)
        case ast.IndexStmt():
            table = name_of(node.relation)
            c.write(table, L.SHARE_UPDATE_EXCLUSIVE if node.concurrent else L.SHARE)
            c.add("create-index", table, concurrently=bool(node.concurrent), unique=bool(node.unique))
            return "CREATE INDEX", not node.concurrent
        case ast.ReindexStmt():
            concurrently = any(p.defname == "concurrently" for p in node.params or ())
            target = node.name or (name_of(node.relation) if node.relation else None)
            if node.relation:  # the table gets SHARE (writes wait); each index ACCESS EXCLUSIVE (its readers wait)
                c.write(name_of(node.relation), L.SHARE_UPDATE_EXCLUSIVE if concurrently else L.SHARE)
            whole = node.kind in (ReindexObjectType.REINDEX_OBJECT_SYSTEM, ReindexObjectType.REINDEX_OBJECT_DATABASE)
            c.add("reindex", target, concurrently=concurrently, target=ReindexObjectType(node.kind).name)
            return "REINDEX", not (concurrently or whole)
        case ast.VacuumStmt():
            options = {o.defname for o in node.options or () if _option_on(o)}
            if not node.is_vacuumcmd:
                for rel in node.rels or ():
                    c.take(L.SHARE_UPDATE_EXCLUSIVE)
                    c.read.append(name_of(rel.relation))
                return "ANALYZE", True
            full = "full" in options
            lock = L.ACCESS_EXCLUSIVE if full else L.SHARE_UPDATE_EXCLUSIVE
            tables = [name_of(rel.relation) for rel in node.rels or ()]
            for table in tables:
                c.write(table, lock)
            targets: list[str | None] = [*tables] or [None]  # a bare VACUUM covers the whole database
            for target in targets:
                c.add("vacuum", target, full=full)
            return "VACUUM", False
        case ast.ClusterStmt():
            clustered = name_of(node.relation) if node.relation else None
            if clustered:
                c.write(clustered, L.ACCESS_EXCLUSIVE)
            c.add("cluster", clustered, index=node.indexname)
            return "CLUSTER", clustered is not None
        case ast.LockStmt():
            mode = LOCK_MODE_NAMES.get(node.mode, L.ACCESS_EXCLUSIVE)
            for rv in node.relations:
                c.write(name_of(rv), mode)
                c.add("lock-table", name_of(rv), mode=mode.label)
            return "LOCK TABLE", True
        case ast.TransactionStmt():
            command = deparse(node).split()[0].upper()
            c.add("transaction-control", command=deparse(node).upper())
            return command, True
        case ast.VariableSetStmt():
            value = ", ".join(deparse(a) for a in node.args or ()) if node.args else None
            c.add("set", name=(node.name or "").lower(), value=value, local=bool(node.is_local))
            return ("RESET" if node.kind >= 3 else "SET"), True
        case ast.AlterSystemStmt():
            c.add("alter-system", name=node.setstmt.name if node.setstmt else None)
            return "ALTER SYSTEM", False
        case ast.CopyStmt():
            copied = name_of(node.relation) if node.relation else None
            if copied and node.is_from:
                c.write(copied, L.ROW_EXCLUSIVE)
            elif copied:
                c.take(L.ACCESS_SHARE)
            c.add(
                "copy",
                copied,
                program=bool(node.is_program),
                file=node.filename is not None,
                is_from=bool(node.is_from),
            )
            return "COPY", True
        case ast.GrantStmt():
            to_public = any(g.roletype == 4 for g in node.grantees or () if isinstance(g, ast.RoleSpec))
            objects = [deparse(o) for o in node.objects or ()]
            privileges = [p.priv_name for p in node.privileges or () if p.priv_name] or ["all"]
            c.add("grant" if node.is_grant else "revoke", to_public=to_public, privileges=privileges, objects=objects)
            return ("GRANT" if node.is_grant else "REVOKE"), True
        case ast.GrantRoleStmt():
            c.add("grant" if node.is_grant else "revoke", to_public=False, privileges=["role"], objects=[])
            return ("GRANT" if node.is_grant else "REVOKE"), True
        case ast.AlterSeqStmt():
            how = [o.defname for o in node.options or () if o.defname in ("restart", "start")]
            if how:
                c.add("sequence-reset", name_of(node.sequence), how=f"ALTER SEQUENCE ... {how[0].upper()}")
            return "ALTER SEQUENCE", True
        case ast.CreateStmt():
            return _create_table(node, c)
        case ast.CreateTableAsStmt():
            return "CREATE TABLE AS", True
        case ast.ViewStmt():
            return "CREATE VIEW", True
        case ast.DoStmt():
            language = next((a.arg.sval for a in node.args if a.defname == "language"), "plpgsql")
            if language.lower() == "plpgsql":
                c.nested.append(("DO block", deparse(node), "plpgsql"))
            else:
                c.add("opaque-body", language=language)
            return "DO", True
        case ast.CreateFunctionStmt():
            return _create_function(node, c)
        case ast.CallStmt():
            return "CALL", True
        case ast.ExecuteStmt():
            return "EXECUTE", True
        case ast.DropdbStmt():
            c.add("drop", node.dbname, object="database", cascade=False, concurrently=False)
            return "DROP DATABASE", False
        case ast.AlterDatabaseSetStmt() | ast.AlterRoleSetStmt():
            if node.setstmt is not None:
                c.add("set", name=(node.setstmt.name or "").lower(), value=None, local=False, persistent=True)
            return "ALTER DATABASE" if isinstance(node, ast.AlterDatabaseSetStmt) else "ALTER ROLE", True
    for node_type, (kind, simple_lock, transactional) in _SIMPLE_KINDS.items():
        if isinstance(node, node_type):
            c.take(simple_lock)
            return kind, transactional
    return UNRECOGNIZED, True


_DML_NODES = (ast.DeleteStmt, ast.UpdateStmt, ast.InsertStmt, ast.MergeStmt)


def _dml(node: ast.Node, c: _Collector) -> None:
    """Record DML anywhere in the tree, data-modifying CTEs included."""
    match node:
        case ast.DeleteStmt() | ast.UpdateStmt():
            table = name_of(node.relation)
            c.write(table, L.ROW_EXCLUSIVE)
            kind = "delete" if isinstance(node, ast.DeleteStmt) else "update"
            where = node.whereClause
            c.add(
                kind,
                table,
                has_where=where is not None,
                where=to_sqlglot(where) if _may_be_always_true(where) else None,
            )
        case ast.InsertStmt():
            c.write(name_of(node.relation), L.ROW_EXCLUSIVE)
            c.add("insert", name_of(node.relation))
        case ast.MergeStmt():
            c.write(name_of(node.relation), L.ROW_EXCLUSIVE)
            c.add("merge", name_of(node.relation))


def _option_on(option: ast.DefElem) -> bool:
    """`VACUUM (FULL)` and `(FULL true)` turn an option on; `(FULL false)` / `(FULL off)` do not."""
    arg = option.arg
    if arg is None:
        return True
    value = getattr(arg, "sval", None) or getattr(arg, "boolval", None) or getattr(arg, "ival", None)
    return str(value).lower() not in ("false", "off", "0", "no", "none")


_VARYING = (ast.ColumnRef, ast.ParamRef, ast.SubLink, ast.FuncCall)


def _may_be_always_true(where: ast.Node | None) -> bool:
    """Cheap pre-filter: only a WHERE with a constant part, or a comparison of a thing with itself, can be
    always true. Re-reading every WHERE with sqlglot would cost more than all the rules together."""
    if where is None:
        return False
    if not _varies(where):
        return True  # WHERE true, WHERE 1 = 1
    for node in walk(where):
        if isinstance(node, ast.BoolExpr) and any(not _varies(arg) for arg in node.args or ()):
            return True  # ... OR true, NOT false
        if not isinstance(node, ast.A_Expr) or node.lexpr is None or node.rexpr is None:
            continue
        if not _varies(node) or _same(node.lexpr, node.rexpr):
            return True  # an inner 1 = 1, or x = x
    return False


def _varies(node: ast.Node) -> bool:
    return any(isinstance(n, _VARYING) for n in walk(node))


def _same(left: ast.Node, right: ast.Node) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, ast.ColumnRef) and isinstance(right, ast.ColumnRef):
        return left.fields == right.fields
    return deparse(left) == deparse(right)


def _cascade(behavior: Any) -> bool:
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


def _drop(node: ast.DropStmt, c: _Collector) -> tuple[str, bool]:
    obj = _DROP_OBJECTS.get(ObjectType(node.removeType), ObjectType(node.removeType).name[7:].lower())
    cascade = _cascade(node.behavior)
    for target in node.objects or ():
        parts = target if isinstance(target, list | tuple) else (target,)
        name = ".".join(str(p.sval) for p in parts if isinstance(p, ast.String)) or deparse(target)
        if obj in ("table", "index", "materialized view", "foreign table"):
            lock = L.SHARE_UPDATE_EXCLUSIVE if node.concurrent else L.ACCESS_EXCLUSIVE
            c.write(name, lock)
        c.add("drop", name, object=obj, cascade=cascade, concurrently=bool(node.concurrent))
    return f"DROP {obj.upper()}", not node.concurrent


def _alter_table(node: ast.AlterTableStmt, c: _Collector) -> tuple[str, bool]:
    table = name_of(node.relation)
    lock = L.SHARE_UPDATE_EXCLUSIVE
    for cmd in node.cmds:
        sub = AlterTableType(cmd.subtype)
        lock = max(lock, _ALTER_LOCKS.get(sub, L.ACCESS_EXCLUSIVE))
        if sub == AlterTableType.AT_AddColumn:
            _add_column(table, cmd.def_, c)
        elif sub == AlterTableType.AT_DropColumn:
            c.add("drop-column", table, cmd.name, cascade=_cascade(cmd.behavior))
        elif sub == AlterTableType.AT_AlterColumnType:
            c.add("alter-column-type", table, cmd.name, type=_type_name(cmd.def_.typeName))
        elif sub == AlterTableType.AT_SetNotNull:
            c.add("set-not-null", table, cmd.name)
        elif sub == AlterTableType.AT_AddConstraint:
            con = cmd.def_
            kind = _CONSTRAINT_NAMES.get(ConstrType(con.contype), "other")
            if kind == "foreign" and con.pktable is not None:
                c.write(name_of(con.pktable), L.SHARE_ROW_EXCLUSIVE)
                lock = max(lock, L.SHARE_ROW_EXCLUSIVE)
                if _ALTER_LOCKS.get(sub) is None and len(node.cmds) == 1:
                    lock = L.SHARE_ROW_EXCLUSIVE
            c.add(
                "add-constraint",
                table,
                constraint=kind,
                not_valid=bool(con.skip_validation),
                using_index=bool(con.indexname),
                name=con.conname,
            )
        elif sub == AlterTableType.AT_ValidateConstraint:
            c.add("validate-constraint", table, name=cmd.name)
        elif sub in _DISABLE_TRIGGER:
            c.add("disable-trigger", table, trigger=cmd.name or "ALL")
        elif sub == AlterTableType.AT_DropConstraint:
            c.add("drop-constraint", table, name=cmd.name, cascade=_cascade(cmd.behavior))
        elif sub == AlterTableType.AT_AddIdentity or sub == AlterTableType.AT_ColumnDefault:
            pass
    c.write(table, lock)
    c.add("alter-table", table)
    return "ALTER TABLE", True


def _add_column(table: str, col: ast.ColumnDef, c: _Collector) -> None:
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


def _rename(node: ast.RenameStmt, c: _Collector) -> tuple[str, bool]:
    rename_type = ObjectType(node.renameType)
    if node.relation is None:
        return "ALTER RENAME", True
    table = name_of(node.relation)
    c.write(table, L.ACCESS_EXCLUSIVE)
    if rename_type == ObjectType.OBJECT_COLUMN:
        c.add("rename-column", table, node.subname, new_name=node.newname)
        return "ALTER TABLE", True
    if rename_type in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW):
        c.add("rename-table", table, new_name=node.newname)
        return "ALTER TABLE", True
    return "ALTER RENAME", True


def _create_table(node: ast.CreateStmt, c: _Collector) -> tuple[str, bool]:
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


def _create_function(node: ast.CreateFunctionStmt, c: _Collector) -> tuple[str, bool]:
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


def _is_sequence_reset(nodes: list[ast.Node], c: _Collector) -> bool:
    for inner in nodes:
        if isinstance(inner, ast.FuncCall) and inner.funcname[-1].sval.lower() == "setval":
            args = inner.args or ()
            target = deparse(args[0]) if args else None
            c.add("sequence-reset", target, how="setval()")
            return True
    return False
