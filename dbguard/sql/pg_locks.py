"""The relation locks a PostgreSQL statement takes beyond its target's, by kind of statement.

`classify_pg` records the lock on each statement's own target; this module adds the other relations the
server locks, each as a kind, not as one example:

- every relation a query reads gets ACCESS SHARE, wherever the query sits (SELECT, the FROM of UPDATE,
  the USING of DELETE and MERGE, INSERT ... SELECT, COPY (query), CREATE VIEW / TABLE AS / MATERIALIZED
  VIEW, EXPLAIN, DECLARE CURSOR, a rule's actions); FOR UPDATE / SHARE gives ROW SHARE to the relations
  it names (all of its FROM list without OF);
- the referenced table of every foreign key (CREATE TABLE, ADD COLUMN, ADD CONSTRAINT) gets SHARE ROW
  EXCLUSIVE;
- nextval() and setval() give their sequence ROW EXCLUSIVE when the statement runs them, ACCESS SHARE
  when it stores them (a view, a column default, a rule);
- the relation an object hangs on: a rule's, trigger's or policy's table (CREATE / DROP, ACCESS EXCLUSIVE),
  a commented relation (SHARE UPDATE EXCLUSIVE), the parent of a new partition (ACCESS EXCLUSIVE) or
  child table (SHARE UPDATE EXCLUSIVE), the source of CREATE TABLE ... LIKE (ACCESS SHARE), the view of
  CREATE OR REPLACE VIEW, the partition of ATTACH / DETACH PARTITION (ACCESS EXCLUSIVE), the index of
  CLUSTER ... USING and ALTER TABLE ... CLUSTER ON, a sequence's OWNED BY table (ACCESS SHARE), the
  parent of ALTER TABLE ... INHERIT (SHARE UPDATE EXCLUSIVE; NO INHERIT: ACCESS SHARE), the table of
  COMMENT ON TRIGGER / RULE / POLICY / CONSTRAINT (ACCESS SHARE);
- the relations a new SQL function's body reads or writes, which the server analyses when it is created.

Every mode here was read from the server's pg_locks (PostgreSQL 15) by tests/test_lock_oracle.py, which
fails on any difference. A relation the server reaches only through the schema (a table's indexes, a
partitioned table's partitions, a view's tables, the tables using an altered domain) is not named by
the script and is not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from dbguard.sql.model import LockMode
from dbguard.sql.pg_tree import Collector, dotted, name_of, walk

L = LockMode

# Objects whose COMMENT ON locks the relation itself (the object is the relation's name; a column's is its
# table's name and the column).
_COMMENTED_RELATIONS = {
    ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_FOREIGN_TABLE,
}  # fmt: skip
# DROP of an object that hangs on a table (DROP TRIGGER t ON tbl): the table gets ACCESS EXCLUSIVE.
_TABLE_OBJECTS = {ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_RULE, ObjectType.OBJECT_POLICY}
# COMMENT ON TRIGGER / RULE / POLICY / CONSTRAINT ... ON tbl only reads its table: ACCESS SHARE.
_COMMENTED_TABLE_OBJECTS = _TABLE_OBJECTS | {ObjectType.OBJECT_TABCONSTRAINT}
# Statements that run the functions they call: nextval('s') and setval('s', ...) lock s ROW EXCLUSIVE.
_RUNS_FUNCTIONS = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt, ast.CopyStmt,
                   ast.CreateTableAsStmt)  # fmt: skip
# Statements that store an expression (a view's query, a column default, a rule's action): its sequence
# gets ACCESS SHARE. EXPLAIN without ANALYZE, DECLARE CURSOR and a function body neither run nor store.
_STORES_FUNCTIONS = (ast.ViewStmt, ast.CreateStmt, ast.RuleStmt)


def add_locks(node: ast.Node, nodes: list[ast.Node], cte_names: set[str], c: Collector, runs: bool = True) -> None:
    """Record the locks `node` takes beyond those its classifier recorded on its target. One pass over
    `nodes` (every node of the statement, as classify_pg walked them): a query's FROM list is read down
    its joins only, since each subquery is a node of its own in the pass. `cte_names`: the names of the
    statement's WITH queries (a FROM naming one without a schema reads no relation). `runs`: the statement
    runs now (not a function body being validated), so the functions it calls run too."""
    reads: list[tuple[ast.RangeVar, LockMode]] = []
    locked: set[int] = set()  # subqueries in the FROM of a FOR UPDATE / SHARE query: their rows are locked too
    sequence_lock = _sequence_lock(node) if runs else None
    for inner in nodes:
        if type(inner) in _QUERIES:
            _query_reads(inner, reads, locked)
        elif isinstance(inner, ast.Constraint) and inner.contype == ConstrType.CONSTR_FOREIGN and inner.pktable:
            referenced = name_of(inner.pktable)
            if not (isinstance(node, ast.CreateStmt) and referenced == name_of(node.relation)):  # new itself
                c.lock_on(referenced, L.SHARE_ROW_EXCLUSIVE)
        elif isinstance(inner, ast.FuncCall) and sequence_lock:
            _sequence_function(inner, sequence_lock, c)
    for rv, mode in reads:
        if rv.schemaname is not None or rv.relname not in cte_names:
            c.lock_on(name_of(rv), mode)
    _object_locks(node, c)


_QUERIES = {ast.SelectStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt}


def _query_reads(node: ast.Node, reads: list[tuple[ast.RangeVar, LockMode]], locked: set[int]) -> None:
    """The relations in a query's FROM (UPDATE's FROM, DELETE's USING, MERGE's USING): ACCESS SHARE; FOR
    UPDATE / SHARE gives ROW SHARE to those it names (every one without OF), subqueries' included."""
    if isinstance(node, ast.SelectStmt):
        relations, subqueries = _from_items(node.fromClause or ())
        named: set[str] | None = set() if id(node) in locked else None  # empty: every relation
        for clause in node.lockingClause or ():
            of = {rv.relname for rv in clause.lockedRels or ()}
            named = set() if not of or named == set() else (named or set()) | of
        if named is not None:
            reads.extend((rv, L.ROW_SHARE) for rv in relations
                         if not named or rv.relname in named or (rv.alias and rv.alias.aliasname in named))  # fmt: skip
            locked.update(id(sub.subquery) for sub in subqueries
                          if not named or (sub.alias and sub.alias.aliasname in named))  # fmt: skip
    elif isinstance(node, ast.UpdateStmt):
        relations = _from_items(node.fromClause or ())[0]
    elif isinstance(node, ast.DeleteStmt):
        relations = _from_items(node.usingClause or ())[0]
    elif isinstance(node, ast.MergeStmt):
        relations = _from_items((node.sourceRelation,))[0]
    else:
        return
    reads.extend((rv, L.ACCESS_SHARE) for rv in relations)


