"""Shared fixtures. Database fixtures create their own database and drop it afterwards."""

from __future__ import annotations

import pytest

from dbguard.dialects import Dialect
from dbguard.policy.policy import Policy, load_policy
from dbguard.check import check_text
from dbguard.report.model import Finding


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_policy(None)


def findings_for(sql: str, dialect: Dialect = Dialect.POSTGRES, policy: Policy | None = None) -> list[Finding]:
    return list(check_text(sql, dialect, policy or load_policy(None)).findings)


def fired(sql: str, dialect: Dialect = Dialect.POSTGRES, policy: Policy | None = None) -> set[str]:
    """Rule ids that fired and were not waived."""
    return {f.rule_id for f in findings_for(sql, dialect, policy) if not f.waived}
