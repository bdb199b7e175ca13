"""A policy: rule severities, when to fail, protected tables, thresholds and invariants (TOML)."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dbguard.errors import UsageError
from dbguard.registry import Severity, all_rules

BUILTIN_POLICIES = ("default", "strict")
INVARIANT_KINDS = ("sql", "not_null", "unique", "accepted_values", "row_count")
_TOP_KEYS = {
    "name",
    "description",
    "fail_on",
    "protected_tables",
    "allow_non_transactional",
    "rules",
    "thresholds",
    "invariants",
    "timeouts",
    "run",
}
_INVARIANT_KEYS = {
    "name",
    "kind",
    "sql",
    "table",
    "column",
    "columns",
    "values",
    "min_delta",
    "max_delta",
    "max_delete_percent",
}


@dataclass(frozen=True)
class Thresholds:
    max_rows_affected: int = 10_000  # rows one statement may change in a dry-run
    max_delete_percent: float = 10.0  # share of a table one statement may remove


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: str = "2s"
    statement_timeout: str = "5min"


@dataclass(frozen=True)
class RunSettings:
    """How `dbguard run` executes: retries, drift, and what it may skip."""

    lock_retries: int = 3  # a step whose lock is not granted within lock_timeout is retried this often
    max_row_drift_percent: float = 10.0  # a statement's rows may differ from the dry-run's by this share...
    max_row_drift_rows: int = 100  # ...or by this many rows, whichever is larger
    allow_skip_dry_run: bool = False  # `run --skip-dry-run` is refused unless true
    allow_quick_verify: bool = False  # `run --quick-verify` (sha256 and pg_restore --list only) unless true


@dataclass(frozen=True)
class Invariant:
    name: str
    kind: str
    sql: str | None = None
    table: str | None = None
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    min_delta: int | None = None
    max_delta: int | None = None
    max_delete_percent: float | None = None


@dataclass(frozen=True)
class Policy:
    name: str = "default"
    source: str = "built-in default"
    fail_on: Severity = Severity.ERROR
    severities: dict[str, Severity] = field(default_factory=dict)
    protected_tables: frozenset[str] = frozenset()
    allow_non_transactional: bool = False
    thresholds: Thresholds = Thresholds()
    timeouts: Timeouts = Timeouts()
    invariants: tuple[Invariant, ...] = ()
    run: RunSettings = RunSettings()

    def severity_of(self, rule_id: str) -> Severity:
        return self.severities.get(rule_id) or all_rules()[rule_id].severity

    def is_protected(self, table: str) -> bool:
        """`stock` protects `stock` in any schema; `public.stock` protects only that one."""
        bare = table.split(".")[-1]
        return table.lower() in self.protected_tables or bare.lower() in self.protected_tables


def load_policy(path: str | Path | None) -> Policy:
    """Load a policy file, or a built-in one by name ("default", "strict"), or the default for None."""
    if path is None or str(path) in BUILTIN_POLICIES:
        name = str(path or "default")
        text = resources.files("dbguard.policies").joinpath(f"{name}.toml").read_text("utf-8")
        return parse_policy(text, f"built-in {name}")
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise UsageError(f"policy file {file} does not exist (built-in policies: default, strict)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read policy file {file}: {error}") from None
    return parse_policy(text, str(file))


def parse_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"policy {source} is not valid TOML: {error}") from None
    try:
        return _build(data, source)
    except (TypeError, ValueError) as error:
        raise UsageError(f"policy {source}: {error}") from None


def _build(data: dict[str, Any], source: str) -> Policy:
    _no_unknown(data, _TOP_KEYS, "top level")
    severities = {}
    for rule_id, value in _table(data, "rules").items():
        if rule_id not in all_rules():
            close = difflib.get_close_matches(rule_id, all_rules(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (see `dbguard rules list`)"
            raise ValueError(f"unknown rule {rule_id!r} in [rules]{hint}")
        severities[rule_id] = _severity(value, f"rules.{rule_id}")
    thresholds = _table(data, "thresholds")
    _no_unknown(thresholds, set(Thresholds.__dataclass_fields__), "[thresholds]")
    timeouts = _table(data, "timeouts")
    _no_unknown(timeouts, set(Timeouts.__dataclass_fields__), "[timeouts]")
    for key, value in thresholds.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"thresholds.{key} must be a non-negative number, not {value!r}")
    protected = data.get("protected_tables", [])
    if not isinstance(protected, list) or not all(isinstance(t, str) for t in protected):
        raise ValueError("protected_tables must be a list of table names")
    allow = data.get("allow_non_transactional", False)
    if not isinstance(allow, bool):
        raise ValueError("allow_non_transactional must be true or false")
    run = _table(data, "run")
    _no_unknown(run, set(RunSettings.__dataclass_fields__), "[run]")
    for key, value in run.items():
        wanted = type(getattr(RunSettings(), key))
        if wanted is bool and not isinstance(value, bool):
            raise ValueError(f"run.{key} must be true or false, not {value!r}")
        if wanted is not bool and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                                   or (wanted is int and not isinstance(value, int))):  # fmt: skip
            raise ValueError(f"run.{key} must be a non-negative {'whole ' if wanted is int else ''}number, "
                             f"not {value!r}")  # fmt: skip
    invariants = data.get("invariants", [])
    if not isinstance(invariants, list):
        raise ValueError("invariants must be an array of tables: [[invariants]]")
    return Policy(
        name=str(data.get("name", Path(source).stem)),
        source=source,
        fail_on=_severity(data.get("fail_on", "error"), "fail_on"),
        severities=severities,
        protected_tables=frozenset(t.lower() for t in protected),
        allow_non_transactional=allow,
        thresholds=Thresholds(**thresholds),
        timeouts=Timeouts(**{k: str(v) for k, v in timeouts.items()}),
        invariants=tuple(_invariant(i, n) for n, i in enumerate(invariants, 1)),
        run=RunSettings(**run),
    )


def _invariant(raw: Any, number: int) -> Invariant:
    where = f"invariant #{number}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    _no_unknown(raw, _INVARIANT_KEYS, where)
    kind = raw.get("kind", "sql")
    if kind not in INVARIANT_KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(INVARIANT_KINDS)}, not {kind!r}")
    name = raw.get("name") or f"{kind} #{number}"
    needs = {
        "sql": ["sql"],
        "not_null": ["table", "column"],
        "unique": ["table", "columns"],
        "accepted_values": ["table", "column", "values"],
        "row_count": ["table"],
    }[kind]
    missing = [k for k in needs if k not in raw]
    if missing:
        raise ValueError(f"{where} ({name}): kind {kind!r} needs {', '.join(missing)}")
    columns = raw.get("columns", [raw["column"]] if "column" in raw else [])
    return Invariant(
        name=name,
        kind=kind,
        sql=raw.get("sql"),
        table=raw.get("table"),
        columns=tuple(columns),
        values=tuple(raw.get("values", ())),
        min_delta=raw.get("min_delta"),
        max_delta=raw.get("max_delta"),
        max_delete_percent=raw.get("max_delete_percent"),
    )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"[{key}] must be a table")
    return value


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        raise ValueError(f"{where} must be one of error, warning, info, off; not {value!r}") from None


def _no_unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} at {where} (allowed: {', '.join(sorted(allowed))})")
