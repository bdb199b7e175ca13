"""A waiver must say why the hazard is acceptable.

Problem: a waiver switches a safety rule off for one statement. Without a reason, a reviewer cannot
tell a deliberate decision from a silenced warning, and the journal records no justification. The
check engine raises this finding itself, since it reads comments rather than statements.

Bad:
    -- dbguard: allow ban-truncate
    TRUNCATE staging_import;

Good:
    SET lock_timeout = '2s';
    -- dbguard: allow ban-truncate reason="staging table, rebuilt nightly from the supplier feed"
    TRUNCATE staging_import;
"""

from dbguard.registry import Severity, engine_rule

engine_rule("waiver-without-reason", Severity.ERROR, "An inline waiver gives no reason", __name__)
