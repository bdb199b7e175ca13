"""Classify a SQLite or MySQL statement from sqlglot's tree into the same `Action` records as PostgreSQL.

sqlglot hands back `exp.Command` (raw text) for statements it cannot parse, and a bare column or alias
for some keyword statements (SQLite `SAVEPOINT s`, `REINDEX`). Only the ones listed in `_COMMANDS` and
`_KEYWORD_STATEMENTS` are recognized; anything else gives None so the caller fails closed.

MySQL commits implicitly before and after DDL, GRANT, LOCK TABLES, OPTIMIZE... ("Statements That Cause
an Implicit Commit"), so those are not transactional. SQLite cannot VACUUM, ATTACH or DETACH inside a
transaction.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from dbguard.dialects import Dialect
from dbguard.sql.model import Action, Facts

_MYSQL_IMPLICIT_COMMIT = frozenset({
    "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE",  # DDL and account changes
    "LOCK", "UNLOCK", "OPTIMIZE", "ANALYZE",  # table maintenance and locks
})  # fmt: skip
_SQLITE_OUTSIDE_TRANSACTION = frozenset({"VACUUM", "ATTACH", "DETACH"})
# A default made only of these (and constants) is not volatile; any other function call counts as one.
_STABLE_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Cast,
)  # fmt: skip
_CONSTRAINTS: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.ForeignKey, "foreign"), (exp.CheckColumnConstraint, "check"), (exp.UniqueColumnConstraint, "unique"),
    (exp.PrimaryKey, "primary"), (exp.PrimaryKeyColumnConstraint, "primary"),
)  # fmt: skip
_IDENTITY = (exp.AutoIncrementColumnConstraint, exp.GeneratedAsIdentityColumnConstraint)
_GENERATED = (exp.ComputedColumnConstraint, *_IDENTITY)
ONLINE_OPTION = re.compile(r"\b(ALGORITHM|LOCK)\s*=?\s*(\w+)", re.IGNORECASE)
FLAGS = re.IGNORECASE | re.DOTALL


class Collector:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.read: list[str] = []
        self.written: list[str] = []
        self.actions: list[Action] = []
        self.nested: list[tuple[str, str, str]] = []
        self.names: set[int] = set()  # ids of Table nodes that name an object rather than read it
        self.temporary = False

    def write(self, table: str) -> None:
        if table not in self.written:
            self.written.append(table)

    def add(self, kind: str, table: str | None = None, column: str | None = None, **details: Any) -> None:
        self.actions.append(Action(kind, table, column, details))

    def type_name(self, dtype: exp.Expression | None) -> str:
        """The type as the dialect spells it, lower case, without parameters: varchar(10) -> varchar."""
        if not isinstance(dtype, exp.DataType):
            return ""
        return re.sub(r"\(.*\)", "", dtype.sql(dialect=self.dialect.value)).strip().lower()

    def skip(self, node: exp.Expression | None) -> None:
        if node is not None:
            self.names.update(id(t) for t in node.find_all(exp.Table))

    def collect_reads(self, tree: exp.Expr) -> None:
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if id(table) in self.names or not isinstance(table.this, exp.Identifier):
                continue
            name = _name(table)
            if name not in self.written and name not in self.read and name not in ctes:
                self.read.append(name)

    def facts(self, kind: str) -> Facts:
        first = kind.split()[0]
        if self.dialect is Dialect.MYSQL:
            transactional = first not in _MYSQL_IMPLICIT_COMMIT or self.temporary
        else:
            transactional = first not in _SQLITE_OUTSIDE_TRANSACTION
        return Facts(kind, tables_read=tuple(self.read), tables_written=tuple(self.written),
                     transactional=transactional, actions=tuple(self.actions),
                     nested_sql=tuple(self.nested))  # fmt: skip


def classify(expression: exp.Expr, dialect: Dialect) -> Facts | None:
    """Facts about one parsed statement, or None when the statement is not understood (fail closed)."""
    if isinstance(expression, exp.Command | exp.Block):
        from dbguard.sql.classify_sqlglot_commands import command  # it re-enters classify() for REPLACE

        return command(expression, dialect)
    c = Collector(dialect)
    kind = _statement(expression, c)
    if kind is None:
        return None
    c.collect_reads(expression)
    _system_tables(c)
    return c.facts(kind)


# SQLite's own tables: sqlite_sequence holds AUTOINCREMENT's counters; the schema tables are the catalog
# itself ("The Schema Table" in the SQLite docs), writable only with PRAGMA writable_schema.
_SQLITE_CATALOG = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})


def _system_tables(c: Collector) -> None:
    """A write to a database's own bookkeeping tables is an action of its own, beside the plain write."""
    for table in c.written:
        bare = table.rsplit(".", 1)[-1].lower()
        if c.dialect is Dialect.SQLITE and bare == "sqlite_sequence":
            c.add("sequence-reset", table, how="a write to sqlite_sequence (AUTOINCREMENT's counters)")
        elif c.dialect is Dialect.SQLITE and bare in _SQLITE_CATALOG:
            c.add("catalog-write", table)
        elif c.dialect is Dialect.MYSQL and table.lower().startswith("mysql."):
            c.add("catalog-write", table)  # the grant tables and server metadata, behind GRANT's back


