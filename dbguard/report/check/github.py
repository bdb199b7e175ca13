"""GitHub Actions workflow commands: one annotation per finding that is not waived.

A blocking finding is an `error`; one that does not block is a `warning` (an `error` severity below an
`off` threshold included) or, for `info`, a `notice`.
"""

from __future__ import annotations

from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.printable import visible
from dbguard.rules import Severity


def render(report: CheckReport) -> str:
    lines = [_annotation(f, report.threshold) for f in report.findings if not f.waived]
    return "".join(line + "\n" for line in lines)


def _annotation(finding: Finding, threshold: Severity) -> str:
    if finding.blocks(threshold):
        level = "error"
    elif finding.severity is Severity.INFO:
        level = "notice"
    else:
        level = "warning"
    properties = [("file", finding.path.replace("\\", "/"))]
    span = finding.span
    if span is not None:
        properties += [("line", str(span.line)), ("col", str(span.column)),
                       ("endLine", str(span.end_line)), ("endColumn", str(span.end_column))]  # fmt: skip
    elif finding.line:
        properties += [("line", str(finding.line)), ("col", str(finding.column or 1))]
    properties.append(("title", finding.rule_id))
    props = ",".join(f"{key}={_escape_property(value)}" for key, value in properties)
    message = " ".join(t for t in (sentence(finding.message), finding.help) if t)
    return f"::{level} {props}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    # The order matters: `%` first, or the escapes themselves would be escaped again. Then no other control
    # character (ESC, a lone surrogate) of the script reaches the log.
    return visible(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def sentence(message: str) -> str:
    """`message`, stripped, ending in a full stop unless it already ends a sentence."""
    message = message.strip()
    return message if not message or message[-1] in ".!?" else message + "."
