"""SQLite and MySQL statements that sqlglot keeps as raw text (exp.Command): recognized from their first
keywords by one pattern each, or left unrecognized (None) so that the check fails closed."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from dbguard.dialects import Dialect
from dbguard.sql.classify_sqlglot import classify
from dbguard.sql.model import Action, Facts
from dbguard.sql.sqlglot_collector import FLAGS, ONLINE_OPTION, Collector, online_options


def command(e: exp.Command | exp.Block, dialect: Dialect) -> Facts | None:
    """Statements sqlglot keeps as raw text: recognized from their first keywords, or None."""
    first = e.expressions[0] if isinstance(e, exp.Block) and e.expressions else e
    if not isinstance(first, exp.Command):
        return None
    rest = first.args.get("expression")
    text = f"{first.this} {rest.this if isinstance(rest, exp.Literal) else rest or ''}".strip()
    if isinstance(e, exp.Block):  # a trigger body split at its semicolons
        body = [p for p in e.expressions[1:] if not isinstance(p, exp.EndStatement)]
        parts = [p.sql(dialect=dialect.value) for p in body]
        text = ";\n".join([text, *parts]) + ";\nEND"
    c = Collector(dialect)
    for pattern, only, handler in _COMMANDS:
        match = re.fullmatch(pattern, text, FLAGS)
        if isinstance(e, exp.Block) and handler is not _trigger:
            continue  # only a trigger has a body that sqlglot splits into a block
        if match and (only is None or only is dialect):
            result = handler(match, c)
            return result if not isinstance(result, str) else c.facts(result)
    return None


_QUOTED = r"""(?:'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")"""
_LOAD = re.compile(
    r"LOAD\s+(?:DATA|XML)\s+(?:(?:LOW_PRIORITY|CONCURRENT)\s+)?(?P<local>LOCAL\s+)?INFILE\s+(?P<file>" + _QUOTED
    + r")\s+(?:(?:REPLACE|IGNORE)\s+)?INTO\s+TABLE\s+(?P<table>[`\w.$]+).*", FLAGS)  # fmt: skip
_EXPORT_OPTION = r"(?:CHARACTER\s+SET\s+\w+|(?:FIELDS|COLUMNS|LINES)(?:\s+(?:TERMINATED|(?:OPTIONALLY\s+)?ENCLOSED" \
    r"|ESCAPED|STARTING)\s+BY\s+" + _QUOTED + r")+)"
_OUTFILE = re.compile(r"\bINTO\s+(?P<how>OUTFILE|DUMPFILE)\s+(?P<file>" + _QUOTED + r")(?:\s+" + _EXPORT_OPTION + ")*",
                      FLAGS)  # fmt: skip


_FLUSH_READ_LOCK = re.compile(
    r"FLUSH\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLES?\s*(?P<rest>.*?)\s*WITH\s+READ\s+LOCK", FLAGS)  # fmt: skip


def unparsable(sql: str, dialect: Dialect) -> Facts | None:
    """MySQL statements sqlglot fails on (a parse error, not a Command): the server-side file statements
    `LOAD DATA [LOCAL] INFILE` and `SELECT ... INTO OUTFILE | DUMPFILE`, `FLUSH TABLES ... WITH READ LOCK`
    and `DEALLOCATE PREPARE`. The file statements are `copy` actions, like PostgreSQL's COPY: the server
    reads or writes a file of its own host (LOCAL: the client sends the file, like COPY FROM STDIN). None
    for anything else, or when the rest of the statement is not understood."""
    if dialect is not Dialect.MYSQL:
        return None
    text = sql.strip().rstrip(";").strip()
    c = Collector(dialect)
    flush = _FLUSH_READ_LOCK.fullmatch(text)
    if flush:
        return c.facts(_flush_read_lock(flush, c))
    if re.fullmatch(r"DEALLOCATE\s+PREPARE\s+[`\w$]+", text, FLAGS):
        return c.facts("DEALLOCATE PREPARE")
    if re.match(r"DROP\s+INDEX\b", text, FLAGS) and ONLINE_OPTION.search(text):
        return _drop_index_online(text, c)
    load = _LOAD.fullmatch(text)
    if load:
        table = _unquote(load["table"])
        c.write(table)
        c.add("copy", table, program=False, file=not load["local"], is_from=True, path=load["file"][1:-1],
              statement="LOAD DATA LOCAL INFILE" if load["local"] else "LOAD DATA INFILE")  # fmt: skip
        return c.facts("LOAD DATA")
    out = _OUTFILE.search(text)
    if out is None or not re.match(r"(?:SELECT|WITH|\()\b", text, FLAGS):
        return None
    query = _reparsed(text[: out.start()] + text[out.end() :], c)
    if query is None or query.kind != "SELECT":
        return None
    details = {"program": False, "file": True, "is_from": False, "path": out["file"][1:-1],
               "statement": f"SELECT ... INTO {out['how'].upper()}"}  # fmt: skip
    action = Action("copy", None, details=details)
    return dataclasses.replace(query, kind="SELECT INTO FILE", actions=(*query.actions, action))


def _drop_index_online(text: str, c: Collector) -> Facts | None:
    """MySQL DROP INDEX ... ON t ALGORITHM=... LOCK=...: MySQL maps it to ALTER TABLE t DROP INDEX, so the
    options become the statement's alter-table action, judged like ALTER TABLE's."""
    options = online_options(text)
    facts = _reparsed(ONLINE_OPTION.sub("", text), c)
    if facts is None or facts.kind != "DROP INDEX" or len(facts.tables_written) != 1:
        return None
    online = Action("alter-table", facts.tables_written[0], details={"algorithm": options.get("algorithm"),
                                                                     "lock": options.get("lock")})  # fmt: skip
    return dataclasses.replace(facts, actions=(*facts.actions, online))


def _unquote(name: str) -> str:
    return ".".join(part.strip('`"[]') for part in name.split("."))


def _vacuum(m: re.Match[str], c: Collector) -> str:
    c.add("vacuum", None, full=False)
    return "VACUUM"


def _lock_tables(m: re.Match[str], c: Collector) -> str | None:
    for item in m["rest"].split(","):
        parts = re.fullmatch(r"\s*(\S+)(?:\s+(?:AS\s+)?(?!(?:READ|WRITE|LOW_PRIORITY)\b)\w+)?\s+"
                             r"(READ(?:\s+LOCAL)?|(?:LOW_PRIORITY\s+)?WRITE)\s*", item, FLAGS)  # fmt: skip
        if parts is None:
            return None
        table, mode = _unquote(parts[1]), "WRITE" if "WRITE" in parts[2].upper() else "READ"
        if mode == "WRITE":
            c.write(table)
        elif table not in c.read:
            c.read.append(table)
        c.add("lock-table", table, mode=mode)
    return "LOCK TABLES"


def _flush_read_lock(m: re.Match[str], c: Collector) -> str:
    """FLUSH TABLES [t, ...] WITH READ LOCK: every named table (all of them, server-wide, when none is named)
    is locked against writes until UNLOCK TABLES."""
    for name in [n.strip() for n in m["rest"].split(",") if n.strip()] or ["*"]:
        c.add("lock-table", _unquote(name), mode="READ")
    return "FLUSH TABLES"


def _optimize(m: re.Match[str], c: Collector) -> str:
    for name in m["rest"].split(","):
        c.write(_unquote(name.strip()))
        c.add("vacuum", _unquote(name.strip()), full=True)
    return "OPTIMIZE TABLE"


def _rename_tables(m: re.Match[str], c: Collector) -> str | None:
    for pair in m["rest"].split(","):
        names = re.fullmatch(r"\s*(\S+)\s+TO\s+(\S+)\s*", pair, FLAGS)
        if names is None:
            return None
        c.write(_unquote(names[1]))
        c.add("rename-table", _unquote(names[1]), new_name=_unquote(names[2]))
    return "RENAME TABLE"


def _grant_text(m: re.Match[str], c: Collector) -> str:
    command = m[1].upper()
    privileges = re.sub(r"\([^)]*\)", "", m["privileges"])  # column lists: SELECT (a, b)
    grantees = re.split(r"\bWITH\b|\bREQUIRE\b", m["grantees"], flags=re.IGNORECASE)[0]
    c.add(command.lower(), to_public=any(g.strip().upper() == "PUBLIC" for g in grantees.split(",")),
          privileges=[p.strip().lower().removesuffix(" privileges") for p in privileges.split(",")]
          if m["objects"] else ["role"], objects=[m["objects"].strip()] if m["objects"] else [])  # fmt: skip
    return command


def _trigger(m: re.Match[str], c: Collector) -> str:
    table = _unquote(m["table"])
    c.read.append(table)
    body = re.search(r"\bBEGIN\b(.*)\bEND\s*;?\s*$", m["rest"], FLAGS)
    if body:
        c.nested.append((f"trigger {m['name']}", body[1].strip(), "sql"))
    else:  # MySQL: one statement after FOR EACH ROW [FOLLOWS|PRECEDES other]
        single = re.search(r"FOR\s+EACH\s+ROW\s+(?:(?:FOLLOWS|PRECEDES)\s+\S+\s+)?(.*)", m["rest"], FLAGS)
        if single:
            c.nested.append((f"trigger {m['name']}", single[1].strip(), "sql"))
    return "CREATE TRIGGER"


def _reparsed(sql: str, c: Collector) -> Facts | None:
    try:
        return classify(sqlglot.parse_one(sql, read=c.dialect.value), c.dialect)
    except sqlglot.errors.ParseError:
        return None


def _replace(m: re.Match[str], c: Collector) -> Facts | None:
    facts = _reparsed(f"INSERT {m['rest']}", c)  # REPLACE has INSERT's syntax
    if not facts or facts.kind != "INSERT":
        return None
    actions = tuple(dataclasses.replace(a, details={**a.details, "replace": True}) for a in facts.actions)
    return dataclasses.replace(facts, kind="REPLACE", actions=actions)


def _create_index_online(m: re.Match[str], c: Collector) -> Facts | None:
    """MySQL CREATE INDEX ... ALGORITHM=... LOCK=...: sqlglot parses it once the options are taken out."""
    options = online_options(m[0])
    if not options:  # nothing to take out: reparsing the same text would come back here for ever
        return None
    facts = _reparsed(ONLINE_OPTION.sub("", m[0]), c)
    if facts is None or facts.kind != "CREATE INDEX":
        return None
    actions = tuple(dataclasses.replace(a, details={**a.details, **options}) for a in facts.actions)
    return dataclasses.replace(facts, actions=actions)


def _convert_charset(m: re.Match[str], c: Collector) -> str:
    """ALTER TABLE ... CONVERT TO CHARACTER SET: every text column is converted, so the table is rebuilt
    (MySQL: "Converting a character set": rebuilds the table, no concurrent DML)."""
    table = _unquote(m["table"])
    options = online_options(m[0])
    c.write(table)
    c.add("vacuum", table, full=True)
    c.add("alter-table", table, algorithm=options.get("algorithm"), lock=options.get("lock"))
    return "ALTER TABLE"


def _prepare(m: re.Match[str], c: Collector) -> str:
    """PREPARE name FROM 'sql' is checked as the SQL it holds; FROM @variable is SQL built at run time."""
    source = m["source"].strip()
    if source[:1] in ("'", '"') and source[-1:] == source[:1]:
        quote = source[0]
        sql = source[1:-1].replace(quote * 2, quote).replace("\\" + quote, quote)
        c.nested.append((f"prepared statement {m['name']}", sql, "sql"))
    else:
        c.add("dynamic-sql", expression=source, statement="PREPARE ... FROM")
    return "PREPARE"


_Handler = Callable[[re.Match[str], Collector], "str | Facts | None"]
_COMMANDS: list[tuple[str, Dialect | None, _Handler]] = [
    (r"VACUUM\b.*", Dialect.SQLITE, _vacuum),
    (r"LOCK\s+TABLES?\s+(?P<rest>.+)", Dialect.MYSQL, _lock_tables),
    (r"UNLOCK\s+TABLES?\s*", Dialect.MYSQL, lambda m, c: "UNLOCK TABLES"),
    (r"OPTIMIZE\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLES?\s+(?P<rest>.+)", Dialect.MYSQL, _optimize),
    (r"RENAME\s+TABLES?\s+(?P<rest>.+)", Dialect.MYSQL, _rename_tables),
    (r"(GRANT|REVOKE)\s+(?P<privileges>.+?)(?:\s+ON\s+(?P<objects>.+?))?\s+(?:TO|FROM)\s+(?P<grantees>.+)",
     Dialect.MYSQL, _grant_text),
    (r"REPLACE\s+(?P<rest>.+)", None, _replace),
    (r"PREPARE\s+(?P<name>[`\w$]+)\s+FROM\s+(?P<source>.+)", Dialect.MYSQL, _prepare),
    (r"EXECUTE\s+[`\w$]+(?:\s+USING\s+@[\w$]+(?:\s*,\s*@[\w$]+)*)?\s*", Dialect.MYSQL, lambda m, c: "EXECUTE"),
    (r"DROP\s+PREPARE\s+[`\w$]+\s*", Dialect.MYSQL, lambda m, c: "DEALLOCATE PREPARE"),
    (r"ALTER\s+(?:ONLINE\s+)?TABLE\s+(?P<table>[`\w.$]+)\s+CONVERT\s+TO\s+(?:CHARACTER\s+SET|CHARSET)\s+[\w`'\"]+"
     r"(?:\s+COLLATE\s+[\w`'\"]+)?(?:\s*,\s*(?:ALGORITHM|LOCK)\s*=?\s*\w+)*\s*", Dialect.MYSQL, _convert_charset),
    (r"CREATE\s+(?:UNIQUE\s+)?INDEX\b.*", Dialect.MYSQL, _create_index_online),
    (r"CREATE\s+(?:DEFINER\s*=\s*\S+\s+)?(?:TEMP(?:ORARY)?\s+)?TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>\S+)"
     r"\s.*?\bON\s+(?P<table>\S+)(?P<rest>.*)", None, _trigger),
    (r"EXPLAIN\s+(?:QUERY\s+PLAN\s+)?(?P<rest>.+)", Dialect.SQLITE, lambda m, c: "EXPLAIN"),
]  # fmt: skip