def _name(table: exp.Table) -> str:
    return ".".join(part for part in (table.catalog, table.db, table.name) if part)


def _text(node: exp.Expression | None, dialect: Dialect) -> str:
    """A value as plain text: names and literals unquoted, anything else as SQL."""
    if isinstance(node, exp.Literal):
        return str(node.this)
    if isinstance(node, exp.Column | exp.Var | exp.Identifier):
        return node.name
    return node.sql(dialect=dialect.value) if node is not None else ""


def _statement(e: exp.Expr, c: Collector) -> str | None:
    match e:
        case exp.Query() | exp.Insert() | exp.Update() | exp.Delete():
            return _query(e, c)
        case exp.Create():
            return _create(e, c)
        case exp.Drop():
            return _drop(e, c)
        case exp.Alter() if (e.args.get("kind") or "").upper() == "TABLE":
            return _alter_table(e, c)
        case exp.TruncateTable():
            cascade = str(e.args.get("option") or "").upper() == "CASCADE"
            for table in e.expressions:
                c.write(_name(table))
                c.add("truncate", _name(table), cascade=cascade)
            return "TRUNCATE"
        case exp.Transaction():
            c.add("transaction-control", command=" ".join(["BEGIN", str(e.this or "")]).strip().upper())
            return "BEGIN"
        case exp.Commit():
            c.add("transaction-control", command="COMMIT")
            return "COMMIT"
        case exp.Rollback():
            to = e.args.get("savepoint")
            c.add("transaction-control", command=f"ROLLBACK TO SAVEPOINT {to}" if to else "ROLLBACK")
            return "ROLLBACK"
        case exp.Set():
            for item in e.expressions:
                _set_item(item, c)
            return "SET"
        case exp.Pragma():
            return "PRAGMA" if _pragma(e, c) else None
        case exp.Grant() | exp.Revoke():
            _grant_node(e, c)
            return type(e).__name__.upper()
        case exp.Describe():
            if str(e.args.get("style") or "").upper() == "ANALYZE":
                return None  # MySQL EXPLAIN ANALYZE runs the statement: not modelled
            return "DESCRIBE" if isinstance(e.this, exp.Table) else "EXPLAIN"
        case exp.Analyze():
            return "ANALYZE"
        case exp.Show() | exp.Attach() | exp.Detach() | exp.Use():
            c.skip(e)
            return type(e).__name__.upper()
        case exp.Column() | exp.Alias():
            return _keyword_statement(e, c)
    return None


def _query(e: exp.Expr, c: Collector) -> str | None:
    """SELECT, INSERT, UPDATE, DELETE, with DML anywhere in the tree (data-modifying CTEs included). None when
    a write goes to something that is not a table (`DELETE FROM (SELECT ...)`): what it changes is unknown."""
    for node in e.find_all(exp.Delete, exp.Update, exp.Insert):
        if isinstance(node, exp.Insert):
            target = node.this.this if isinstance(node.this, exp.Schema) else node.this
            if not isinstance(target, exp.Table):
                return None
            c.write(_name(target))
            replaces = str(node.args.get("alternative") or "").upper() == "REPLACE"  # INSERT OR REPLACE
            c.add("insert", _name(target), replace=replaces)
        elif isinstance(node, exp.Delete | exp.Update) and not isinstance(node.this, exp.Table):
            return None
        elif isinstance(node, exp.Delete | exp.Update):
            _delete_or_update(node, c)
    if isinstance(e, exp.Query):
        return "WITH" if e.args.get("with_") and c.actions else "SELECT"
    return type(e).__name__.upper()


