"""Every rule's fixture cases: `tests/fixtures/rules/<rule-id>.toml`, each with [[fires]] and [[passes]].

A case is `sql = "..."`, with optional `dialect` (default postgres), `protected_tables` (a policy
that protects those tables), `policy` (a built-in policy by name: "strict"; default "default") and
`tables` (table statistics, as `check --stats` would give: see tests/catalogs.py). A [[fires]] case may
name the `severity` the rule's finding must have ("warning": check only knows the hazard is possible).
All rules run on each case, the way `dbguard check` runs them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Policy, load_policy
from dbguard.rules import RULES
from tests.catalogs import catalog_of

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def _cases() -> list[Any]:
    cases = []
    for file in sorted(FIXTURES.glob("*.toml")):
        data = tomllib.loads(file.read_text())
        for expect in ("fires", "passes"):
            for number, case in enumerate(data.get(expect, []), 1):
                cases.append(pytest.param(file.stem, expect, case, id=f"{file.stem}-{expect}-{number}"))
    return cases


def _policy(case: dict[str, Any]) -> Policy:
    base = load_policy(case.get("policy"))
    if "protected_tables" in case:
        return Policy(protected_tables=frozenset(case["protected_tables"]), severities=base.severities)
    return base


@pytest.mark.parametrize(("rule_id", "expect", "case"), _cases())
def test_rule_fixture(rule_id: str, expect: str, case: dict[str, Any]) -> None:
    assert rule_id in RULES, f"tests/fixtures/rules/{rule_id}.toml names no rule: its [[passes]] would pass vacuously"
    dialect = Dialect(case.get("dialect", "postgres"))
    catalog = catalog_of(case["tables"], dialect) if "tables" in case else None
    report = check_text(case["sql"], dialect, _policy(case), catalog=catalog)
    findings = [f for f in report.findings if not f.waived]
    hits = {f.rule_id for f in findings}
    if expect == "fires":
        assert rule_id in hits, f"{rule_id} should fire on: {case['sql']}"
        if "severity" in case:
            severities = {f.severity.value for f in findings if f.rule_id == rule_id}
            assert severities == {case["severity"]}, f"{rule_id} fired at {severities} on: {case['sql']}"
    else:
        assert rule_id not in hits, f"{rule_id} should not fire on: {case['sql']}"


def test_every_rule_has_a_fixture_file_with_both_kinds_of_case() -> None:
    for rule_id in (r.id for r in RULES.values() if r.stage == "check"):
        file = FIXTURES / f"{rule_id}.toml"
        assert file.exists(), f"{rule_id} has no fixture file {file}"
        data = tomllib.loads(file.read_text())
        assert data.get("fires") and data.get("passes"), f"{file} needs [[fires]] and [[passes]] cases"
