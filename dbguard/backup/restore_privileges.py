"""Owners and privileges for `restore --into` (see restore.py), applied after the data, each on its own.

The data is restored as for verification (`pg_restore --no-owner --no-privileges`); then the dump's own
statements are applied: every object's `ALTER ... OWNER TO`, then every GRANT, REVOKE and
`ALTER DEFAULT PRIVILEGES`, in the dump's order, each in a savepoint of one transaction. A statement the
destination cannot take (a role that does not exist there; a right the restoring user lacks) is skipped
with the server's reason and listed, never dropped silently; the rest are committed.

Why not pg_restore's own owners: an object's owner is part of the object's entry in the dump, so an
object whose owner is missing on the destination could only be left out whole, or make the restore fail.
The statements come from `pg_restore --schema-only -f` (the SQL pg_restore would run): the owner is the
last statement of an object's entry, and an ACL entry holds nothing but privilege statements.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from dbguard.errors import BackupFailure
from dbguard.sandbox import children
from dbguard.sandbox.pgtools import tool_error
from dbguard.targets.postgres import error_text
from dbguard.targets.url import DatabaseUrl

# pg_restore's entry header: "-- Name: stock; Type: TABLE; Schema: public; Owner: postgres"
_HEADER = re.compile(r"^-- (?:Data for )?Name: .*; Type: (?P<type>.+?); Schema: .*; Owner: .*$")
_FOOTER = "-- PostgreSQL database dump complete"
_OWNER = re.compile(r'^ALTER (?P<object>.+) OWNER TO (?P<role>[a-z_][a-z0-9_$]*|"(?:[^"]|"")+");$')
_PRIVILEGE_TYPES = {"ACL", "DEFAULT ACL", "ACL LANGUAGE"}
# what the destination may refuse, and it is skipped: the rest is a fault, and nothing is applied
_SKIPPABLE = (psycopg.errors.UndefinedObject, psycopg.errors.InsufficientPrivilege)


class Skipped(NamedTuple):
    statement: str  # as the dump has it, e.g. GRANT SELECT ON TABLE public.stock TO reporting
    reason: str  # the server's, e.g. role "reporting" does not exist on the destination


@dataclass
class OwnersAndPrivileges:
    applied: int = 0  # statements applied
    skipped: list[Skipped] = field(default_factory=list)


class _Statement(NamedTuple):
    sql: str
    owned: str | None  # for an ALTER ... OWNER TO, the object, e.g. "SCHEMA sales"


def restore_owners_and_privileges(pg_restore: Path, dump: Path, listing: Path, url: DatabaseUrl,
                                  backup_id: str) -> OwnersAndPrivileges:  # fmt: skip
    """Apply the owners and privileges of the entries in `listing` to `url`, where the objects were just
    restored without them (`listing` lies in a scratch directory, where pg_restore's script goes too).
    BackupFailure, with nothing applied, when a statement fails for another reason than a missing role or
    right."""
    from dbguard.targets import postgres

    raw = _schema_script(pg_restore, dump, listing, f"the data of backup {backup_id} is restored into {url}, but")
    done = OwnersAndPrivileges()
    current = "the session settings"
    with closing(postgres.connect(url)) as into:  # closed on an error: the server rolls back what was applied
        conn = into.conn
        try:
            preamble, statements = _statements(_decoded(raw, conn))
            restoring_user = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
            conn.execute(preamble)  # pg_restore's session settings, such as an empty search_path
            for statement in statements:
                current = _one_line(statement.sql)
                try:
                    with conn.transaction():
                        conn.execute(statement.sql)
                    done.applied += 1
                except _SKIPPABLE as error:
                    done.skipped.append(_skipped(statement, error, restoring_user))
            conn.commit()
        except psycopg.Error as error:
            raise BackupFailure(f"the data of backup {backup_id} is restored into {url}, but its owners and "
                                f"privileges are not: {current} failed: {error_text(error)}; drop and recreate "
                                f"{url.database}, or apply them by hand") from None  # fmt: skip
    return done


def _schema_script(pg_restore: Path, dump: Path, listing: Path, restored: str) -> bytes:
    """The SQL pg_restore would run for the schema of the entries in `listing`, in the archive's encoding;
    written next to `listing`, in the restore's scratch directory."""
    script = listing.parent / "schema.sql"
    result = children.run([pg_restore, "--schema-only", f"--use-list={listing}", f"--file={script}", dump])
    if result.returncode != 0:
        killed = children.killed_by(result.returncode)
        why = f"was killed by {killed}" if killed else f"failed: {tool_error(result.stderr, 'pg_restore')}"
        raise BackupFailure(f"{restored} pg_restore, reading its owners and privileges, {why}")
    return script.read_bytes()


def _skipped(statement: _Statement, error: psycopg.Error, restoring_user: str) -> Skipped:
    reason = error_text(error)
    if isinstance(error, psycopg.errors.UndefinedObject):
        reason += " on the destination"
    if statement.owned:
        reason += f"; {statement.owned} is owned by {restoring_user} instead"
    return Skipped(_one_line(statement.sql), reason)


def _decoded(raw: bytes, conn: psycopg.Connection[Any]) -> str:
    """pg_restore's script `raw`, in the archive's encoding, as text; `conn` is switched to that encoding,
    so that the statements go back to the server byte for byte."""
    encoding = re.search(rb"^SET client_encoding = '([A-Za-z0-9_]+)';$", raw, re.MULTILINE)
    if encoding is None:
        raise BackupFailure("pg_restore's script names no client_encoding: cannot read the dump's owners")
    conn.execute(f"SET client_encoding = '{encoding[1].decode()}'")
    conn.commit()
    try:
        return raw.decode(conn.info.encoding)
    except UnicodeDecodeError as error:
        raise BackupFailure(f"the dump's schema is not valid {conn.info.encoding}: {error}") from None


def _statements(script: str) -> tuple[str, list[_Statement]]:
    """pg_restore's session settings, and the owner and privilege statements, in the `script`'s order."""
    lines = script.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line) and lines[i - 1] == "--"]
    end = next((i for i, line in enumerate(lines) if line == _FOOTER), len(lines))
    preamble = [line for line in lines[: headers[0] if headers else end]
                if line.startswith(("SET ", "SELECT pg_catalog.set_config("))]  # fmt: skip
    statements: list[_Statement] = []
    for start, stop in zip(headers, [*headers[1:], end], strict=True):
        body = _body(lines[start + 2 : stop - 1])  # between the header's closing "--" and the next one's opening
        kind = _HEADER.match(lines[start])["type"]  # type: ignore[index]
        if kind in _PRIVILEGE_TYPES:
            statements.extend(_privilege_statements(body))
        elif body and (owner := _OWNER.match(body[-1])):
            statements.append(_Statement(body[-1], owner["object"]))
    return "\n".join(preamble), statements


