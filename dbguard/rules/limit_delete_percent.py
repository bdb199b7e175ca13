"""A statement that removes more of a table than the policy allows, on a real copy of the data.

Problem: deleting a large share of a table is rarely what a maintenance script means to do; in the
stockpocalypse, every reservation went. The dry-run raises this finding when one DELETE or TRUNCATE
removes more than `thresholds.max_delete_percent` of a table's rows; `check` alone cannot.

Bad:
    DELETE FROM reservations WHERE expires_at < now() + interval '10 years';

Good:
    DELETE FROM reservations WHERE expires_at < now() - interval '1 day';
"""

from dbguard.registry import Severity, engine_rule

engine_rule(
    "limit-delete-percent", Severity.ERROR, "A statement removed a larger share of a table than allowed", __name__,
    "dry-run",
)  # fmt: skip
