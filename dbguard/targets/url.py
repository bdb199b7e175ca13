"""Database URLs: parsed with SQLAlchemy, and never shown with their password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dbguard.dialects import Dialect
from dbguard.errors import UsageError

# Greedy up to the LAST '@' of the URL: a password may itself hold an unescaped '@'. Over-masking is safe.
_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s]*:)([^\n]*)(@)")
# libpq parameters a URL's query may carry, and the environment variables pg_dump and friends read them from.
_LIBPQ_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
              "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS", "application_name": "PGAPPNAME",
              "target_session_attrs": "PGTARGETSESSIONATTRS", "passfile": "PGPASSFILE"}  # fmt: skip
_PASSWORD_KEYWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseUrl:
    url: URL

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        try:
            url = make_url(raw)
            url.port  # noqa: B018 - a port that is not a number fails here, not later
        except (ArgumentError, ValueError):
            raise UsageError(
                f"not a database URL: {mask(raw)!r} (try postgresql://user@host:5432/db or sqlite:///path/to.db)"
            ) from None
        if "@" in (
            url.host or ""
        ):  # user:p@ss@host: SQLAlchemy splits at the first '@', and the rest looks like a host
            raise UsageError(f"an '@' in a URL's password must be written %40: {mask(raw)}")
        backend = url.get_backend_name()
        if backend not in ("postgresql", "sqlite"):
            raise UsageError(f"unsupported database {backend!r} in {mask(raw)}: use postgresql:// or sqlite:///")
        if backend == "postgresql" and url.get_driver_name() not in ("psycopg", "psycopg2", ""):
            url = url.set(drivername="postgresql+psycopg")
        if "password" in url.query:  # ?password=... is a password too: keep it where it is masked
            url = url.set(password=str(url.query["password"])).difference_update_query(["password"])
        if backend == "sqlite" and not url.database:
            raise UsageError("a SQLite URL needs a file: sqlite:///path/to.db (in-memory databases have no data)")
        return cls(url)

    @property
    def dialect(self) -> Dialect:
        return Dialect.SQLITE if self.url.get_backend_name() == "sqlite" else Dialect.POSTGRES

    @property
    def database(self) -> str:
        return self.url.database or ""

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database)

    @property
    def host(self) -> str:
        """The server: a host name, or a Unix socket directory (`?host=/var/run/postgresql` counts too)."""
        return str(self.url.query.get("host") or self.url.host or "127.0.0.1")

    @property
    def port(self) -> int:
        return int(str(self.url.query.get("port") or self.url.port or 5432))

    def conninfo(self) -> str:
        """A libpq connection string (the password stays inside it: never print this)."""
        parts = {
            "host": self.url.host or "127.0.0.1",
            "port": str(self.url.port or 5432),
            "dbname": self.url.database or "postgres",
            "user": self.url.username,
            "password": self.url.password,
        }
        parts.update({k: str(v) for k, v in self.url.query.items()})
        return " ".join(f"{k}={_quote(v)}" for k, v in parts.items() if v)

    def libpq_env(self) -> dict[str, str]:
        """Environment for pg_dump/pg_restore/psql: the password goes in PGPASSWORD, never on argv."""
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.url.database or "postgres"}
        if self.url.username:
            env["PGUSER"] = self.url.username
        if self.url.password:
            env["PGPASSWORD"] = str(self.url.password)
        for key, value in self.url.query.items():
            if key in _LIBPQ_ENV:
                env[_LIBPQ_ENV[key]] = str(value)
        return env

    def with_database(self, name: str) -> DatabaseUrl:
        return DatabaseUrl(self.url.set(database=name))

    def same_database(self, other: DatabaseUrl) -> bool:
        """True when both point at one database (the sandbox must never be the target)."""
        if self.dialect is not other.dialect:
            return False
        if self.dialect is Dialect.SQLITE:
            return self.sqlite_path.resolve() == other.sqlite_path.resolve()
        local = {"localhost", "127.0.0.1", "::1"}
        same_host = self.host == other.host or (self.host in local and other.host in local)
        return same_host and self.port == other.port and self.database == other.database

    def __str__(self) -> str:
        hidden = {k: "***" for k in self.url.query if "password" in k.lower()}  # e.g. ?sslpassword=
        return self.url.update_query_dict(hidden).render_as_string(hide_password=True)


def mask(text: str) -> str:
    """Hide any password in free text: URLs (user:secret@host) and libpq `password=...` pairs."""
    return _PASSWORD_KEYWORD.sub(r"\1***", _PASSWORD_IN_TEXT.sub(r"\1***\3", text))


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'" if not value or any(c in value for c in " '\\") else escaped
