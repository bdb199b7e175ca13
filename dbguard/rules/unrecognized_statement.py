r"""A statement dbguard cannot classify is a finding: it fails closed.

Problem: every rule relies on knowing what a statement does. A statement that no parser understands,
a syntax error, an unterminated string, or a psql meta-command such as `\copy` or `\i` could do
anything, so it is never let through silently. psql meta-commands are not SQL at all: dbguard runs
scripts through a database driver, not through psql, and the server would reject them.

Bad:
    UPDATE stock SET qty = 0 WHER sku = 'A-1001';

    \copy stock FROM 'stock.csv' CSV

Good:
    UPDATE stock SET qty = 0 WHERE sku = 'A-1001';

    COPY stock FROM STDIN WITH (FORMAT csv);
"""

from __future__ import annotations

from collections.abc import Iterator

from dbguard.registry import RuleContext, Severity, Violation, rule
from dbguard.sql.model import META_COMMAND, Statement


@rule("unrecognized-statement", Severity.ERROR, "Statement dbguard cannot classify")
def check(statement: Statement, context: RuleContext) -> Iterator[Violation]:
    if statement.recognized:
        return
    words = " ".join(statement.text.split()[:6])
    opening = '"' + (words if len(words) <= 60 else words[:57] + "...") + '"'
    if statement.kind == META_COMMAND:
        yield Violation(
            message=f"{opening} is a psql meta-command, not SQL: dbguard runs scripts through a database "
            "driver, not psql, so it cannot run or check it",
            help="Replace it with SQL (\\copy with COPY ... FROM STDIN, \\set with literal values, \\i with "
            "the included statements), or run it in psql separately.",
        )
        return
    reason = f": {statement.parse_error}" if statement.parse_error else ""
    yield Violation(
        message=f"dbguard cannot classify the statement starting {opening}{reason}",
        help="dbguard fails closed on statements it cannot classify: fix or rewrite the statement, split it "
        "into simpler ones, or waive this rule with a reason after review.",
    )