def _delete_or_update(node: exp.Delete | exp.Update, c: Collector) -> None:
    where = node.args.get("where")
    kind = "delete" if isinstance(node, exp.Delete) else "update"
    for table in _dml_targets(node, c):
        c.write(table)
        c.add(kind, table, has_where=where is not None, where=where.this if where else None)


def _dml_targets(node: exp.Delete | exp.Update, c: Collector) -> list[str]:
    """The tables an UPDATE or DELETE changes, resolving MySQL multi-table aliases."""
    main = node.this
    if not isinstance(main, exp.Table):
        return []
    joined = [j.this for j in main.args.get("joins") or () if isinstance(j.this, exp.Table)]
    by_alias = {t.alias_or_name: _name(t) for t in [main, *joined]}
    if isinstance(node, exp.Delete):
        listed = node.args.get("tables") or []
        c.names.update(id(t) for t in listed)
        targets = [_name(t) if t.db else by_alias.get(t.name, _name(t)) for t in listed]
    else:
        qualifiers = {a.this.table for a in node.expressions if isinstance(a.this, exp.Column)}
        targets = [real for alias, real in by_alias.items() if alias in qualifiers]
    return list(dict.fromkeys(targets)) or [_name(main)]


def _create(e: exp.Create, c: Collector) -> str | None:
    kind = str(e.args.get("kind") or "").upper()
    properties = e.args.get("properties")
    c.temporary = properties is not None and properties.find(exp.TemporaryProperty) is not None
    if kind == "INDEX" and isinstance(e.this, exp.Index) and isinstance(e.this.args.get("table"), exp.Table):
        table = _name(e.this.args["table"])
        c.write(table)
        c.add("create-index", table, concurrently=False, unique=bool(e.args.get("unique")),
              algorithm=None, lock=None)  # fmt: skip
        return "CREATE INDEX"
    c.skip(e.this.this if isinstance(e.this, exp.Schema) else e.this)  # the new name, not its references
    if kind == "TABLE" and isinstance(e.expression, exp.Query):
        return "CREATE TABLE AS"
    if kind == "TABLE":
        schema = e.this if isinstance(e.this, exp.Schema) else None
        created = e.find(exp.Table)
        columns = _columns(schema, c) if schema else ()
        c.add("create-table", _name(created) if created else None, columns=columns,
              if_not_exists=bool(e.args.get("exists")))  # fmt: skip
        return "CREATE TABLE"
    if kind in ("VIEW", "DATABASE", "SCHEMA"):
        return f"CREATE {kind}"
    return None  # procedures, functions, events...: bodies this classifier cannot check


def _columns(schema: exp.Schema, c: Collector) -> tuple[tuple[str, str, bool, bool], ...]:
    table_pk = {i.name for pk in schema.find_all(exp.PrimaryKey) for i in pk.expressions}
    columns = []
    for col in schema.expressions:
        if isinstance(col, exp.ColumnDef):
            kinds = [k.kind for k in col.constraints]
            primary = col.name in table_pk or any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
            identity = any(isinstance(k, _IDENTITY) for k in kinds)
            columns.append((col.name, c.type_name(col.args.get("kind")), primary, identity))
    return tuple(columns)


def _drop(e: exp.Drop, c: Collector) -> str:
    obj = str(e.args.get("kind") or "").lower()
    on = e.args.get("cluster")  # MySQL DROP INDEX i ON t
    owner = _name(on.this) if isinstance(on, exp.OnProperty) and isinstance(on.this, exp.Table) else None
    c.temporary = bool(e.args.get("temporary"))
    c.skip(e)
    for target in e.args.get("tables") or ():
        name = _name(target)
        if obj in ("table", "index"):
            c.write(owner or name)
        c.add("drop", name, object=obj, cascade=bool(e.args.get("cascade")), concurrently=False)
    return f"DROP {obj.upper()}"


