"""The rule registry: one `@rule(...)` decorator, one dict. Adding a rule means adding one module."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dbguard.dialects import Dialect
from dbguard.run.steps import split_steps
from dbguard.sql.constraints import AddedConstraint, ConstraintHistory, constraint_history, key
from dbguard.sql.session import SessionState, bare_table, first_creations, session_states

if TYPE_CHECKING:
    from dbguard.catalog.snapshot import Catalog, TableInfo
    from dbguard.policy.policy import Policy
    from dbguard.sql.model import Action, Script, Statement


T = TypeVar("T")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    OFF = "off"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1, "off": 0}[self.value]


@dataclass(frozen=True)
class Violation:
    """What a rule says about one statement: the problem, and the safer way."""

    message: str
    help: str
    at_most: Severity | None = None  # what check knows is only a possibility: the rule's severity, capped at this

    def severity(self, rule_severity: Severity) -> Severity:
        """The finding's severity: the rule's (from the policy), lowered to `at_most` if that is lower."""
        if self.at_most is not None and self.at_most.rank < rule_severity.rank:
            return self.at_most
        return rule_severity


@dataclass(frozen=True)
class RuleContext:
    script: Script
    policy: Policy
    # (table without `public.`, column) -> its current type as the server names it ("character varying(20)").
    # Empty offline; a check with a database connection can fill it, and rules then decide instead of guessing.
    column_types: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # The database's tables as a snapshot (`check --db` / `--stats`): sizes, columns, indexes. None offline.
    catalog: Catalog | None = None

    # Computed once per script, on first use: rules ask per statement, and a rescan each time is O(n²).
    @cached_property
    def _sessions(self) -> dict[int, SessionState]:
        return session_states(self.script)

    @cached_property
    def _creations(self) -> dict[str, int]:
        return first_creations(self.script)

    def created_earlier(self, table: str | None, statement: Statement) -> bool:
        """Whether an earlier statement of the script creates `table`: nobody else can be using it yet."""
        created_at = self._creations.get(bare_table(table)) if table else None
        return created_at is not None and created_at < (statement.parent or statement.index)

    def validated_constraints(self, statement: Statement, constraint: str) -> Iterator[Action]:
        """Constraints of this kind added WITHOUT NOT VALID to a table that existed before the script: adding
        them scans every existing row under the ALTER's lock."""
        for action in statement.actions_of("add-constraint"):
            validated = action.get("constraint") == constraint and not action.get("not_valid")
            if validated and not self.created_earlier(action.table, statement):
                yield action

    @cached_property
    def _memo(self) -> dict[str, Any]:
        return {}

    def per_script(self, name: str, compute: Callable[[Script], T]) -> T:
        """`compute(script)`, computed once per script under `name`: for a rule that needs the whole script."""
        if name not in self._memo:
            self._memo[name] = compute(self.script)
        return cast(T, self._memo[name])

    @cached_property
    def constraints(self) -> ConstraintHistory:
        """The constraints the script adds and validates, and the columns it sets NOT NULL, in order."""
        return constraint_history(self.script)

    @cached_property
    def _steps(self) -> dict[int, int]:
        return {s.index: step.number for step in split_steps(self.script) for s in step.script.statements}

    def step_of(self, statement: Statement | int) -> int:
        """The step (1-based; `-- dbguard: step` lines and statements that cannot run in a transaction cut
        the script) whose transaction runs `statement` (a Statement or a statement index)."""
        index = statement if isinstance(statement, int) else statement.index
        return self._steps[index]

    def position(self, statement: Statement) -> int:
        """The index of the top-level statement holding `statement`: the order statements run in."""
        return self.script.top_of[statement.index]

    def validated_in_same_step(self, statement: Statement, constraint: str) -> Iterator[tuple[Action, AddedConstraint]]:
        """VALIDATE CONSTRAINT of a constraint of this kind that the same step added NOT VALID, to a table that
        existed before the script: the ADD's lock (ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE on both
        tables for a foreign key) is held until the step commits, so through the whole validation scan."""
        for action in statement.actions_of("validate-constraint"):
            added = self.constraints.added.get((key(action.table), str(action.get("name") or "").lower()))
            if added is None or added.kind != constraint or not added.not_valid:
                continue
            same_step = self.step_of(added.statement) == self.step_of(statement)
            if same_step and added.statement < self.position(statement) and not self.created_earlier(
                    action.table, statement):  # fmt: skip
                yield action, added

    def column_type(self, table: str | None, column: str | None) -> str | None:
        """The current type of `table`.`column` if known (see `column_types`), else None."""
        return self.column_types.get((bare_table(table or "").lower(), column or ""))

    def table(self, name: str | None, statement: Statement) -> TableInfo | None:
        """The snapshot's table that `name` (as the statement spells it) denotes before `statement`, through
        the session's search_path; None offline, for an unknown name, or for a table the script created
        earlier (its rows are the script's own: none at its start)."""
        if self.catalog is None or not name or self.created_earlier(name, statement):
            return None
        return self.catalog.find(name, self.search_path(statement))

    def search_path(self, statement: Statement) -> list[str]:
        """The schemas an unqualified name is looked up in before `statement`: what the script SET, else
        the server's default (public)."""
        try:
            value = self.session(statement).settings["search_path"]
        except KeyError:
            return []
        schemas = [part.strip().strip("'\"") for part in value.split(",")]
        return [s for s in schemas if s and s != "$user"]

    def session(self, statement: Statement) -> SessionState:
        """Settings and transaction state before this statement."""
        return self._sessions[statement.index]


