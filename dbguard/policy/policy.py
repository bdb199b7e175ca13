"""A policy: rule severities, when to fail, protected tables, thresholds and invariants (TOML).

Every value is checked when the policy is loaded, for its type and its unit: a wrong one is a usage error
(exit 2) naming the file and the key, never a surprise halfway through a dry-run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dbguard.errors import UsageError
from dbguard.registry import Severity, all_rules
from dbguard.sql.model import Statement
from dbguard.sql.online import online_step

BUILTIN_POLICIES = ("default", "strict")
MAX_POLICY_BYTES = 1024 * 1024  # a policy is a page of TOML; this bounds the read of a FIFO or a device
_TOP_KEYS = {
    "name",
    "description",
    "fail_on",
    "protected_tables",
    "allow_non_transactional",
    "allow_online_steps",
    "rules",
    "thresholds",
    "invariants",
    "timeouts",
    "run",
}
# PostgreSQL's units for a time setting ("Parameter Names and Values" in the docs), in milliseconds.
DURATION_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(" + "|".join(DURATION_UNITS) + ")?")
_MAX_DURATION_MS = 2**31 - 1  # the largest timeout the server accepts


@dataclass(frozen=True)
class Thresholds:
    max_rows_affected: int = 10_000  # rows one statement may change in a dry-run
    max_delete_percent: float = 10.0  # share of a table one statement may remove
    large_table_rows: int = 100_000  # check with table sizes: a locking/scanning finding here is an error
    small_table_rows: int = 10_000  # ... and on a table below this, at most a warning


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
    require_approvals: int = 0  # distinct reviewers, not the author, whose `dbguard approve` matches the script


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
    allow_non_transactional: bool = False  # any statement that cannot run in a transaction, as a step of its own
    allow_online_steps: bool = True  # only the online ones (CREATE INDEX CONCURRENTLY, VACUUM, ...): dbguard.sql.online
    thresholds: Thresholds = Thresholds()
    timeouts: Timeouts = Timeouts()
    invariants: tuple[Invariant, ...] = ()
    run: RunSettings = RunSettings()

    def severity_of(self, rule_id: str) -> Severity:
        return self.severities.get(rule_id) or all_rules()[rule_id].severity

    def allows_outside_transaction(self, statement: Statement) -> bool:
        """Whether `run` may execute `statement`, which cannot run in a transaction, as a step of its own."""
        return self.allow_non_transactional or (self.allow_online_steps and online_step(statement) is not None)

    def is_protected(self, table: str) -> bool:
        """`stock` protects `stock` in any schema; `public.stock` protects only that one."""
        bare = table.split(".")[-1]
        return table.lower() in self.protected_tables or bare.lower() in self.protected_tables


def load_policy(path: str | Path | None) -> Policy:
    """Load a policy file, or a built-in one by name ("default", "strict"), or the default for None.

    Raises UsageError (exit 2), naming the file and the key, for anything wrong in it."""
    if path is None or str(path) in BUILTIN_POLICIES:
        name = str(path or "default")
        text = resources.files("dbguard.policies").joinpath(f"{name}.toml").read_text("utf-8")
        return parse_policy(text, f"built-in {name}")
    file = Path(path)
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_POLICY_BYTES + 1)
        if len(data) > MAX_POLICY_BYTES:
            raise UsageError(f"policy file {file} is larger than {MAX_POLICY_BYTES // 1024} KiB")
        text = data.decode("utf-8")
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
    except RecursionError:
        raise UsageError(f"policy {source} nests arrays or tables too deeply") from None
    try:
        return _build(data, source)
    except ValueError as error:
        raise UsageError(f"policy {source}: {error}") from None


# Each reader takes a value and the key it came from, and returns the value checked (or raises ValueError).
Reader = Callable[[Any, str], Any]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, not {_shown(value)}")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {_shown(value)}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a non-negative number, not {_shown(value)}")
    return value


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative whole number, not {_shown(value)}")
    return value


def _delta(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number of rows (negative for fewer), not {_shown(value)}")
    return value


def _percent(value: Any, key: str) -> float:
    percent = _number(value, key)
    if percent > 100:
        raise ValueError(f"{key} is a percentage: from 0 to 100, not {_shown(value)}")
    return percent


def _duration(value: Any, key: str) -> str:
    """A PostgreSQL time setting: "2s", "500ms", "5min", "1.5h" (units us, ms, s, min, h, d), or a whole
    number of milliseconds. 0 turns the timeout off."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_DURATION_MS:
        return str(value)
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or float(match[1]) * DURATION_UNITS[match[2] or "ms"] > _MAX_DURATION_MS:
        raise ValueError(
            f'{key} must be a duration such as "2s", "500ms" or "5min" (units: {", ".join(DURATION_UNITS)}), '
            f"or whole milliseconds up to {_MAX_DURATION_MS}; not {_shown(value)}"
        )
    return value.strip()


def _names(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f'{key} must be a list of names, such as ["a", "b"], not {_shown(value)}')
    return tuple(value)


def _columns(value: Any, key: str) -> tuple[str, ...]:
    columns = _names(value, key)
    if not columns:
        raise ValueError(f"{key} must name at least one column")
    return columns