def _alter_table(e: exp.Alter, c: Collector) -> str | None:
    if not isinstance(e.this, exp.Table):  # ALTER TABLE (x) ...: sqlglot reads a subquery where a name belongs
        return None
    table = _name(e.this)
    c.write(table)
    options = {type(o): str(o.this).lower() for o in e.args.get("options") or ()}
    online = {"algorithm": options.get(exp.AlgorithmProperty), "lock": options.get(exp.LockProperty)}
    for action in e.args.get("actions") or ():
        c.skip(action if isinstance(action, exp.Drop | exp.AlterRename) else None)
        match action:
            case exp.ColumnDef():
                _add_column(table, action, c)
            case exp.Drop() if str(action.args.get("kind")).upper() == "COLUMN":
                for col in action.args.get("tables") or ():
                    c.add("drop-column", table, col.name, cascade=bool(action.args.get("cascade")))
            case exp.Drop() if str(action.args.get("kind")).upper() == "INDEX":
                for index in action.args.get("tables") or ():
                    c.add("drop", index.name, object="index", cascade=False, concurrently=False)
            case exp.Drop() | exp.DropPrimaryKey():
                names = [t.name for t in action.args.get("tables") or ()] or ["PRIMARY"]
                for name in names:
                    c.add("drop-constraint", table, name=name, cascade=False)
            case exp.ModifyColumn():
                old = action.args.get("rename_from")
                column = old.name if old is not None else action.this.name
                c.add("alter-column-type", table, column, type=c.type_name(action.this.args.get("kind")))
                if old is not None and old.name != action.this.name:
                    c.add("rename-column", table, old.name, new_name=action.this.name)
            case exp.AlterColumn():
                if action.args.get("dtype") is not None:
                    c.add("alter-column-type", table, action.name, type=c.type_name(action.args["dtype"]))
                elif action.args.get("allow_null") is False:
                    c.add("set-not-null", table, action.name)
                elif action.args.get("default") is not None or action.args.get("drop"):
                    c.add("set-default", table, action.name)  # SET / DROP DEFAULT: the catalog only
            case exp.RenameColumn():
                c.add("rename-column", table, action.this.name, new_name=action.args["to"].name)
            case exp.AlterRename():
                c.add("rename-table", table, new_name=_name(action.this))
            case exp.RenameIndex():
                c.add("rename-index", table, name=action.this.name, new_name=action.args["to"].name)
            case exp.AddConstraint():
                _add_constraints(table, action, online, c)
            case exp.ForceProperty():
                c.add("vacuum", table, full=True)  # ALTER TABLE t FORCE rebuilds the table
            case _:
                return None
    if exp.EngineProperty in options or exp.Order in options:
        c.add("vacuum", table, full=True)  # ENGINE=... and ORDER BY rebuild the table
    c.add("alter-table", table, **online)
    return "ALTER TABLE"