def _body(lines: list[str]) -> list[str]:
    """An entry's lines without the blank lines and the `SET default_tablespace` kind that pg_restore
    writes after it, before the next entry."""
    while lines and (not lines[-1].strip() or lines[-1].startswith("SET ")):
        lines = lines[:-1]
    return lines


def _privilege_statements(body: list[str]) -> list[_Statement]:
    """One per GRANT or REVOKE; a grant made by another role than the owner, which pg_dump wraps in
    SET SESSION AUTHORIZATION ... RESET SESSION AUTHORIZATION, is one with its wrapping."""
    statements: list[_Statement] = []
    pending: list[str] = []
    for line in body:
        if not pending and not line.strip():
            continue
        pending.append(line)
        text = "\n".join(pending)
        whole = text.endswith(";") and text.count('"') % 2 == 0 and text.count("'") % 2 == 0
        as_grantor = text.startswith("SET SESSION AUTHORIZATION") and not text.endswith("RESET SESSION AUTHORIZATION;")
        if whole and not as_grantor:
            statements.append(_Statement(text, None))
            pending = []
    if pending:
        raise BackupFailure(f"cannot read the dump's privilege statement {_one_line(' '.join(pending))!r}")
    return statements


def _one_line(sql: str) -> str:
    return " ".join(sql.split()).removesuffix(";")
