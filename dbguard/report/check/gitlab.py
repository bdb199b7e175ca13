"""GitLab Code Quality: a JSON array with one issue per finding that is not waived.

GitLab reads it from a job's `artifacts:reports:codequality` file and shows the issues in the merge
request's Code Quality widget and diff. Each issue is the subset of the Code Climate issue format that
GitLab documents (docs.gitlab.com/ci/testing/code_quality, "Code Quality report format"):

    description         the finding's message and its help
    check_name          the rule id
    fingerprint         32 hex digits, the same for the same finding from one run to the next
    severity            info | minor | major | critical | blocker
    location.path       the script's path as given, with forward slashes and no leading ./
    location.lines.begin  the 1-based line where the statement starts (1 for a finding on no statement)

A blocking finding is a `blocker`; one that does not block is `major` (error), `minor` (warning) or
`info`. Waived findings are left out: the format has no way to show a suppression, and the SARIF and
JSON reports keep them with their reasons.

The fingerprint is the sha256 of the path, the rule id, the message and the finding's rank among
identical ones in its file, so a finding keeps its fingerprint when lines above it move (GitLab then
shows it as unchanged, not as fixed and new) and two identical findings in one file still differ.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from dbguard.report.check.github import sentence
from dbguard.report.check.model import CheckReport, Finding
from dbguard.report.printable import printable, without_surrogates
from dbguard.rules import Severity

SEVERITIES = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info", Severity.OFF: "info"}


def render(report: CheckReport) -> str:
    issues: list[dict[str, Any]] = []
    for file in report.files:
        seen: Counter[tuple[str, str]] = Counter()
        for finding in file.findings:
            if finding.waived:
                continue
            key = (finding.rule_id, finding.message)
            issues.append(_issue(finding, report.threshold, seen[key]))
            seen[key] += 1
    return json.dumps(printable(issues, without_surrogates), indent=2) + "\n"


def _issue(finding: Finding, threshold: Severity, rank: int) -> dict[str, Any]:
    path = _path(finding.path)
    return {
        "description": " ".join(t for t in (sentence(finding.message), finding.help) if t),
        "check_name": finding.rule_id,
        "fingerprint": _fingerprint(path, finding, rank),
        "severity": "blocker" if finding.blocks(threshold) else SEVERITIES[finding.severity],
        "location": {"path": path, "lines": {"begin": finding.line or 1}},
    }


def _path(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _fingerprint(path: str, finding: Finding, rank: int) -> str:
    parts = (path, finding.rule_id, finding.message, str(rank))
    text = "\0".join(without_surrogates(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
