"""Classify a SQLite or MySQL statement from sqlglot's tree into the same `Action` records as PostgreSQL.

sqlglot hands back `exp.Command` (raw text) for statements it cannot parse, and a bare column or alias
for some keyword statements (SQLite `SAVEPOINT s`, `REINDEX`). Only the ones listed in `_COMMANDS` and
`_KEYWORD_STATEMENTS` are recognized; anything else gives None so the caller fails closed.

MySQL commits implicitly before and after DDL, GRANT, LOCK TABLES, OPTIMIZE... ("Statements That Cause
an Implicit Commit"), so those are not transactional. SQLite cannot VACUUM, ATTACH or DETACH inside a
transaction.
"""

from __future__ import annotations

from sqlglot import exp

from dbguard.dialects import Dialect
from dbguard.sql.classify_sqlglot_alter import IDENTITY, alter_table
from dbguard.sql.model import Facts
from dbguard.sql.sqlglot_collector import Collector, name_of, text_of


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


def _statement(e: exp.Expr, c: Collector) -> str | None:
    match e:
        case exp.Query() | exp.Insert() | exp.Update() | exp.Delete():
            return _query(e, c)
        case exp.Create():
            return _create(e, c)
        case exp.Drop():
            return _drop(e, c)
        case exp.Alter() if (e.args.get("kind") or "").upper() == "TABLE":
            return alter_table(e, c)
        case exp.TruncateTable():
            cascade = str(e.args.get("option") or "").upper() == "CASCADE"
            for table in e.expressions:
                c.write(name_of(table))
                c.add("truncate", name_of(table), cascade=cascade)
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
        case exp.Kill():  # MySQL KILL [CONNECTION | QUERY] id: another session's work, not this transaction's
            what = " ".join(part for part in ("KILL", text_of(e.args.get("kind"), c.dialect).upper(),
                                              text_of(e.this, c.dialect)) if part)  # fmt: skip
            c.add("dangerous-function", name="KILL", statement=what)
            return "KILL"
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
            c.write(name_of(target))
            replaces = str(node.args.get("alternative") or "").upper() == "REPLACE"  # INSERT OR REPLACE
            c.add("insert", name_of(target), replace=replaces)
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
    by_alias = {t.alias_or_name: name_of(t) for t in [main, *joined]}
    if isinstance(node, exp.Delete):
        listed = node.args.get("tables") or []
        c.names.update(id(t) for t in listed)
        targets = [name_of(t) if t.db else by_alias.get(t.name, name_of(t)) for t in listed]
    else:
        qualifiers = {a.this.table for a in node.expressions if isinstance(a.this, exp.Column)}
        targets = [real for alias, real in by_alias.items() if alias in qualifiers]
    return list(dict.fromkeys(targets)) or [name_of(main)]


def _create(e: exp.Create, c: Collector) -> str | None:
    kind = str(e.args.get("kind") or "").upper()
    properties = e.args.get("properties")
    c.temporary = properties is not None and properties.find(exp.TemporaryProperty) is not None
    if kind == "INDEX" and isinstance(e.this, exp.Index) and isinstance(e.this.args.get("table"), exp.Table):
        table = name_of(e.this.args["table"])
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
        c.add("create-table", name_of(created) if created else None, columns=columns,
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
            kinds = [k.args.get("kind") for k in col.constraints]  # a malformed ALTER may hold a ForeignKey here
            primary = col.name in table_pk or any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
            identity = any(isinstance(k, IDENTITY) for k in kinds)
            columns.append((col.name, c.type_name(col.args.get("kind")), primary, identity))
    return tuple(columns)


def _drop(e: exp.Drop, c: Collector) -> str:
    obj = str(e.args.get("kind") or "").lower()
    on = e.args.get("cluster")  # MySQL DROP INDEX i ON t
    owner = name_of(on.this) if isinstance(on, exp.OnProperty) and isinstance(on.this, exp.Table) else None
    c.temporary = bool(e.args.get("temporary"))
    c.skip(e)
    for target in e.args.get("tables") or ():
        name = name_of(target)
        if obj in ("table", "index"):
            c.write(owner or name)
        c.add("drop", name, object=obj, cascade=bool(e.args.get("cascade")), concurrently=False)
    return f"DROP {obj.upper()}"


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
        value = " ".join(text_of(v, c.dialect) for v in [assignment, *item.expressions] if v is not None)
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
    c.add("pragma", name=name.lower(), value=text_of(value, c.dialect).lower() if value is not None else None)
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
