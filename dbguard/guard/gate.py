"""The integrity gate: what must hold before COMMIT. dry-run applies it in its rehearsal, `run` before it
commits, so a script that passes one passes the other on the same data.

- the integrity checks of the target on the given tables and every partition below them (PostgreSQL:
  constraints validated, deferred constraints, indexes valid, foreign keys row by row, amcheck; SQLite:
  `integrity_check` and `foreign_key_check`); a check that already failed before the script, on the same
  rows, is marked pre-existing and does not block;
- the policy's invariants;
- for `run`: drift (a statement changed a different number of rows than in the dry-run) and coverage
  (every table the transaction wrote is in the backup).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dbguard.dialects import Dialect
from dbguard.guard.invariants import evaluate
from dbguard.policy.policy import Invariant
from dbguard.report.dryrun.model import GateResult
from dbguard.targets.model import CheckResult, TableStats, Target


def settle_gate_session(target: Target) -> None:
    """Settings for the gate's queries, for the rest of the transaction only (SET LOCAL): no statement or
    lock timeout inherited from the script (a check must not time out quietly), and the configured
    search_path, not one the script set (its own functions must not stand in for the ones the checks
    call)."""
    if target.dialect is Dialect.POSTGRES:
        for setting in ("statement_timeout = 0", "lock_timeout = 0", "search_path TO DEFAULT"):
            target.conn.execute(f"SET LOCAL {setting}")


def integrity(target: Target, tables: Sequence[str]) -> list[CheckResult]:
    """The target's integrity checks on `tables` (PostgreSQL installs amcheck where it may)."""
    if target.dialect is Dialect.POSTGRES:
        return target.integrity_checks(tables, install_amcheck=True)  # type: ignore[call-arg]
    return target.integrity_checks(tables)


def pre_existing(after: CheckResult, before: Sequence[CheckResult]) -> bool:
    """A failure the database already had: same check, and nothing in its sample that was not there before."""
    earlier = next((c for c in before if c.name == after.name and not c.passed and not c.skipped), None)
    return earlier is not None and set(after.sample) <= set(earlier.sample)


def _not_valid_on_purpose(check: CheckResult, before: Sequence[CheckResult]) -> CheckResult:
    """A constraint the script added NOT VALID (the safe way: it holds for new rows at once, and a later
    step's VALIDATE CONSTRAINT checks the existing ones) is what the script meant, not a broken constraint;
    the foreign-key check still reads every row. Reported, and it does not block."""
    if check.name != "constraints valid" or check.passed:
        return check
    earlier = {row for c in before if c.name == check.name for row in c.sample}
    added = [row for row in check.sample if row not in earlier]
    names = ", ".join(str(row[0]) for row in check.sample)
    detail = (f"{len(check.sample)} constraint(s) NOT VALID, {len(added)} of them added by the script: {names}; "
              "they hold for new rows, and VALIDATE CONSTRAINT checks the existing ones")  # fmt: skip
    return CheckResult(check.name, True, detail, check.sample, columns=check.columns)


def invariant_stats(target: Target, invariants: Sequence[Invariant]) -> dict[str, TableStats]:
    """Counts and hashes of the tables the invariants name, as named: a partitioned table's count is that
    of all its partitions."""
    named = target.resolve([i.table for i in invariants if i.table])
    return target.table_stats(sorted(set(named.values())))


def integrity_gate(
    target: Target,
    tables: Sequence[str],
    checks_before: Sequence[CheckResult],
    invariants: Sequence[Invariant],
    before: Mapping[str, TableStats],
    after: Mapping[str, TableStats],
) -> list[GateResult]:
    """The integrity checks on `tables` and the invariants (`before`/`after`: stats by canonical name)."""
    checks = [_not_valid_on_purpose(check, checks_before) for check in integrity(target, tables)]
    gates = [GateResult(check, pre_existing(check, checks_before)) for check in checks]
    return gates + [GateResult(result) for result in evaluate(invariants, target, before, after)]


def drift_check(expected: Mapping[int, int | None], actual: Mapping[int, int | None], percent: float,
                minimum_rows: int, measure: str = "rows") -> CheckResult:  # fmt: skip
    """Rows per statement now against the dry-run's (statement index -> rows): a statement that differs by
    more than `percent` of the dry-run's count, and by more than `minimum_rows`, means the data moved
    between the dry-run and the run."""
    drifted = []
    for index, rows in sorted(actual.items()):
        planned = expected.get(index)
        if rows is None or planned is None:
            continue
        allowed = max(planned * percent / 100.0, minimum_rows)
        if abs(rows - planned) > allowed:
            drifted.append((f"statement {index}", planned, rows))
    if not drifted:
        return CheckResult("row drift", True, f"every statement within {percent:g}% (and {minimum_rows} rows) of "
                                              "the dry-run")  # fmt: skip
    detail = "; ".join(f"{name}: {planned} {measure} in the dry-run, {rows} now" for name, planned, rows in drifted)
    return CheckResult("row drift", False, f"the data moved since the dry-run: {detail}", tuple(drifted),
                       columns=("statement", "dry-run rows", "rows now"))  # fmt: skip


def coverage_check(written: set[str], backed_up: set[str], whole_database: bool = False) -> CheckResult:
    """Every table the transaction wrote (the server's counters: triggers and rules included) must be in
    the backup, or a rollback later could not be undone from it."""
    if whole_database:
        return CheckResult("backup coverage", True, "the backup holds the whole database")
    outside = sorted(written - backed_up)
    if not outside:
        return CheckResult("backup coverage", True, f"all {len(written)} written table(s) are in the backup")
    return CheckResult("backup coverage", False, f"written but not in the backup: {', '.join(outside)}",
                       tuple((table,) for table in outside), columns=("table",))  # fmt: skip
