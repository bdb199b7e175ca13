"""Project configuration: `dbguard.toml`, or `[tool.dbguard]` in `pyproject.toml`.

Values are taken from, in order: the command line, `DBGUARD_*` environment variables, this file, and
the built-in default. The file is looked for in the current directory and its parents.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbguard.errors import UsageError
from dbguard.policy.policy import BUILTIN_POLICIES

KEYS = ("policy", "dialect", "format", "fail_on", "backup_dir", "journal_path", "manifest_key")


@dataclass(frozen=True)
class Config:
    source: str | None = None
    policy: str | None = None
    dialect: str | None = None
    format: str | None = None
    fail_on: str | None = None
    backup_dir: str | None = None
    journal_path: str | None = None
    manifest_key: str | None = None


def discover(start: Path | None = None) -> Config:
    directory = (start or Path.cwd()).resolve()
    for folder in (directory, *directory.parents):
        own = folder / "dbguard.toml"
        if own.is_file():
            return _load(own, _read(own))
        project = folder / "pyproject.toml"
        if project.is_file():
            section = _read(project).get("tool", {}).get("dbguard")
            if section is not None:
                return _load(project, section)
    return Config()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"config {path} cannot be read: {error}") from None


def _load(path: Path, data: dict[str, Any]) -> Config:
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(f"config {path}: unknown key {unknown[0]!r} (allowed: {', '.join(KEYS)})")
    values = {key: str(data[key]) for key in KEYS if key in data}
    for key in ("policy", "backup_dir", "journal_path", "manifest_key"):
        if key in values and not (key == "policy" and values[key] in BUILTIN_POLICIES):
            values[key] = str((path.parent / values[key]).resolve())  # relative to the config file
    return Config(source=str(path), **values)
