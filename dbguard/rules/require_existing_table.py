"""A statement names a table that does not exist in the database the script is checked against.

Problem: a typo in a table name (`UPDATE stokc ...`) fails at run time, after the statements before it
ran; in a script meant for another database, every name is a guess. With table statistics (`check --db`
or `check --stats`), each relation a statement acts on, writes or locks must exist in the snapshot
(tables, views, sequences, indexes; unqualified names through the script's search_path, public by
default), or be created earlier in the script. DROP ... IF EXISTS and ALTER TABLE IF EXISTS are
exempt; bodies of functions (which run later, when called) are not checked. Offline it never fires.

Bad:
    UPDATE stokc SET qty = 0 WHERE sku = 'A-1';

Good:
    UPDATE stock SET qty = 0 WHERE sku = 'A-1';

    CREATE TABLE stock_archive (LIKE stock);
    INSERT INTO stock_archive SELECT * FROM stock WHERE qty = 0;
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import Script, Statement
from dbguard.sql.session import bare_table

_IF_EXISTS = re.compile(r"\bIF\s+EXISTS\b", re.IGNORECASE)
_CREATES_RELATION = ("CREATE TABLE", "CREATE VIEW", "CREATE MATERIALIZED VIEW", "CREATE SEQUENCE",
                     "CREATE FOREIGN TABLE", "CREATE OR REPLACE VIEW", "SELECT INTO")  # fmt: skip


@rule("require-existing-table", Severity.ERROR, "statement names a table the database does not have")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    catalog = context.catalog
    if catalog is None or not statement.recognized or _IF_EXISTS.search(statement.text):
        return
    in_body = statement.parent is not None and not (statement.origin or "").upper().startswith("DO")
    if in_body or statement.kind in ("CREATE FUNCTION", "CREATE PROCEDURE"):
        return  # a function's body runs when it is called, maybe after the script made its tables
    created = context.per_script("require-existing-table", _created)
    position = context.position(statement)
    search_path = context.search_path(statement)
    for name in _named(statement):
        if _created_before(created.get(_bare(name)), position) or catalog.exists(name, search_path):
            continue
        if "." not in name and name.lower().startswith(("pg_", "sqlite_")):
            continue  # the system catalogs are not in the snapshot
        close = difflib.get_close_matches(name, [t.name for t in catalog.tables.values()], n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        where = "its schema" if "." in name else "schema " + ", ".join(catalog.schemas_searched(search_path))
        yield Violation(
            message=f"{name} does not exist in {catalog.source} (looked in {where})",
            help=f"{hint}Check the name, and that the statistics are of the database the script is for "
            "(`dbguard stats --db URL`); a table the script creates must be created before it is used.",
        )


def _named(statement: Statement) -> list[str]:
    """The relations the statement acts on, writes or locks, in order (not the ones it creates)."""
    creates = {a.table for a in statement.actions_of("create-table", "create-relation")}
    names = [a.table for a in statement.actions if a.table and a.kind not in ("create-table", "create-relation",
                                                                              "drop", "alter-type")]  # fmt: skip
    names += [a.table for a in statement.actions_of("drop") if a.table and a.get("object") in ("table", "view")]
    names += [*statement.facts.tables_written, *(name for name, _ in statement.facts.locks)]
    if not statement.facts.locks:  # SQLite and MySQL: no lock facts; reads are named in tables_read
        names += [n for n in statement.facts.tables_read if not statement.kind.startswith("CREATE")]
    if statement.kind.startswith("DROP") and not any(a.get("object") in ("table", "view")
                                                   for a in statement.actions_of("drop")):  # fmt: skip
        names = [n for n in names if n not in {a.table for a in statement.actions_of("drop")}]
    return [n for n in dict.fromkeys(names) if n not in creates]


def _created(script: Script) -> dict[str, int]:
    """Relation name (lower case) -> the position of the first top-level statement that creates it (or
    renames a table to it)."""
    created: dict[str, int] = {}
    for statement in script.statements:
        position = script.top_of[statement.index]
        names = [a.table for a in statement.actions_of("create-table", "create-relation") if a.table]
        names += [str(a.get("new_name")) for a in statement.actions_of("rename-table") if a.get("new_name")]
        if statement.kind.startswith(_CREATES_RELATION):
            locked = {name for name, _ in statement.facts.locks}
            names += [n for n in statement.facts.tables_read if n not in locked]
        for name in names:
            created.setdefault(_bare(name), position)
    return created


def _bare(name: str) -> str:
    """The name without the default schema (PostgreSQL public, SQLite main), in lower case."""
    return bare_table(name).removeprefix("main.").lower()


def _created_before(position: int | None, now: int) -> bool:
    return position is not None and position < now
