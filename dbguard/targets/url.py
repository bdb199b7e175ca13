"""Database URLs: parsed with SQLAlchemy, never shown with their password, and turned into connection
parameters that dbguard alone decides.

Where a connection goes (host, port, database, user) comes from the URL's own parts, never from its query
string, the libpq environment (PGDATABASE, PGSERVICE, PGOPTIONS, ...) or a service file: a query that
tries to set them is refused (exit 2), and those variables are removed from dbguard's environment before
it connects or starts a program (`scrub_libpq_environment`). Values reach libpq through psycopg's
`make_conninfo`, which quotes them, so a tab or a newline in a password cannot start another parameter.
See "Parameter Key Words" and "Environment Variables" in the libpq chapter of the PostgreSQL docs.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dbguard.dialects import Dialect
from dbguard.errors import UsageError

# Greedy up to the LAST '@' of the URL: a password may itself hold an unescaped '@'. Over-masking is safe.
_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s]*:)([^\n]*)(@)")
# The libpq parameters a URL's query may carry (how to connect, never where, as whom or with which server
# settings), and the environment variables pg_dump and friends read them from.
_LIBPQ_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
              "sslcrl": "PGSSLCRL", "sslcompression": "PGSSLCOMPRESSION", "channel_binding": "PGCHANNELBINDING",
              "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
              "require_auth": "PGREQUIREAUTH", "connect_timeout": "PGCONNECT_TIMEOUT",
              "application_name": "PGAPPNAME", "passfile": "PGPASSFILE"}  # fmt: skip
# Accepted in the query only where the URL itself leaves them out: `?host=/var/run/postgresql` is how a
# SQLAlchemy URL names a Unix socket directory.
_LOCATION_KEYS = ("host", "port")
READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"  # libpq `options`: no transaction may write
_STEERING_KEYS = frozenset({"dbname", "user", "hostaddr", "service", "servicefile", "options", "target_session_attrs",
                            "load_balance_hosts", "replication"})  # fmt: skip
# libpq environment variables that could choose the server, database, user or session settings behind
# dbguard's back (PGHOSTADDR overrides the address of an explicit host; a service brings any of them).
STEERING_ENVIRONMENT = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE",
                        "PGSYSCONFDIR", "PGOPTIONS", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
                        "PGDATESTYLE", "PGTZ", "PGGEQO", "PGCLIENTENCODING")  # fmt: skip
_PASSWORD_KEYWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL. `sandbox_token` is set on a sandbox's URL: every connection made through it
    then proves, before anything runs, that it reached the database carrying that marker
    (dbguard.sandbox.marker)."""

    url: URL
    sandbox_token: str | None = None

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        if raw.startswith("postgres://"):  # libpq's and psql's short scheme, which SQLAlchemy does not take
            raw = "postgresql://" + raw.removeprefix("postgres://")
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
        if backend == "postgresql":
            _refuse_steering_query(url, raw)
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

    @property
    def user(self) -> str:
        """The role: the URL's, else the OS user's name (libpq's own default, made explicit so that PGUSER
        cannot choose it)."""
        return self.url.username or getpass.getuser()

    def connect_params(self) -> dict[str, str]:
        """The libpq parameters of a connection, for `psycopg.connect(**params)` (which quotes them with
        `make_conninfo`). Host, port, database and user are always dbguard's own. Holds the password:
        never print this."""
        params = {"host": self.host, "port": str(self.port), "dbname": self.database or "postgres", "user": self.user}
        if self.url.password is not None:
            params["password"] = str(self.url.password)
        params.update({key: str(value) for key, value in self.url.query.items() if key in _LIBPQ_ENV})
        return params

    def conninfo(self) -> str:
        """`connect_params` as one libpq connection string, quoted by psycopg. Holds the password."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **self.connect_params())

    def libpq_env(self, read_only: bool = False) -> dict[str, str]:
        """Environment for pg_dump/pg_restore/psql: the password goes in PGPASSWORD, never on argv. Merge it
        over `scrub_libpq_environment()`'s result so that no inherited variable can steer the program.
        `read_only` sets `default_transaction_read_only` for the program's sessions."""
        params = self.connect_params()
        env = {"PGHOST": params.pop("host"), "PGPORT": params.pop("port"), "PGDATABASE": params.pop("dbname"),
               "PGUSER": params.pop("user")}  # fmt: skip
        if "password" in params:
            env["PGPASSWORD"] = params.pop("password")
        env.update({_LIBPQ_ENV[key]: value for key, value in params.items()})
        if read_only:
            env["PGOPTIONS"] = READ_ONLY_OPTIONS
        return env

    def with_database(self, name: str) -> DatabaseUrl:
        return DatabaseUrl(self.url.set(database=name))

    def expecting_sandbox(self, token: str) -> DatabaseUrl:
        """This URL, whose connections must find the sandbox marker with `token` before anything runs."""
        return replace(self, sandbox_token=token)

    def same_database(self, other: DatabaseUrl) -> bool:
        """True when both point at one database (the sandbox must never be the target)."""
        if self.dialect is not other.dialect:
            return False
        if self.dialect is Dialect.SQLITE:
            return self.sqlite_path.resolve() == other.sqlite_path.resolve()
        local = {"localhost", "127.0.0.1", "::1"}
        same_host = self.host == other.host or (self.host in local and other.host in local)
        return same_host and self.port == other.port and self.database == other.database

    def without_password(self) -> str:
        """The URL with no password at all (not masked): a command that works as printed, with the password
        from PGPASSWORD or ~/.pgpass."""
        secret = [key for key in self.url.query if "password" in key.lower()]
        # URL.set(password=None) would keep the password: None means "unchanged" there
        bare = self.url.difference_update_query(secret).set(drivername=self.url.get_backend_name())
        return bare._replace(password=None).render_as_string(hide_password=False)

    def __str__(self) -> str:
        hidden = {k: "***" for k in self.url.query if "password" in k.lower()}  # e.g. ?sslpassword=
        return self.url.update_query_dict(hidden).render_as_string(hide_password=True)


def mask(text: str) -> str:
    """Hide any password in free text: URLs (user:secret@host) and libpq `password=...` pairs."""
    return _PASSWORD_KEYWORD.sub(r"\1***", _PASSWORD_IN_TEXT.sub(r"\1***\3", text))


def scrub_libpq_environment() -> dict[str, str]:
    """Remove the libpq variables that could steer a connection (`STEERING_ENVIRONMENT`) from this
    process's environment, where libpq reads them, and return the environment for a child program."""
    for name in STEERING_ENVIRONMENT:
        os.environ.pop(name, None)
    return dict(os.environ)


def _refuse_steering_query(url: URL, raw: str) -> None:
    """A query may only say how to connect (`_LIBPQ_ENV`); where to, as whom and with which settings come
    from the URL itself, or a `?dbname=` could send a sandbox's work to the target."""
    for key, value in url.query.items():
        if key in _LIBPQ_ENV:
            continue
        if key in _LOCATION_KEYS and getattr(url, key) is None and "," not in str(value):
            continue
        if key in _LOCATION_KEYS:
            why = "it is already in the URL" if getattr(url, key) is not None else "one server only"
        elif key in _STEERING_KEYS:
            why = "dbguard alone decides the database, server, role and session settings it connects with"
        else:
            why = f"dbguard passes on only {', '.join(sorted(_LIBPQ_ENV))}"
        raise UsageError(f"the URL's query may not set {key!r} ({why}): {mask(raw)}")