def _values(value: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValueError(f"{key} must be a list of strings, numbers or booleans, not {_shown(value)}")
    return tuple(value)


def _severity(value: Any, key: str) -> Severity:
    if isinstance(value, str) and value.lower() in {s.value for s in Severity}:
        return Severity(value.lower())
    raise ValueError(f"{key} must be one of error, warning, info, off; not {_shown(value)}")


# A section's fields are read by their type; these ones carry a unit their type does not say.
_BY_TYPE: dict[str, Reader] = {"int": _whole, "float": _number, "bool": _flag, "str": _text}
_UNITS: dict[str, Reader] = {
    "thresholds.max_delete_percent": _percent,
    "timeouts.lock_timeout": _duration,
    "timeouts.statement_timeout": _duration,
}


def _section(data: dict[str, Any], key: str, settings: type[Any]) -> Any:
    """One of [thresholds], [timeouts], [run]: the dataclass `settings` with the values checked."""
    raw = _table(data, key)
    types = {f.name: str(f.type) for f in dataclasses.fields(settings)}
    _no_unknown(raw, set(types), f"[{key}]")
    checked = {}
    for name, value in raw.items():
        reader = _UNITS.get(f"{key}.{name}") or _BY_TYPE[types[name]]
        checked[name] = reader(value, f"{key}.{name}")
    return settings(**checked)


def _thresholds(data: dict[str, Any]) -> Thresholds:
    thresholds: Thresholds = _section(data, "thresholds", Thresholds)
    if thresholds.small_table_rows > thresholds.large_table_rows:
        raise ValueError(f"thresholds.small_table_rows ({thresholds.small_table_rows}) must not be above "
                         f"thresholds.large_table_rows ({thresholds.large_table_rows})")  # fmt: skip
    return thresholds


def _build(data: dict[str, Any], source: str) -> Policy:
    _no_unknown(data, _TOP_KEYS, "top level")
    severities = {}
    for rule_id, value in _table(data, "rules").items():
        if rule_id not in all_rules():
            close = difflib.get_close_matches(rule_id, all_rules(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (see `dbguard rules list`)"
            raise ValueError(f"unknown rule {rule_id!r} in [rules]{hint}")
        severities[rule_id] = _severity(value, f"rules.{rule_id}")
    invariants = data.get("invariants", [])
    if not isinstance(invariants, list):
        raise ValueError("invariants must be an array of tables: [[invariants]]")
    if "description" in data:
        _text(data["description"], "description")
    return Policy(
        name=_text(data["name"], "name") if "name" in data else Path(source).stem,
        source=source,
        fail_on=_severity(data.get("fail_on", "error"), "fail_on"),
        severities=severities,
        protected_tables=frozenset(t.lower() for t in _names(data.get("protected_tables", []), "protected_tables")),
        allow_non_transactional=_flag(data.get("allow_non_transactional", False), "allow_non_transactional"),
        allow_online_steps=_flag(data.get("allow_online_steps", True), "allow_online_steps"),
        thresholds=_thresholds(data),
        timeouts=_section(data, "timeouts", Timeouts),
        invariants=tuple(_invariant(i, n) for n, i in enumerate(invariants, 1)),
        run=_section(data, "run", RunSettings),
    )


# What each kind of invariant needs, and may have. Kinds on a table name the column (or columns) they check.
_INVARIANT_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sql": (("sql",), ()),
    "not_null": (("table",), ("column", "columns")),
    "unique": (("table",), ("column", "columns")),
    "accepted_values": (("table", "values"), ("column", "columns")),
    "row_count": (("table",), ("min_delta", "max_delta", "max_delete_percent")),
}
INVARIANT_KINDS = tuple(_INVARIANT_KINDS)
_INVARIANT_FIELDS: dict[str, Reader] = {
    "sql": _text, "table": _text, "column": _text, "columns": _columns, "values": _values,
    "min_delta": _delta, "max_delta": _delta, "max_delete_percent": _percent,
}  # fmt: skip


def _invariant(raw: Any, number: int) -> Invariant:
    where = f"invariant #{number}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    _no_unknown(raw, {"name", "kind", *_INVARIANT_FIELDS}, where)
    kind = raw.get("kind", "sql")
    if not isinstance(kind, str) or kind not in _INVARIANT_KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(INVARIANT_KINDS)}, not {_shown(kind)}")
    name = _text(raw["name"], f"{where}: name") if "name" in raw else f"{kind} #{number}"
    where = f"{where} ({name})"
    needs, may = _INVARIANT_KINDS[kind]
    missing = [key for key in needs if key not in raw]
    if missing:
        raise ValueError(f"{where}: kind {kind!r} needs {', '.join(missing)}")
    extra = sorted(set(raw) - {"name", "kind", *needs, *may})
    if extra:
        raise ValueError(f"{where}: kind {kind!r} takes no {extra[0]!r}")
    given = [key for key in may if key in raw]
    if kind == "row_count" and not given:
        raise ValueError(f"{where}: kind 'row_count' needs at least one of {', '.join(may)}")
    if kind != "row_count" and kind != "sql" and len(given) != 1:
        raise ValueError(f"{where}: kind {kind!r} needs either column or columns")
    checked = {}
    for key, value in raw.items():
        if key in _INVARIANT_FIELDS:
            checked[key] = _INVARIANT_FIELDS[key](value, f"{where}: {key}")
    if "column" in checked:
        checked["columns"] = (checked.pop("column"),)
    return Invariant(name=name, kind=kind, **checked)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"[{key}] must be a table")
    return value


def _no_unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} at {where} (allowed: {', '.join(sorted(allowed))})")
