"""A sequence left where its next values collide with keys that already exist, on a real copy of the data.

Problem: `setval()`, `ALTER SEQUENCE ... RESTART` or a new default on a fresh sequence can leave a
sequence at or below the largest value of the column it feeds. Nothing fails while the script runs:
the next inserts do, with duplicate keys, long after it has finished (or, with no unique constraint,
they silently reuse keys). A sequence moved backwards hands out values it already handed out. The
dry-run compares each sequence the script moved, before and after, with max() of every column whose
default calls nextval() of it or whose identity it is; `check` alone cannot see the data.

Bad:
    SELECT setval('stock_id_seq', 1);

Good:
    SELECT setval('stock_id_seq', (SELECT max(id) FROM stock));
"""

from dbguard.registry import Severity, engine_rule

engine_rule(
    "limit-sequence-below-max", Severity.ERROR, "A sequence was left where its next values collide with existing keys",
    __name__, "dry-run",
)  # fmt: skip