def _add_column(table: str, col: exp.ColumnDef, c: Collector) -> None:
    kinds = [k.kind for k in col.constraints]
    default = next((k.this for k in kinds if isinstance(k, exp.DefaultColumnConstraint)), None)
    generated = any(isinstance(k, _GENERATED) for k in kinds)
    not_null = any(
        (isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null"))
        or isinstance(k, exp.PrimaryKeyColumnConstraint)
        for k in kinds
    )
    volatile = default is not None and any(
        not isinstance(f, _STABLE_FUNCTIONS) for f in default.find_all(exp.Func)
    )  # fmt: skip
    # default_expression: MySQL's parenthesized `DEFAULT (expr)`, which no ALGORITHM=INSTANT can add;
    # default_constant: SQLite adds a column to a table with rows only with a constant default.
    c.add("add-column", table, col.name, type=c.type_name(col.args.get("kind")), not_null=not_null,
          has_default=default is not None or generated, default_volatile=volatile or generated,
          default_sql=default.sql(dialect=c.dialect.value) if default is not None else None,
          default_expression=isinstance(default, exp.Paren), default_constant=_constant(default))  # fmt: skip


def _constant(default: exp.Expression | None) -> bool:
    """A literal, signed or in parentheses: what SQLite's ADD COLUMN accepts as a default (no default too)."""
    while isinstance(default, exp.Paren | exp.Neg):
        default = default.this
    return default is None or isinstance(default, exp.Literal | exp.Null | exp.Boolean)


def _add_constraints(table: str, action: exp.AddConstraint, online: dict[str, Any], c: Collector) -> None:
    for item in action.expressions:
        inner = item.expressions if isinstance(item, exp.Constraint) else [item]
        for con in inner:
            if isinstance(con, exp.IndexColumnConstraint):  # MySQL ADD INDEX / KEY
                index_kind = str(con.args.get("kind") or "").lower() or None  # fulltext, spatial
                c.add("create-index", table, concurrently=False, unique=False, index_kind=index_kind, **online)
                continue
            kind = next((name for cls, name in _CONSTRAINTS if isinstance(con, cls)), "other")
            c.add("add-constraint", table, constraint=kind, not_valid=False, using_index=False,
                  name=item.name if isinstance(item, exp.Constraint) else None)  # fmt: skip


def _set_item(item: exp.Expression, c: Collector) -> None:
    scope = str(item.args.get("kind") or "").lower() or None
    assignment = item.this
    if isinstance(assignment, exp.EQ):
        target = assignment.this
        name = f"@{target.name}" if isinstance(target, exp.Parameter) else target.name
        if isinstance(target, exp.SessionParameter):
            scope = str(target.args.get("kind") or "session").lower()
        value = assignment.expression.sql(dialect=c.dialect.value)
    else:  # SET NAMES x, SET TRANSACTION ISOLATION LEVEL ...
        name = scope or ""
        value = " ".join(_text(v, c.dialect) for v in [assignment, *item.expressions] if v is not None)
        scope = None
    c.add("set", name=name.lower(), value=value, local=False, scope=scope)


def _pragma(e: exp.Pragma, c: Collector) -> bool:
    """False when the PRAGMA names no setting (`PRAGMA = 1`): not understood."""
    target, value = (e.this.this, e.this.expression) if isinstance(e.this, exp.EQ) else (e.this, None)
    if isinstance(target, exp.Dot):  # PRAGMA schema.name
        target = target.expression
    if target is None:
        return False
    name = target.name if isinstance(target, exp.Var | exp.Column | exp.Identifier) else target.sql()
    c.add("pragma", name=name.lower(), value=_text(value, c.dialect).lower() if value is not None else None)
    return True


def _grant_node(e: exp.Grant | exp.Revoke, c: Collector) -> None:
    privileges = [p.this.name.lower().removesuffix(" privileges") for p in e.args.get("privileges") or ()]
    principals = e.args.get("principals") or ()
    to_public = any(p.this.name.upper() == "PUBLIC" and not p.this.args.get("quoted") for p in principals)
    securable = e.args.get("securable")
    c.skip(securable)
    c.add(type(e).__name__.lower(), to_public=to_public, privileges=privileges,
          objects=[securable.sql(dialect=c.dialect.value)] if securable is not None else [])  # fmt: skip


# Statements sqlglot reads as a bare column or alias: (keyword, dialects, statement kind).
_KEYWORD_STATEMENTS = {
    "SAVEPOINT": "SAVEPOINT", "RELEASE": "RELEASE", "END": "COMMIT", "REINDEX": "REINDEX",
}  # fmt: skip


def _keyword_statement(e: exp.Column | exp.Alias, c: Collector) -> str | None:
    column = e.this if isinstance(e, exp.Alias) else e
    if not isinstance(column, exp.Column) or column.table or column.this.args.get("quoted"):
        return None
    keyword = column.name.upper()
    argument = e.alias if isinstance(e, exp.Alias) else None
    kind = _KEYWORD_STATEMENTS.get(keyword)
    if kind is None or (keyword in ("END", "REINDEX") and c.dialect is not Dialect.SQLITE):
        return None
    if kind == "REINDEX":
        target = None if argument else "REINDEX_OBJECT_DATABASE"  # a name may be a table, index or collation
        c.add("reindex", argument, concurrently=False, target=target)
    elif kind == "COMMIT":
        c.add("transaction-control", command="COMMIT")
    else:
        if argument is None:
            return None
        c.add("transaction-control", command=f"{kind} {argument}")
    return kind