Check = Callable[["Statement", RuleContext], Iterable[Violation]]

ALL_DIALECTS = frozenset(Dialect)
POSTGRES_ONLY = frozenset({Dialect.POSTGRES})


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    doc: str
    dialects: frozenset[Dialect]
    check: Check | None  # None: the engine itself raises this rule's findings (waivers, dry-run thresholds)
    module: str = field(compare=False)
    stage: str = "check"  # "dry-run": only a run on real data can raise it

    def examples(self, section: str) -> list[str]:
        """The SQL under `Bad:` or `Good:` in the rule's docs, one example per blank-line-separated block."""
        match = re.search(rf"^{section}:\n((?:[ \t]+.*\n|\n)+)", self.doc + "\n", re.MULTILINE)
        if not match:
            return []
        blocks = re.split(r"\n\s*\n", match.group(1).strip("\n"))
        return [re.sub(r"^    ", "", b, flags=re.MULTILINE).strip() for b in blocks if b.strip()]


RULES: dict[str, Rule] = {}

_RULE_ID = re.compile(r"^(ban|require|prefer|protected|unrecognized|waiver|limit)-[a-z0-9-]+$")


def rule(
    rule_id: str,
    severity: Severity,
    summary: str,
    dialects: frozenset[Dialect] = ALL_DIALECTS,
) -> Callable[[Check], Check]:
    """Register a rule. Its module's docstring is its documentation, with `Bad:` and `Good:` SQL."""

    def register(check: Check) -> Check:
        _add(rule_id, severity, summary, dialects, check, check.__module__)
        return check

    return register


def engine_rule(rule_id: str, severity: Severity, summary: str, module: str, stage: str = "check") -> None:
    """Register a rule whose findings an engine raises itself: the check engine (it needs more than one
    statement), or the dry-run (it needs the rows a statement really changed)."""
    _add(rule_id, severity, summary, ALL_DIALECTS, None, module, stage)


def _add(
    rule_id: str,
    severity: Severity,
    summary: str,
    dialects: frozenset[Dialect],
    check: Check | None,
    module: str,
    stage: str = "check",
) -> None:
    if not _RULE_ID.match(rule_id):
        raise ValueError(f"rule id {rule_id!r} must be kebab-case and start with a verb")
    if rule_id in RULES:
        raise ValueError(f"rule {rule_id!r} registered twice")
    doc = sys.modules[module].__doc__ or ""
    summary = summary[:1].upper() + summary[1:]
    RULES[rule_id] = Rule(rule_id, severity, summary, doc.strip(), dialects, check, module, stage)


def all_rules() -> dict[str, Rule]:
    """Every rule. The rules package registers them when imported: only code that needs them pays for it."""
    import dbguard.rules  # noqa: F401

    return RULES
