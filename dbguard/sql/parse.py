"""Turn a script's text into classified statements, failing closed on anything not understood.

PostgreSQL: pglast (libpg_query, the server's grammar) splits and classifies. When the whole script
does not parse, the lexer splits it instead and each piece is parsed alone, so one broken statement
becomes a finding while the rest are still checked. SQLite and MySQL: the lexer splits, sqlglot parses.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right

import pglast

from dbguard.dialects import Dialect
from dbguard.sql import classify_pg, forked, plpgsql
from dbguard.sql.body_spans import BodyLocator
from dbguard.sql.lexer import Lexed, Piece, lex
from dbguard.sql.model import META_COMMAND, UNRECOGNIZED, Action, Facts, LineIndex, Script, Span, Statement

logging.getLogger("sqlglot").setLevel(logging.CRITICAL)  # its Command fallback warnings are our findings
# sqlglot (0.1 s to import) loads with the first SQLite or MySQL statement: a PostgreSQL check never needs it.

# Both parsers and the pglast deparser recurse once per level of nesting. A statement nested deeper than
# the interpreter's stack allows is not analysed at all: it fails closed as unrecognized.
TOO_DEEP = "nested too deeply for dbguard to analyse; split it into simpler statements"
# libpg_query stops reading at a NUL, and cannot take a lone surrogate (which strict UTF-8 input never holds,
# but the library may be handed one): a statement with either is not SQL any server would run.
_NOT_SQL = re.compile("[\x00\ud800-\udfff]")
# DO blocks and function bodies inside bodies: real scripts nest two or three; each level is parsed again.
MAX_BODY_DEPTH = 8
# A PostgreSQL script of at least this many statements is parsed in two halves, one on each core: below it,
# the fork and the pickled half cost more than they save (see bench/README.md, check_speed).
PARALLEL_MIN_STATEMENTS = 1000


def parse_script(text: str, dialect: Dialect, path: str = "<stdin>") -> Script:
    lexed = lex(text, dialect)
    pieces = _pieces(text, dialect, lexed)
    pieces += [(m, (Facts(kind=META_COMMAND), "psql meta-command")) for m in lexed.meta_commands]
    if lexed.unterminated is not None:
        u = lexed.unterminated
        pieces.append((u, (Facts(kind=UNRECOGNIZED), "unterminated string, quoted name or comment")))
    pieces.sort(key=lambda item: item[0].start)

    statements: list[Statement] = []
    lines = LineIndex(text)
    comment_ends = {c.start: c.end for c in lexed.comments}
    for piece, (facts, error) in pieces:
        start = _skip_leading_comments(text, piece, comment_ends)
        top = Statement(
            index=len(statements) + 1,
            text=text[start : piece.end].rstrip(),
            span=Span.of(lines, start, _trimmed_end(text, start, piece.end)),
            dialect=dialect,
            facts=facts,
            parse_error=error,
        )
        statements.append(top)
        for origin, sql, language in facts.nested_sql:
            statements.extend(_nested(sql, origin, language, top, len(statements) + 1, 1, (text, lines)))
    comments = tuple((c.start, c.end) for c in lexed.comments)
    return Script(path=path, text=text, dialect=dialect, statements=tuple(statements), comments=comments)


def _postgres_statements(text: str, lexed: Lexed) -> list[tuple[Piece, tuple[Facts, str | None]]]:
    masked = _mask(text, lexed.meta_commands)
    boundary = _halfway(masked) if len(lexed.statements) >= PARALLEL_MIN_STATEMENTS and forked.available() else None
    if boundary is None:
        return _parsed(masked, 0, text, lexed)
    with forked.in_child(lambda: _parsed(masked[boundary:], boundary, text, lexed)) as second_half:
        first = _parsed(masked[:boundary], 0, text, lexed)
        second = second_half()
    return first + (second if second is not None else _parsed(masked[boundary:], boundary, text, lexed))


def _halfway(masked: str) -> int | None:
    """Where the statement in the middle of the script starts, as the server's grammar splits it (None when
    the script does not parse: then it is parsed whole, statement by statement)."""
    try:
        slices = pglast.parser.split(masked, with_parser=True, only_slices=True)
    except pglast.parser.ParseError:
        return None
    return slices[len(slices) // 2].start if len(slices) > 1 else None


def _parsed(part: str, offset: int, text: str, lexed: Lexed) -> list[tuple[Piece, tuple[Facts, str | None]]]:
    """The statements of `part`, which starts at `offset` in the script `text` (a whole number of statements)."""
    try:
        raw = pglast.parse_sql(part)
    except pglast.parser.ParseError:
        pieces = [p for p in lexed.statements if offset <= p.start < offset + len(part)]
        return [(p, _pglast_facts(text[p.start : p.end])) for p in pieces]
    out: list[tuple[Piece, tuple[Facts, str | None]]] = []
    for stmt in raw:  # pglast gives character offsets (it converts libpg_query's byte offsets)
        start = stmt.stmt_location or 0
        end = start + stmt.stmt_len if stmt.stmt_len else len(part.rstrip())
        while start < end and part[start].isspace():
            start += 1
        if start < end and stmt.stmt is not None:
            out.append((Piece(offset + start, offset + end), _classified(stmt.stmt)))
    return out


def _pieces(text: str, dialect: Dialect, lexed: Lexed) -> list[tuple[Piece, tuple[Facts, str | None]]]:
    if dialect is Dialect.POSTGRES and not _NOT_SQL.search(text):
        return _postgres_statements(text, lexed)
    if lexed.executable_comments:
        starts = [h.start for h in lexed.executable_comments]
        return [(p, _with_executable_comments(text, p, lexed.executable_comments, starts)) for p in lexed.statements]
    return [(p, _piece_facts(text[p.start : p.end], dialect)) for p in lexed.statements]


def _piece_facts(sql: str, dialect: Dialect) -> tuple[Facts, str | None]:
    if _NOT_SQL.search(sql):
        return Facts(kind=UNRECOGNIZED), "it holds a NUL character or text that is not Unicode, which no server accepts"
    return _pglast_facts(sql) if dialect is Dialect.POSTGRES else _sqlglot_facts(sql, dialect)


def _pglast_facts(sql: str) -> tuple[Facts, str | None]:
    try:
        raw = pglast.parse_sql(sql)
    except pglast.parser.ParseError as error:
        return Facts(kind=UNRECOGNIZED), str(error)
    if len(raw) != 1 or raw[0].stmt is None:
        return Facts(kind=UNRECOGNIZED), "expected one statement"
    return _classified(raw[0].stmt)


def _classified(node: pglast.ast.Node) -> tuple[Facts, str | None]:
    try:
        facts = classify_pg.classify(node)
    except RecursionError:
        return Facts(kind=UNRECOGNIZED), TOO_DEEP
    if facts.kind == UNRECOGNIZED:
        kind = type(node).__name__.removesuffix("Stmt")
        return facts, f"dbguard has not modelled what a {kind} statement does, so it cannot vouch for it"
    return facts, None


def _sqlglot_facts(sql: str, dialect: Dialect) -> tuple[Facts, str | None]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from dbguard.sql import classify_sqlglot, classify_sqlglot_commands

    try:
        unparsable = classify_sqlglot_commands.unparsable(sql, dialect)  # syntax sqlglot cannot parse
        if unparsable is not None:
            return unparsable, None
        parsed = [e for e in sqlglot.parse(sql, read=dialect.sqlglot_name) if e is not None]
        if not parsed:
            return Facts(kind=UNRECOGNIZED), "expected one statement"
        # sqlglot splits a SQLite trigger body at its semicolons; the classifier reads the block as a whole.
        expression = parsed[0] if len(parsed) == 1 else exp.Block(expressions=parsed)
        facts = classify_sqlglot.classify(expression, dialect)
    except SqlglotError as error:
        return Facts(kind=UNRECOGNIZED), str(error).splitlines()[0]
    except RecursionError:
        return Facts(kind=UNRECOGNIZED), TOO_DEEP
    if facts is None:
        return Facts(kind=UNRECOGNIZED), f"sqlglot does not understand this {dialect.value} statement"
    return facts, None


_EXECUTABLE = re.compile(r"/\*(?P<mariadb>M?)!(?P<version>\d{5,6})?(?P<sql>.*)\*/", re.DOTALL)


def _with_executable_comments(text: str, piece: Piece, hidden: list[Piece],
                              starts: list[int]) -> tuple[Facts, str | None]:  # fmt: skip
    """A MySQL statement with executable comments in it (`/*!NNNNN sql */`, MariaDB's `/*M!NNNNNN sql */`):
    classified as the server runs it, with each comment's SQL in its place (mysqldump even splits one
    statement over several: `/*!50003 CREATE*/ /*!50017 DEFINER=...*/ /*!50003 TRIGGER ...*/`). When that
    is not understood, the reason names the SQL the comments hold and the server version they need."""
    first, last = bisect_right(starts, piece.start - 1), bisect_right(starts, piece.end)
    inside = [h for h in hidden[first:last] if h.end <= piece.end]  # `starts`: where each of `hidden` starts
    sql, at, shown = [], piece.start, []
    for comment in inside:
        match = _EXECUTABLE.fullmatch(text, comment.start, comment.end)
        inner = match["sql"] if match else ""
        sql += [text[at : comment.start], " ", inner, " "]
        at = comment.end
        server = "MariaDB" if match and match["mariadb"] else "MySQL"
        version = match["version"] if match else None
        since = f", servers from {int(version[:-4])}.{int(version[-4:-2])}.{int(version[-2:])} on" if version else ""
        shown.append(f'"{_shortened(inner)}" ({server}{since})')
    sql.append(text[at : piece.end])
    facts, error = _piece_facts("".join(sql), Dialect.MYSQL)
    if facts.kind != UNRECOGNIZED:
        return facts, None
    return facts, f"the server runs {', '.join(shown)} hidden in executable comments, and {error}"


def _shortened(sql: str) -> str:
    words = " ".join(sql.split())
    return words if len(words) <= 80 else words[:77] + "..."


def _nested(sql: str, origin: str, language: str, parent: Statement, first_index: int, depth: int,
            script: tuple[str, LineIndex]) -> list[Statement]:  # fmt: skip
    """Statements inside a DO block or a function body, each at its own place in the script (`script`: its
    text and line index), or at its parent's where that cannot be told."""
    if depth > MAX_BODY_DEPTH:
        reason = f"bodies nested more than {MAX_BODY_DEPTH} deep; dbguard does not analyse them"
        return [_child(parent, sql, origin, first_index, Facts(kind=UNRECOGNIZED), reason)]
    if language == "plpgsql":
        try:
            bodies, dynamic = plpgsql.statements_in(sql)
        except pglast.parser.ParseError as parse_error:
            return [_child(parent, sql, origin, first_index, Facts(kind=UNRECOGNIZED), str(parse_error))]
        except RecursionError:
            return [_child(parent, sql, origin, first_index, Facts(kind=UNRECOGNIZED), TOO_DEEP)]
        where = BodyLocator(parent, None, *script)
    else:
        bodies, dynamic = [(sql, 0)], []
        where = BodyLocator(parent, sql, *script)
    children: list[Statement] = []
    for body, line in bodies:
        for piece, (facts, error) in _pieces(body, parent.dialect, lex(body, parent.dialect)):
            text = body[piece.start : piece.end]
            span = where.span(text, line, None if line else piece.start)
            child = _child(parent, text, origin, first_index + len(children), facts, error, span)
            children.append(child)
            for inner_origin, inner_sql, inner_language in facts.nested_sql:
                index = first_index + len(children)
                children.extend(_nested(inner_sql, inner_origin, inner_language, child, index, depth + 1, script))
    for expression, line in dynamic:
        facts = Facts(kind="EXECUTE", actions=(Action("dynamic-sql", details={"expression": expression}),))
        span = where.span(expression, line)
        children.append(_child(parent, f"EXECUTE {expression}", origin, first_index + len(children), facts, None,
                               span))  # fmt: skip
    return children


def _child(parent: Statement, text: str, origin: str, index: int, facts: Facts, error: str | None,
           span: Span | None = None) -> Statement:  # fmt: skip
    return Statement(index, text, span or parent.span, parent.dialect, facts, error, origin=origin,
                     parent=parent.index)  # fmt: skip


def _mask(text: str, ranges: list[Piece]) -> str:
    """Blank out psql meta-commands for the server grammar, keeping every offset in place."""
    if not ranges:
        return text
    chars = list(text)
    for piece in ranges:
        chars[piece.start : piece.end] = " " * (piece.end - piece.start)
    return "".join(chars)


def _trimmed_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _skip_leading_comments(text: str, piece: Piece, comment_ends: dict[int, int]) -> int:
    start = piece.start
    while start < piece.end:
        if text[start].isspace():
            start += 1
        elif start in comment_ends:
            start = comment_ends[start]
        else:
            break
    return start
