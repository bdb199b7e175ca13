"""A waiver must name a rule that exists.

Problem: a mistyped rule id in a waiver waives nothing, yet reads as if the hazard had been reviewed.
The check engine raises this finding itself, since it reads comments rather than statements.

Bad:
    -- dbguard: allow ban-trunc reason="staging table, rebuilt nightly"
    SELECT 1;

Good:
    SET lock_timeout = '2s';
    -- dbguard: allow ban-truncate reason="staging table, rebuilt nightly"
    TRUNCATE staging_import;
"""

from dbguard.registry import Severity, engine_rule

engine_rule("waiver-unknown-rule", Severity.ERROR, "An inline waiver names a rule that does not exist", __name__)
