"""Classify a PostgreSQL statement from pglast's tree (the server's own grammar).

Lock levels and the transaction-block rule follow the PostgreSQL 15 docs: "Explicit Locking" (13.3)
and each command's reference page.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType, ReindexObjectType

from dbguard.sql import classify_pg_ddl as ddl
from dbguard.sql import pg_locks
from dbguard.sql.model import UNRECOGNIZED, Facts, LockMode
from dbguard.sql.pg_tree import Collector, deparse, name_of, to_sqlglot, walk
from dbguard.sql.pg_where import may_be_always_true

L = LockMode

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

# Command tags for statements that need nothing beyond a name (the locks they take: see pg_locks).
_SIMPLE_KINDS: dict[type, tuple[str, bool]] = {
    ast.VariableShowStmt: ("SHOW", True),
    ast.ExplainStmt: ("EXPLAIN", True),
    ast.CommentStmt: ("COMMENT", True),
    ast.CreateSchemaStmt: ("CREATE SCHEMA", True),
    ast.CreateExtensionStmt: ("CREATE EXTENSION", True),
    ast.CreateTrigStmt: ("CREATE TRIGGER", True),
    ast.CreateEnumStmt: ("CREATE TYPE", True),
    ast.CompositeTypeStmt: ("CREATE TYPE", True),
    ast.CreateDomainStmt: ("CREATE DOMAIN", True),
    ast.CreatedbStmt: ("CREATE DATABASE", False),
    ast.CreateTableSpaceStmt: ("CREATE TABLESPACE", False),
    ast.DropTableSpaceStmt: ("DROP TABLESPACE", False),
    ast.NotifyStmt: ("NOTIFY", True),
    ast.DeallocateStmt: ("DEALLOCATE", True),
    ast.PrepareStmt: ("PREPARE", True),
    ast.CheckPointStmt: ("CHECKPOINT", True),
    ast.AlterObjectSchemaStmt: ("ALTER SET SCHEMA", True),
    ast.CreateStatsStmt: ("CREATE STATISTICS", True),
    ast.AlterExtensionStmt: ("ALTER EXTENSION", True),
    ast.CreatePolicyStmt: ("CREATE POLICY", True),
    ast.AlterPolicyStmt: ("ALTER POLICY", True),
    ast.ListenStmt: ("LISTEN", True),
    ast.UnlistenStmt: ("UNLISTEN", True),
    ast.DeclareCursorStmt: ("DECLARE CURSOR", True),
    ast.FetchStmt: ("FETCH", True),
    ast.ClosePortalStmt: ("CLOSE", True),
}
# Anything else (DROP OWNED, REASSIGN OWNED, CREATE RULE, LOAD, ...) is UNRECOGNIZED: dbguard does not vouch
# for a statement whose effect it has not modelled.


def classify(node: ast.Node) -> Facts:
    """Facts about one top-level pglast statement node."""
    c = Collector()
    nodes = list(walk(node))
    kind, transactional = _classify_into(node, nodes, c)
    cte_names = pg_locks.cte_names(nodes)
    pg_locks.add_locks(node, nodes, cte_names, c)
    created = {a.table for a in c.actions if a.kind == "create-table"}  # SELECT INTO / CREATE TABLE AS: not read
    for rv in nodes:
        if isinstance(rv, ast.RangeVar):
            name = name_of(rv)
            if name not in c.written and name not in c.read and name not in cte_names and name not in created:
                c.read.append(name)
    return Facts(
        kind=kind,
        tables_read=tuple(c.read),
        tables_written=tuple(c.written),
        locks=tuple(c.locks.items()),
        transactional=transactional,
        actions=tuple(c.actions),
        nested_sql=tuple(c.nested),
    )


def _classify_into(node: ast.Node, nodes: list[ast.Node], c: Collector) -> tuple[str, bool]:
    for inner in nodes:
        if isinstance(inner, _DML_NODES):
            _dml(inner, c)
        elif isinstance(inner, ast.FuncCall):
            _function_call(inner, c)
    if isinstance(node, ast.ExplainStmt) and not any(
            o.defname == "analyze" and _option_on(o) for o in node.options or ()):  # fmt: skip
        # Plain EXPLAIN plans its statement and runs nothing: its locks stay (the planner takes them), its
        # writes and what it would do (DML, setval(), ...) go. EXPLAIN ANALYZE runs it: everything counts.
        c.read.extend(table for table in c.written if table not in c.read)
        c.written.clear()
        c.actions.clear()
    match node:
        case ast.SelectStmt():
            if node.intoClause is not None:  # SELECT ... INTO new_table (PL/pgSQL's INTO var never gets here)
                c.add("create-table", name_of(node.intoClause.rel), columns=(), if_not_exists=False,
                      how="SELECT ... INTO")  # fmt: skip
                return "SELECT INTO", True
            modifies = any(a.kind in ("delete", "update", "insert", "merge") for a in c.actions)
            return ("WITH" if node.withClause and modifies else "SELECT"), True
        case ast.InsertStmt() | ast.UpdateStmt() | ast.DeleteStmt() | ast.MergeStmt():
            return type(node).__name__.removesuffix("Stmt").upper(), True
        case ast.TruncateStmt():
            for rv in node.relations:
                c.write(name_of(rv), L.ACCESS_EXCLUSIVE)
                c.add("truncate", name_of(rv), cascade=ddl.cascade(node.behavior))
                if node.restart_seqs:
                    c.add("sequence-reset", f"the sequences of {name_of(rv)}'s columns", how="TRUNCATE ... RESTART "
                          "IDENTITY", value="their START values", table_emptied=name_of(rv))  # fmt: skip
            return "TRUNCATE", True
        case ast.DropStmt():
            return ddl.drop(node, c)
        case ast.AlterTableStmt():
            return ddl.alter_table(node, c)
        case ast.RenameStmt():
            return ddl.rename(node, c)
        case ast.IndexStmt():
            table = name_of(node.relation)
            c.write(table, L.SHARE_UPDATE_EXCLUSIVE if node.concurrent else L.SHARE)
            c.add("create-index", table, concurrently=bool(node.concurrent), unique=bool(node.unique),
                  only=not node.relation.inh)  # ON ONLY: the table is partitioned; no partition is touched
            return "CREATE INDEX", not node.concurrent
        case ast.ReindexStmt():
            concurrently = any(p.defname == "concurrently" for p in node.params or ())
            target = node.name or (name_of(node.relation) if node.relation else None)
            if node.relation:  # a table gets SHARE (writes wait); an index ACCESS EXCLUSIVE (its readers wait)
                index = node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX
                strong = L.ACCESS_EXCLUSIVE if index else L.SHARE
                c.write(name_of(node.relation), L.SHARE_UPDATE_EXCLUSIVE if concurrently else strong)
            whole = node.kind in (ReindexObjectType.REINDEX_OBJECT_SYSTEM, ReindexObjectType.REINDEX_OBJECT_DATABASE)
            c.add("reindex", target, concurrently=concurrently, target=ReindexObjectType(node.kind).name)
            return "REINDEX", not (concurrently or whole)
        case ast.VacuumStmt():
            options = {o.defname for o in node.options or () if _option_on(o)}
            if not node.is_vacuumcmd:
                for rel in node.rels or ():
                    c.lock_on(name_of(rel.relation), L.SHARE_UPDATE_EXCLUSIVE)
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
                c.lock_on(copied, L.ACCESS_SHARE)
            c.add(
                "copy",
                copied,
                program=bool(node.is_program),
                file=node.filename is not None,
                is_from=bool(node.is_from),
            )
            return "COPY", True
        case ast.GrantStmt():
            _grant(node, c)
            return ("GRANT" if node.is_grant else "REVOKE"), True
        case ast.AlterDefaultPrivilegesStmt():
            _grant(node.action, c)
            return "ALTER DEFAULT PRIVILEGES", True
        case ast.GrantRoleStmt():
            admin = any(o.defname == "admin" for o in node.opt or ())
            c.add("grant" if node.is_grant else "revoke", to_public=False, privileges=["role"], objects=[],
                  scope="role membership", grant_option=admin)  # fmt: skip
            return ("GRANT" if node.is_grant else "REVOKE"), True
        case ast.AlterSeqStmt():
            # START WITH only records the value a later RESTART uses: the sequence does not move.
            for option in node.options or ():
                if option.defname == "restart":
                    restart = _sequence_value(option.arg) if option.arg is not None else {"value": "its START value"}
                    c.add("sequence-reset", name_of(node.sequence), how="ALTER SEQUENCE ... RESTART", **restart)
            return "ALTER SEQUENCE", True
        case ast.CreateStmt():
            return ddl.create_table(node, c)
        case ast.CreateTableAsStmt():
            if node.objtype == ObjectType.OBJECT_TABLE and node.into is not None:  # not a materialized view
                c.add("create-table", name_of(node.into.rel), columns=(), if_not_exists=bool(node.if_not_exists),
                      how="CREATE TABLE AS")  # fmt: skip
            elif node.into is not None:
                c.add("create-relation", name_of(node.into.rel), object="materialized view",
                      if_not_exists=bool(node.if_not_exists))  # fmt: skip
            return "CREATE TABLE AS", True
        case ast.ViewStmt():
            c.add("create-relation", name_of(node.view), object="view", if_not_exists=bool(node.replace))
            return "CREATE VIEW", True
        case ast.CreateSeqStmt():
            c.add("create-relation", name_of(node.sequence), object="sequence", if_not_exists=bool(node.if_not_exists))
            return "CREATE SEQUENCE", True
        case ast.DoStmt():
            language = next((a.arg.sval for a in node.args if a.defname == "language"), "plpgsql")
            if language.lower() == "plpgsql":
                c.nested.append(("DO block", deparse(node), "plpgsql"))
            else:
                c.add("opaque-body", language=language)
            return "DO", True
        case ast.CreateFunctionStmt():
            return ddl.create_function(node, c)
        case ast.CallStmt():
            return "CALL", True
        case ast.ExecuteStmt():
            return "EXECUTE", True
        case ast.DropdbStmt():
            c.add("drop", node.dbname, object="database", cascade=False, concurrently=False)
            return "DROP DATABASE", False
        case ast.AlterDatabaseSetStmt() | ast.AlterRoleSetStmt():
            if node.setstmt is not None:
                args = node.setstmt.args
                value = ", ".join(deparse(a) for a in args) if args else None
                c.add("set", name=(node.setstmt.name or "").lower(), value=value, local=False, persistent=True)
            return "ALTER DATABASE" if isinstance(node, ast.AlterDatabaseSetStmt) else "ALTER ROLE", True
        case ast.CreateRoleStmt() | ast.AlterRoleStmt():
            attributes = [o.defname for o in node.options or ()]
            c.add("grant", to_public=False, privileges=["role attributes", *attributes], objects=[])
            return ("CREATE ROLE" if isinstance(node, ast.CreateRoleStmt) else "ALTER ROLE"), True
        case ast.AlterOwnerStmt():
            c.add("grant", to_public=False, privileges=["ownership"], objects=[deparse(node.object)])
            return "ALTER OWNER", True
        case ast.AlterFunctionStmt():
            if any(a.defname == "security" and _option_on(a) for a in node.actions or ()):
                c.add("grant", to_public=False, privileges=["SECURITY DEFINER"], objects=[deparse(node.func)])
            return "ALTER FUNCTION", True
        case ast.RefreshMatViewStmt():
            view = name_of(node.relation)
            c.write(view, L.EXCLUSIVE if node.concurrent else L.ACCESS_EXCLUSIVE)
            c.add("refresh", view, concurrently=bool(node.concurrent))
            return "REFRESH MATERIALIZED VIEW", True
        case ast.AlterDomainStmt() | ast.AlterEnumStmt():
            return ddl.alter_type(node, c)
        case ast.DiscardStmt():
            return "DISCARD", node.target != 0  # DISCARD ALL cannot run in a transaction block
    for node_type, (kind, transactional) in _SIMPLE_KINDS.items():
        if isinstance(node, node_type):
            return kind, transactional
    return UNRECOGNIZED, True


_DML_NODES = (ast.DeleteStmt, ast.UpdateStmt, ast.InsertStmt, ast.MergeStmt)
# GrantStmt.targtype: named objects, ALL <kind> IN SCHEMA, ALTER DEFAULT PRIVILEGES (objects not made yet).
_GRANT_SCOPES = {0: "object", 1: "all in schema", 2: "default privileges"}


def _grant(node: ast.GrantStmt, c: Collector) -> None:
    """GRANT / REVOKE of privileges: scope ("object", "all in schema", "default privileges"), grant_option."""
    to_public = any(g.roletype == 4 for g in node.grantees or () if isinstance(g, ast.RoleSpec))
    scope = _GRANT_SCOPES.get(int(node.targtype), "object")
    if scope == "all in schema":
        kind = ObjectType(node.objtype).name.removeprefix("OBJECT_").lower()
        objects = [f"ALL {kind.upper()}S IN SCHEMA {deparse(o).strip(chr(39))}" for o in node.objects or ()]
    else:
        objects = [deparse(o) for o in node.objects or ()]
    privileges = [p.priv_name for p in node.privileges or () if p.priv_name] or ["all"]
    roles = [g.rolename or ("PUBLIC" if g.roletype == 4 else "CURRENT_USER") for g in node.grantees or ()
             if isinstance(g, ast.RoleSpec)]  # fmt: skip
    c.add("grant" if node.is_grant else "revoke", to_public=to_public, privileges=privileges, objects=objects,
          scope=scope, grant_option=bool(node.grant_option), roles=roles)  # fmt: skip


def _dml(node: ast.Node, c: Collector) -> None:
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
                where=to_sqlglot(where) if may_be_always_true(where, node.relation) else None,
            )
        case ast.InsertStmt():
            c.write(name_of(node.relation), L.ROW_EXCLUSIVE)
            c.add("insert", name_of(node.relation))
        case ast.MergeStmt():
            table = name_of(node.relation)
            c.write(table, L.ROW_EXCLUSIVE)
            c.add("merge", table)
            # WHEN MATCHED THEN DELETE/UPDATE acts on every row the ON condition joins: that is its WHERE.
            on = node.joinCondition
            for clause in node.mergeWhenClauses or ():
                action = {4: "delete", 2: "update"}.get(int(clause.commandType))
                if action and int(clause.matchKind) == 0:
                    where = clause.condition or on
                    expression = to_sqlglot(where) if may_be_always_true(where) else None
                    c.add(action, table, has_where=True, where=expression)


def _sequence_value(value: ast.Node | None) -> dict[str, object]:
    """What a sequence is moved to: a constant (`value`), the largest key in use read from the data
    (`from_data`: a max(), directly or in a subquery, not lowered by -, /, min(), ...: the standard repair),
    or an expression check cannot evaluate (`value` None)."""
    if value is None:
        return {"value": None, "from_data": False}
    nodes = list(walk(value))
    functions = {str(n.funcname[-1].sval).lower() for n in nodes if isinstance(n, ast.FuncCall)}
    lowered = functions & {"min", "least", "count"} or any(
        isinstance(n, ast.A_Expr) and n.name and str(n.name[-1].sval) in ("-", "/", "%") for n in nodes)  # fmt: skip
    if "max" in functions and not lowered:
        return {"value": deparse(value), "from_data": True}
    constant = all(isinstance(n, ast.A_Const | ast.Integer | ast.Float | ast.TypeCast | ast.TypeName | ast.String
                              | ast.A_Expr) for n in nodes)  # fmt: skip
    return {"value": deparse(value) if constant else None, "from_data": False}


def _option_on(option: ast.DefElem) -> bool:
    """`VACUUM (FULL)` and `(FULL true)` turn an option on; `(FULL false)` / `(FULL off)` do not."""
    arg = option.arg
    if arg is None:
        return True
    value = getattr(arg, "sval", None) or getattr(arg, "boolval", None) or getattr(arg, "ival", None)
    return str(value).lower() not in ("false", "off", "0", "no", "none")


# Functions that read the server's own files ("Generic File Access Functions" in the docs).
SERVER_FILE_FUNCTIONS = frozenset({
    "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir",
    "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir", "pg_ls_replslotdir",
})  # fmt: skip
# Functions that end other sessions, destroy data outside any table, or run SQL dbguard cannot see; and those above.
DANGEROUS_FUNCTIONS = frozenset({
    "pg_terminate_backend", "pg_cancel_backend", "lo_unlink", "pg_drop_replication_slot", "dblink_exec",
    "dblink", "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_replication_origin_drop",
    "pg_file_unlink", "pg_file_write", "pg_truncate_visibility_map", "lo_export", "lo_import", "dblink_connect",
    "dblink_connect_u", "dblink_send_query", "dblink_open", "pg_file_rename", "pg_file_sync",
}) | SERVER_FILE_FUNCTIONS  # fmt: skip


def _function_call(call: ast.FuncCall, c: Collector) -> None:
    name = str(call.funcname[-1].sval).lower()
    args = call.args or ()
    if name == "setval":
        value = args[1] if len(args) > 1 else None
        c.add("sequence-reset", deparse(args[0]) if args else None, how="setval()", **_sequence_value(value))
    elif name == "set_config" and len(args) >= 2:  # set_config('session_replication_role', 'replica', false)
        setting = deparse(args[0]).strip("'").lower()
        c.add("set", name=setting, value=deparse(args[1]), local=False)
    elif name in DANGEROUS_FUNCTIONS:
        c.add("dangerous-function", name=name)
