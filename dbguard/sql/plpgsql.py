"""Pull the SQL statements out of PL/pgSQL bodies (DO blocks, functions), so they are checked too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pglast

# libpg_query's RawParseMode: 0 is a whole SQL statement; the others are bare expressions.
_RAW_PARSE_DEFAULT = 0
_RAW_PARSE_PLPGSQL_ASSIGN = 3  # ASSIGN1..3: `target := expression`
_TRANSACTION_CONTROL = {"PLpgSQL_stmt_commit": "COMMIT", "PLpgSQL_stmt_rollback": "ROLLBACK"}


def statements_in(do_block_sql: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Return (embedded SQL statements, dynamic EXECUTE expressions) of a `DO $$ ... $$` block or a
    `CREATE FUNCTION`, each with its line in the body (PL/pgSQL's numbering: 1 is the line the body starts
    on, after its opening quote; 0 where it gave none).

    Raises pglast's ParseError when the body is not valid PL/pgSQL.
    """
    tree = pglast.parse_plpgsql(do_block_sql)
    statements: list[tuple[str, int]] = []
    dynamic: list[tuple[str, int]] = []
    for key, node, line in _walk(tree):
        if key in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"):  # EXECUTE, FOR ... IN EXECUTE
            dynamic.append((node.get("query", {}).get("PLpgSQL_expr", {}).get("query", "?"), line))
        elif "dynquery" in node:  # OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE
            dynamic.append((node["dynquery"].get("PLpgSQL_expr", {}).get("query", "?"), line))
        elif key in _TRANSACTION_CONTROL:  # COMMIT / ROLLBACK inside a DO block or procedure
            statements.append((_TRANSACTION_CONTROL[key], line))
        elif key == "PLpgSQL_expr" and node.get("parseMode", 0) == _RAW_PARSE_DEFAULT:
            statements.append((node["query"], line))
        elif key == "PLpgSQL_expr" and "(" in node.get("query", ""):
            # An expression that calls something (x := setval(...), IF pg_terminate_backend(...)) is checked
            # as the SELECT it amounts to.
            statements.append((f"SELECT {_right_hand_side(node['query'], node.get('parseMode', 0))}", line))
    return statements, dynamic


def _walk(tree: Any) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(key, node, line) of every node: the line of the nearest PL/pgSQL statement around it (`lineno`)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        item, line = stack.pop()
        if isinstance(item, list):
            stack.extend((value, line) for value in reversed(item))
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict):
                    own = value.get("lineno", line)
                    yield key, value, own
                    stack.append((value, own))
                else:
                    stack.append((value, line))


def _right_hand_side(query: str, parse_mode: int) -> str:
    """`x := setval('s', 1)` -> `setval('s', 1)`; plain expressions are returned as they are."""
    if parse_mode >= _RAW_PARSE_PLPGSQL_ASSIGN:
        for operator in (":=", "="):
            if operator in query:
                return query.split(operator, 1)[1].strip()
    return query
