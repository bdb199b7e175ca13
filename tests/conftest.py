"""Shared fixtures. Database fixtures create their own database and drop it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbguard.dialects import Dialect
from dbguard.pipeline.check import check_text
from dbguard.policy.policy import Policy, load_policy
from dbguard.report.check.model import Finding
from tests.warehouse import load_warehouse, make_sqlite_warehouse, scratch_database


@pytest.fixture(autouse=True)
def manifest_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test signs backup manifests with a key of its own, outside its stores, never in the real home."""
    path = tmp_path_factory.mktemp("manifest-key") / "manifest.key"
    monkeypatch.setenv("DBGUARD_MANIFEST_KEY", str(path))
    return path


@pytest.fixture(scope="session")
def default_policy() -> Policy:
    return load_policy(None)


def findings_for(sql: str, dialect: Dialect = Dialect.POSTGRES, policy: Policy | None = None) -> list[Finding]:
    return list(check_text(sql, dialect, policy or load_policy(None)).findings)


def fired(sql: str, dialect: Dialect = Dialect.POSTGRES, policy: Policy | None = None) -> set[str]:
    """Rule ids that fired and were not waived."""
    return {f.rule_id for f in findings_for(sql, dialect, policy) if not f.waived}


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def warehouse_pg(pg_url: str) -> str:
    """A PostgreSQL database with the warehouse schema and deterministic data."""
    load_warehouse(pg_url)
    return pg_url


@pytest.fixture
def warehouse_sqlite(tmp_path: Path) -> Path:
    return make_sqlite_warehouse(tmp_path / "warehouse.db")
