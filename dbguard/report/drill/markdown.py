"""`dbguard drill --format markdown`: the drill for a ticket or a pull request (pure)."""

from __future__ import annotations

from dbguard.report.check.markdown import _code, _inline, _row
from dbguard.report.drill.model import DrillReport
from dbguard.report.drill.text import overview, status
from dbguard.report.printable import printable


def render(report: DrillReport) -> str:
    report = printable(report)
    lines = [f"## dbguard drill: {report.verdict}", ""]
    if report.reasons:
        lines += [f"- {_inline(reason)}" for reason in report.reasons]
    else:
        lines.append(f"Backup {_code(report.backup_id)} restored, verified, and every invariant held.")
    lines += ["", _row(("", "")), _row(("---", "---"))]
    lines += [_row((f"**{label}**", _inline(value))) for label, value in overview(report)]
    if report.invariants:
        lines += ["", "### Invariants on the restored data", "", _row(("invariant", "status", "detail")),
                  _row(("---", "---", "---"))]  # fmt: skip
        lines += [_row((_inline(c.name), status(c), _inline(c.detail))) for c in report.invariants]
    if report.tables:
        lines += ["", "### Tables", "", _row(("table", "rows (manifest)", "rows (restored)", "hash")),
                  _row(("---", "---:", "---:", "---"))]  # fmt: skip
        for table in report.tables:
            restored = "not restored" if table.restored_rows is None else str(table.restored_rows)
            verdict = "equal" if table.matches else "-" if table.restored_rows is None else "**differs**"
            lines.append(_row((_code(table.table), str(table.expected_rows), restored, verdict)))
    if report.notes:
        lines += ["", "### Notes", "", *(f"- {_inline(note)}" for note in report.notes)]
    return "\n".join(lines) + "\n"
