"""ALTER TABLE on SQLite and MySQL, from sqlglot's tree: the changes it makes, and MySQL's ALGORITHM and
LOCK clauses ("Online DDL Operations" in the MySQL manual)."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from dbguard.sql.sqlglot_collector import Collector, name_of

# A default made only of these (and constants) is not volatile; any other function call counts as one.
_STABLE_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Cast,
)  # fmt: skip
_CONSTRAINTS: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.ForeignKey, "foreign"), (exp.CheckColumnConstraint, "check"), (exp.UniqueColumnConstraint, "unique"),
    (exp.PrimaryKey, "primary"), (exp.PrimaryKeyColumnConstraint, "primary"),
)  # fmt: skip
IDENTITY = (exp.AutoIncrementColumnConstraint, exp.GeneratedAsIdentityColumnConstraint)
_GENERATED = (exp.ComputedColumnConstraint, *IDENTITY)


def alter_table(e: exp.Alter, c: Collector) -> str | None:
    """The kind "ALTER TABLE" with one action per change, or None for a change not understood."""
    if not isinstance(e.this, exp.Table):  # ALTER TABLE (x) ...: sqlglot reads a subquery where a name belongs
        return None
    table = name_of(e.this)
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
                c.add("rename-table", table, new_name=name_of(action.this))
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
    kinds = [k.args.get("kind") for k in col.constraints]  # a malformed ALTER may hold a ForeignKey here
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