def _from_items(items: Iterable[Any]) -> tuple[list[ast.RangeVar], list[ast.RangeSubselect]]:
    """The relations and the subqueries of a FROM list, through its joins (a subquery's own relations are
    its own query's, met later in the pass)."""
    relations: list[ast.RangeVar] = []
    subqueries: list[ast.RangeSubselect] = []
    stack = list(items)
    while stack:
        item = stack.pop()
        if isinstance(item, ast.RangeVar):
            relations.append(item)
        elif isinstance(item, ast.RangeSubselect):
            subqueries.append(item)
        elif isinstance(item, ast.JoinExpr):
            stack += (item.larg, item.rarg)
    return relations, subqueries


def _sequence_lock(node: ast.Node) -> LockMode | None:
    """What nextval('s') in `node` takes on s: ROW EXCLUSIVE when it runs, ACCESS SHARE when it is stored.
    ADD COLUMN ... DEFAULT nextval(...) does both (it fills the existing rows): ROW EXCLUSIVE."""
    if isinstance(node, _RUNS_FUNCTIONS):
        return L.ROW_EXCLUSIVE
    if isinstance(node, ast.AlterTableStmt):
        adds = any(AlterTableType(cmd.subtype) == AlterTableType.AT_AddColumn for cmd in node.cmds)
        return L.ROW_EXCLUSIVE if adds else L.ACCESS_SHARE
    return L.ACCESS_SHARE if isinstance(node, _STORES_FUNCTIONS) else None


def _sequence_function(call: ast.FuncCall, lock: LockMode, c: Collector) -> None:
    """nextval('s') and setval('s', n) lock their sequence; currval() and lastval() lock none."""
    if str(call.funcname[-1].sval).lower() not in ("nextval", "setval") or not call.args:
        return
    argument = call.args[0]
    if isinstance(argument, ast.TypeCast):  # 'counter_seq'::regclass
        argument = argument.arg
    if isinstance(argument, ast.A_Const) and isinstance(argument.val, ast.String):
        c.lock_on(argument.val.sval, lock)


