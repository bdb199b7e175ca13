"""`dbguard approvals` as text (a rich table) or JSON: pure functions of an `ApprovalListing`."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbguard.report.printable import printable
from dbguard.review.approvals import ApprovalListing


def render_text(listing: ApprovalListing, color: bool = False, width: int = 100) -> str:
    listing = printable(listing)  # names and notes were checked on reading; the script's path was not
    stream = io.StringIO()
    console = Console(file=stream, width=width, force_terminal=color, no_color=not color, highlight=False,
                      color_system="standard" if color else None)  # fmt: skip
    console.print(Text(f"Approvals of {listing.script} (sha256 {listing.script_sha256})"), soft_wrap=True)
    if not listing.approvals:
        console.print(Text(f"none recorded ({listing.approvals_file} does not exist)"), soft_wrap=True)
    else:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("reviewer", "approved at (UTC)", "matches", "recorded by", "note"):
            table.add_column(column, overflow="fold")
        for approval in listing.approvals:
            matches = listing.matches(approval)
            table.add_row(Text(approval.reviewer), Text(approval.approved_at),
                          Text("yes", "green") if matches else Text("no (another version)", "yellow"),
                          Text(approval.recorded_by), Text(approval.note))  # fmt: skip
        console.print(table)
        matching, reviewers = sum(listing.matches(a) for a in listing.approvals), listing.reviewers_matching
        console.print(
            Text(
                f"{matching} of {len(listing.approvals)} match the script as it is now "
                f"({reviewers} distinct reviewer{'s' * (reviewers != 1)})"
            )
        )
    if listing.count is not None:
        verdict = Text("APPROVED", "bold green") if listing.count.met else Text("NOT APPROVED", "bold red")
        console.print(Text.assemble(verdict, f": {listing.count.summary()}"), soft_wrap=True)
    return stream.getvalue()


def to_dict(listing: ApprovalListing) -> dict[str, Any]:
    document: dict[str, Any] = {
        "script": listing.script,
        "approvals_file": listing.approvals_file,
        "script_sha256": listing.script_sha256,
        "approvals": [{**asdict(a), "matches": listing.matches(a)} for a in listing.approvals],
        "distinct_reviewers_matching": listing.reviewers_matching,
    }
    if listing.count is not None:
        count = listing.count
        document["requirement"] = {
            "required": count.required, "met": count.met, "author": count.author,
            "author_excluded": count.author_excluded, "counted": [a.reviewer for a in count.counted],
            "summary": count.summary(),
        }  # fmt: skip
    return document


def render_json(listing: ApprovalListing) -> str:
    return json.dumps(to_dict(listing), indent=2, ensure_ascii=False) + "\n"
