"""`dbguard drill` as text for the terminal (pure): the verdict, RPO and RTO, the tables, the invariants."""

from __future__ import annotations

from dbguard.report.drill.model import DrillReport
from dbguard.report.printable import printable
from dbguard.targets.model import CheckResult, row_text

_SHOWN_ROWS = 3  # offending rows shown per broken invariant


def render(report: DrillReport) -> str:
    report = printable(report)  # names from the database never reach the terminal as control characters
    lines = [headline(report)]
    lines += [f"  - {reason}" for reason in report.reasons]
    lines.append("")
    lines += [f"  {label:<11} {value}" for label, value in overview(report)]
    if report.invariants:
        lines += ["", "invariants on the restored data:"]
        for check in report.invariants:
            lines.append(f"  {status(check):<4}  {check.name}: {check.detail}")
            if not check.passed and not check.skipped:
                lines += [f"          {row_text(check.columns, row)}" for row in check.sample[:_SHOWN_ROWS]]
    # A restore that failed before counting has no restored table to compare: its reason says it all.
    counted = any(t.restored_rows is not None for t in report.tables)
    differing = [t for t in report.tables if not t.matches] if counted else []
    if differing:
        lines += ["", "tables that differ from the manifest:"]
        for table in differing:
            got = (
                f"{table.restored_rows} rows, hash {table.restored_hash}"
                if table.restored_rows is not None
                else "missing"
            )
            lines.append(f"  {table.table}: {got}; the manifest says {table.expected_rows} rows, hash "
                         f"{table.expected_hash}")  # fmt: skip
    if report.notes:
        lines += ["", "notes:", *(f"  - {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def headline(report: DrillReport) -> str:
    if report.passed:
        return f"drill PASSED: backup {report.backup_id} restored and verified"
    return f"drill FAILED: backup {report.backup_id}, {len(report.reasons)} reason(s)"


def overview(report: DrillReport) -> list[tuple[str, str]]:
    """(label, value) lines every format shows, in order."""
    rows = sum(table.expected_rows for table in report.tables)
    backup = "full backup" if report.scope == "full" else "scoped backup (the rows of some tables)"
    rto = ("not measured: the restore failed" if report.restore_seconds is None
           else f"{duration(report.restore_seconds)} from the start of the restore to verified data")  # fmt: skip
    restored = (f"{len(report.tables)}, {rows} rows, every count and hash equal to the manifest's" if report.restored
                else f"{len(report.tables)} in the manifest, {rows} rows")  # fmt: skip
    out = [
        ("source", f"{report.source} ({report.dialect}, {backup})"),
        ("taken at", report.taken_at),
        ("drilled at", report.drilled_at),
        ("RPO", f"{duration(report.backup_age_seconds)}: the backup's age, what a restore now would lose"),
        ("RTO", rto),
        ("sandbox", report.sandbox or "-"),
        ("tables", restored),
    ]
    if not report.restored:
        out.append(("invariants", f"not evaluated: the restore failed (policy {report.policy})"))
    elif report.invariants:
        counts = invariant_counts(report.invariants)
        out.append(("invariants", f"{counts}, policy {report.policy}, {duration(report.invariants_seconds)}"))
    else:
        out.append(("invariants", f"none in policy {report.policy}"))
    if report.run_id:
        out.append(("journal", f"run {report.run_id} (`dbguard journal show {report.run_id}`)"))
    return out


def status(check: CheckResult) -> str:
    return "SKIP" if check.skipped else "PASS" if check.passed else "FAIL"


def invariant_counts(checks: tuple[CheckResult, ...]) -> str:
    passed = sum(1 for c in checks if c.passed and not c.skipped)
    skipped = sum(1 for c in checks if c.skipped)
    broken = len(checks) - passed - skipped
    return f"{passed} passed, {broken} broken, {skipped} skipped"


def duration(seconds: float) -> str:
    """Seconds for people: "0.42 s", "12.3 s", "4 min 05 s", "3 h 20 min", "2 d 4 h"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
