"""The SQL dialects dbguard understands, and how each maps to sqlglot."""

from __future__ import annotations

from enum import StrEnum

from dbguard.errors import UsageError


class Dialect(StrEnum):
    POSTGRES = "postgres"
    SQLITE = "sqlite"
    MYSQL = "mysql"

    @property
    def sqlglot_name(self) -> str:
        return self.value

    @classmethod
    def parse(cls, name: str) -> Dialect:
        aliases = {"postgresql": cls.POSTGRES, "pg": cls.POSTGRES, "mariadb": cls.MYSQL}
        key = name.strip().lower()
        if key in aliases:
            return aliases[key]
        try:
            return cls(key)
        except ValueError:
            choices = ", ".join(d.value for d in cls)
            raise UsageError(f"unknown dialect {name!r}; choose one of: {choices}") from None
