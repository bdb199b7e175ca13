"""A dry-run never runs a statement that reaches beyond its sandbox's database. With the default "server"
provider the sandbox shares the target's server: `DROP DATABASE <target>`, run in a rehearsal, dropped the
target itself. Each case runs a real dry-run against the real server and checks the target is untouched."""

from __future__ import annotations

import psycopg
import pytest

from dbguard.inputs import Source
from dbguard.pipeline.dryrun import dry_run
from dbguard.policy.policy import load_policy
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL

WAIVE = '-- dbguard: allow {rules} reason="a test of the rehearsal, not of the rules"\n'


def _exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone()
        return bool(row and row[0])


@pytest.mark.parametrize(
    ("script", "rules", "why"),
    [
        ('DROP DATABASE "{db}";\n', "ban-drop-schema-or-database, ban-non-transactional-statement", "drops a database"),
        ('ALTER DATABASE "{db}" RENAME TO "{db}_gone";\n', "", "renames a shared object"),
        ('ALTER DATABASE "{db}" SET search_path = nowhere;\n', "", "alters a database"),
        ("DO $$ BEGIN EXECUTE 'ALTER DATABASE \"{db}\" RENAME TO \"{db}_gone\"'; END $$;\n", "ban-dynamic-sql",
         "renames a shared object"),
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';\n", "ban-dangerous-function",
         "calls pg_terminate_backend()"),
    ],
)  # fmt: skip
def test_a_statement_beyond_the_database_is_never_rehearsed(warehouse_pg: str, script: str, rules: str,
                                                            why: str) -> None:  # fmt: skip
    db = DatabaseUrl.parse(warehouse_pg).database
    sql = (WAIVE.format(rules=rules) if rules else "") + script.format(db=db)
    with psycopg.connect(warehouse_pg) as watcher:  # a session on the target that must survive
        report = dry_run(Source("x.sql", sql), DatabaseUrl.parse(warehouse_pg), load_policy(None))
        assert watcher.execute("SELECT 1").fetchone() == (1,)
    failed = report.execution.failed
    assert failed is not None and failed.error is not None and "not rehearsed" in failed.error and why in failed.error
    assert report.verdict == "BLOCKED"
    assert _exists(db) and not _exists(f"{db}_gone")
    with psycopg.connect(warehouse_pg) as conn:
        row = conn.execute("SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                           "WHERE d.datname = current_database()").fetchone()  # fmt: skip
        assert row == (0,)
