"""A statement that changes more rows than the policy allows, on a real copy of the data.

Problem: a WHERE clause that looks precise can still match far more rows than intended: a join that
fans out, a NULL comparison, a stale assumption about the data. Only running the statement on real
data tells. The dry-run raises this finding when one statement changes more than
`thresholds.max_rows_affected` rows; `check` alone cannot.

Bad:
    UPDATE stock SET reserved = 0 WHERE reserved > 0;

Good:
    UPDATE stock SET reserved = 0 WHERE warehouse_id = 3 AND product_id = 17;
"""

from dbguard.registry import Severity, engine_rule

engine_rule("limit-rows-affected", Severity.ERROR, "A statement changed more rows than allowed", __name__, "dry-run")