def _object_locks(node: ast.Node, c: Collector) -> None:
    match node:
        case ast.RuleStmt():
            c.lock_on(name_of(node.relation), L.ACCESS_EXCLUSIVE)
        case ast.CreateTrigStmt():
            c.lock_on(name_of(node.relation), L.SHARE_ROW_EXCLUSIVE)
        case ast.DropStmt() if ObjectType(node.removeType) in _TABLE_OBJECTS:
            for target in node.objects or ():
                if isinstance(target, tuple | list) and len(target) > 1:  # DROP TRIGGER t ON tbl: tbl, then t
                    c.lock_on(dotted(target[:-1]), L.ACCESS_EXCLUSIVE)
        case ast.CreatePolicyStmt() | ast.AlterPolicyStmt():
            c.lock_on(name_of(node.table), L.ACCESS_EXCLUSIVE)
        case ast.CreateStatsStmt():
            for rv in node.relations or ():
                c.lock_on(name_of(rv), L.SHARE_UPDATE_EXCLUSIVE)
        case ast.CommentStmt():
            objtype = ObjectType(node.objtype)
            parts = node.object if isinstance(node.object, tuple | list) else ()
            if objtype in _COMMENTED_RELATIONS and parts:
                c.lock_on(dotted(parts), L.SHARE_UPDATE_EXCLUSIVE)
            elif objtype == ObjectType.OBJECT_COLUMN and len(parts) > 1:
                c.lock_on(dotted(parts[:-1]), L.SHARE_UPDATE_EXCLUSIVE)
            elif objtype in _COMMENTED_TABLE_OBJECTS and len(parts) > 1:
                c.lock_on(dotted(parts[:-1]), L.ACCESS_SHARE)
        case ast.AlterObjectSchemaStmt() if node.relation is not None:
            c.lock_on(name_of(node.relation), L.ACCESS_EXCLUSIVE)
        case ast.ViewStmt() if node.replace:  # a new view is seen by no one; a replaced one is locked
            c.lock_on(name_of(node.view), L.ACCESS_EXCLUSIVE)
        case ast.CreateStmt():
            for parent in node.inhRelations or ():
                c.lock_on(name_of(parent), L.ACCESS_EXCLUSIVE if node.partbound else L.SHARE_UPDATE_EXCLUSIVE)
            for element in node.tableElts or ():
                if isinstance(element, ast.TableLikeClause):
                    c.lock_on(name_of(element.relation), L.ACCESS_SHARE)
        case ast.CreateSeqStmt() | ast.AlterSeqStmt():
            if isinstance(node, ast.AlterSeqStmt):
                c.lock_on(name_of(node.sequence), L.SHARE_ROW_EXCLUSIVE)
            for option in node.options or ():
                owner = option.arg if option.defname == "owned_by" else None
                if isinstance(owner, tuple | list) and len(owner) > 1:  # OWNED BY table.column; not NONE
                    c.lock_on(dotted(owner[:-1]), L.ACCESS_SHARE)
        case ast.ClusterStmt() if node.relation is not None and node.indexname:
            c.lock_on(_sibling(node.relation, node.indexname), L.ACCESS_EXCLUSIVE)
        case ast.AlterTableStmt():
            _alter_table_locks(node, c)
        case ast.CreateFunctionStmt():
            _validated_body(node, c)


def _alter_table_locks(node: ast.AlterTableStmt, c: Collector) -> None:
    for cmd in node.cmds:
        sub = AlterTableType(cmd.subtype)
        if sub in (AlterTableType.AT_AttachPartition, AlterTableType.AT_DetachPartition):
            # The partition (table or index) gets ACCESS EXCLUSIVE: ATTACH scans it to validate its bound,
            # DETACH ... CONCURRENTLY takes it in its second transaction (ALTER TABLE reference page).
            c.lock_on(name_of(cmd.def_.name), L.ACCESS_EXCLUSIVE)
        elif sub == AlterTableType.AT_ClusterOn:
            c.lock_on(_sibling(node.relation, cmd.name), L.SHARE_UPDATE_EXCLUSIVE)
        elif sub == AlterTableType.AT_AddInherit:  # INHERIT parent
            c.lock_on(name_of(cmd.def_), L.SHARE_UPDATE_EXCLUSIVE)
        elif sub == AlterTableType.AT_DropInherit:  # NO INHERIT parent
            c.lock_on(name_of(cmd.def_), L.ACCESS_SHARE)


def _validated_body(node: ast.CreateFunctionStmt, c: Collector) -> None:
    """CREATE FUNCTION ... LANGUAGE sql AS '...' analyses its body (check_function_bodies, on by default):
    the relations the body reads get ACCESS SHARE, the ones it writes ROW EXCLUSIVE, as in BEGIN ATOMIC
    (whose statements are part of the tree already). A PL/pgSQL body is only parsed: it locks nothing."""
    options = {o.defname: o.arg for o in node.options or ()}
    language = getattr(options.get("language"), "sval", "sql").lower()
    body = options.get("as")
    if language != "sql" or node.sql_body is not None or not isinstance(body, tuple | list) or not body:
        return
    try:
        statements = pglast.parse_sql(str(body[0].sval))
    except pglast.parser.ParseError:
        return  # the nested statement reports the syntax error
    for raw in statements:
        nodes = list(walk(raw.stmt))
        add_locks(raw.stmt, nodes, cte_names(nodes), c, runs=False)
        for inner in nodes:
            if isinstance(inner, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt) and inner.relation:
                c.lock_on(name_of(inner.relation), L.ROW_EXCLUSIVE)


def cte_names(nodes: list[ast.Node]) -> set[str]:
    """The names of the WITH queries among `nodes`."""
    return {str(cte.ctename) for cte in nodes if isinstance(cte, ast.CommonTableExpr)}


def _sibling(table: ast.RangeVar, index: str) -> str:
    """An index named next to its table lives in the table's schema."""
    return f"{table.schemaname}.{index}" if table.schemaname else index
