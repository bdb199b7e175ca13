"""Every registered rule is documented, its own Bad example fires while its Good example does not, and no
Good example draws a blocking finding from any rule."""

from __future__ import annotations

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Policy, load_policy
from dbguard.report.check.model import Finding
from dbguard.rules import RULES
from tests.catalogs import catalog_of
from tests.conftest import findings_for

# Examples for protected-table-write need a policy that protects something.
_PROTECTING_STOCK = Policy(protected_tables=frozenset({"stock"}))
# Rules that need table statistics (check --db / --stats) see these tables in their examples.
_STATS = {
    "prefer-batched-update": [{"name": "orders", "rows": 2_000_000, "indexed": ["id"], "primary": "id"},
                              {"name": "customers", "rows": 50_000, "indexed": ["id"], "primary": "id"}],
    "require-existing-table": [{"name": "stock", "rows": 1000}],
}  # fmt: skip


def _findings(rule_id: str, sql: str, dialect: Dialect, policy: Policy) -> list[Finding]:
    if rule_id in _STATS:
        return list(check_text(sql, dialect, policy, catalog=catalog_of(_STATS[rule_id], dialect)).findings)
    return findings_for(sql, dialect, policy)


def fired(rule_id: str, sql: str, dialect: Dialect, policy: Policy) -> set[str]:
    return {f.rule_id for f in _findings(rule_id, sql, dialect, policy) if not f.waived}


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_is_documented(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert rule.summary and not rule.summary.endswith(".")
    problem = rule.doc.split("\n\n")[0]
    assert len(problem) > 20, f"{rule_id}: the docstring should open with the problem"
    assert rule.examples("Bad"), f"{rule_id}: no Bad example"
    assert rule.examples("Good"), f"{rule_id}: no Good example"


@pytest.mark.parametrize("rule_id", sorted(r.id for r in RULES.values() if r.stage == "check"))
def test_bad_example_fires_and_good_example_does_not(rule_id: str) -> None:
    """Dry-run rules need real data: tests/test_dryrun.py covers them."""
    rule = RULES[rule_id]
    # The examples are written for the first dialect the rule covers, in this order.
    dialect = next(d for d in (Dialect.POSTGRES, Dialect.SQLITE, Dialect.MYSQL) if d in rule.dialects)
    for bad in rule.examples("Bad"):
        assert rule_id in fired(rule_id, bad, dialect, _PROTECTING_STOCK), f"{rule_id} does not fire on its Bad: {bad}"
    for good in rule.examples("Good"):
        assert rule_id not in fired(rule_id, good, dialect, _PROTECTING_STOCK), f"{rule_id} fires on its Good: {good}"


@pytest.mark.parametrize("rule_id", sorted(r.id for r in RULES.values() if r.stage == "check"))
def test_good_example_passes_check_under_the_default_policy(rule_id: str) -> None:
    """A rule's Good example is advice: `check` must not block it, through this rule or any other."""
    rule = RULES[rule_id]
    dialect = next(d for d in (Dialect.POSTGRES, Dialect.SQLITE, Dialect.MYSQL) if d in rule.dialects)
    policy = load_policy(None)
    for good in rule.examples("Good"):
        blocking = [f"{f.rule_id}: {f.message}" for f in _findings(rule_id, good, dialect, policy)
                    if not f.waived and f.severity.rank >= policy.fail_on.rank]  # fmt: skip
        assert not blocking, f"{rule_id}'s Good example is blocked:\n{good}\n{blocking}"
