"""Verifying a journal's lines: which record is wrong, and how.

Each record carries its own sha256, a `seq` (1, 2, ... in the order written) and the sha256 of the
record before it. From these:

- edited: a record whose content does not match its own sha256; or, when the editor recomputed that
  sha256, a record the next record no longer links to;
- missing (deleted): a gap in the seq numbers;
- inserted: a record that duplicates a seq, or stands out of order, and that no record links to;
- out of order: a record that stands out of seq order but is still chained to its neighbours;
- torn: a last line with no newline, a write cut short by a crash or a full disk;
- unreadable: a line that is not a journal record at all.

A chain alone cannot show that records were removed from its END, nor that the last record was
edited and its sha256 recomputed: `expect_head` (a head sha256 kept elsewhere) catches both.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from dbguard.journal.record import GENESIS, Record


class Breakage(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    INSERTED = "inserted"
    OUT_OF_ORDER = "out of order"
    TORN = "torn"
    UNREADABLE = "unreadable"
    HEAD_NOT_FOUND = "head not found"


@dataclass(frozen=True)
class Problem:
    breakage: Breakage
    detail: str
    line: int | None = None  # 1-based line of the journal file
    seq: int | None = None
    run_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.run_id:
            where.append(f"run {self.run_id}")
        place = f"line {self.line}" + (f" ({', '.join(where)})" if where else "") if self.line else "journal"
        return f"{place}: {self.breakage.value}: {self.detail}"


@dataclass(frozen=True)
class Verification:
    records: tuple[Record, ...]  # every line that parsed, in file order
    problems: tuple[Problem, ...]  # in line order

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def head(self) -> Record | None:
        """The last record, whose sha256 stands for the whole journal when `ok`."""
        return self.records[-1] if self.records else None


def verify_lines(lines: list[bytes], expect_head: str | None = None) -> Verification:
    """Check raw lines (each with its newline, except perhaps a torn last one)."""
    problems: list[Problem] = []
    records: list[Record] = []
    for number, raw in enumerate(lines, 1):
        if not raw.endswith(b"\n"):
            detail = f"{len(raw)} bytes with no newline: a write cut short (a crash or a full disk)"
            problems.append(Problem(Breakage.TORN, f"{detail}; `dbguard journal repair` sets them aside", number))
            continue
        try:
            record = Record.parse(raw, number)
        except ValueError as error:
            problems.append(Problem(Breakage.UNREADABLE, f"not a journal record: {error}", number))
            continue
        records.append(record)
        if record.sha256 != record.digest():
            problems.append(_at(record, Breakage.EDITED, "its content does not match its own sha256"))
        elif raw != record.to_line():  # `Record.intact`, without computing the digest a second time
            problems.append(_at(record, Breakage.EDITED, "its bytes are not the canonical JSON dbguard writes"))
    edited = {p.line for p in problems if p.breakage is Breakage.EDITED}
    linked_to = {record.prev_sha256 for record in records}  # every sha256 that some record names as its prev

    kept, duplicates = _without_duplicates(records, linked_to)
    misplaced = _out_of_place(kept, linked_to)
    problems += duplicates + misplaced
    inserted = {p.line for p in misplaced if p.breakage is Breakage.INSERTED}
    chain = [r for r in kept if r.line not in inserted]
    problems += _gaps(chain)
    problems += _broken_links(chain, edited)
    if expect_head is not None and expect_head != GENESIS and not any(r.sha256 == expect_head for r in chain):
        problems.append(Problem(Breakage.HEAD_NOT_FOUND, f"no record has sha256 {expect_head}: records were removed "
                                "from the end, or the journal was rewritten, since that head was taken"))  # fmt: skip
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.breakage.value))  # whole-journal ones last
    return Verification(tuple(records), tuple(problems))


def _at(record: Record, breakage: Breakage, detail: str) -> Problem:
    return Problem(breakage, detail, record.line, record.seq, record.run_id)


def _without_duplicates(records: list[Record], linked_to: set[str]) -> tuple[list[Record], list[Problem]]:
    """Of records sharing a seq, keep the one the chain runs through; the others were inserted."""
    by_seq: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        by_seq[record.seq].append(record)
    dropped: list[Problem] = []
    for seq, group in by_seq.items():
        if len(group) == 1:
            continue
        linked = [r for r in group if r.sha256 in linked_to]
        genuine = linked[0] if len(linked) == 1 else group[0]
        for record in group:
            if record is genuine:
                continue
            if len(linked) == 1:
                detail = f"it repeats seq {seq} of line {genuine.line}, and the next record links to that one"
            else:
                detail = f"lines {', '.join(str(r.line) for r in group)} all hold seq {seq}: all but one were inserted"
            dropped.append(_at(record, Breakage.INSERTED, detail))
    gone = {p.line for p in dropped}
    return [r for r in records if r.line not in gone], dropped


def _out_of_place(records: list[Record], linked_to: set[str]) -> list[Problem]:
    """Records outside the longest run of increasing seqs: moved if still chained, inserted if not."""
    in_order = _longest_increasing(records)
    by_seq = {r.seq: r for r in records}
    problems = []
    for record in records:
        if record.line in in_order:
            continue
        before = by_seq.get(record.seq - 1)
        chained = record.sha256 in linked_to or (before is not None and before.sha256 == record.prev_sha256)
        if chained:
            neighbour = max((r for r in records if r.line in in_order and r.seq < record.seq), key=lambda r: r.seq,
                            default=None)  # fmt: skip
            after = f"after line {neighbour.line} (seq {neighbour.seq})" if neighbour else "first"
            problems.append(_at(record, Breakage.OUT_OF_ORDER, f"records were reordered: it belongs {after}"))
        else:
            problems.append(_at(record, Breakage.INSERTED, "it stands out of order and is chained to no record"))
    return problems


def _longest_increasing(records: list[Record]) -> set[int]:
    """Line numbers of a longest subsequence (in file order) whose seqs increase."""
    tails: list[int] = []  # tails[k]: smallest last seq of an increasing run of length k+1
    tail_at: list[int] = []  # index in records of that last element
    previous: list[int | None] = []
    for index, record in enumerate(records):
        k = bisect.bisect_left(tails, record.seq)
        previous.append(tail_at[k - 1] if k else None)
        if k == len(tails):
            tails.append(record.seq)
            tail_at.append(index)
        else:
            tails[k] = record.seq
            tail_at[k] = index
    chosen: set[int] = set()
    cursor = tail_at[-1] if tail_at else None
    while cursor is not None:
        chosen.add(records[cursor].line)
        cursor = previous[cursor]
    return chosen


def _gaps(chain: list[Record]) -> list[Problem]:
    present = {r.seq for r in chain}
    problems = []
    for record in sorted(chain, key=lambda r: r.seq):
        first_missing = record.seq - 1
        while first_missing >= 1 and first_missing not in present:
            first_missing -= 1
        count = record.seq - 1 - first_missing
        if count:
            which = f"seq {record.seq - 1}" if count == 1 else f"seq {first_missing + 1} to {record.seq - 1}"
            problems.append(_at(record, Breakage.MISSING, f"{which} before it {'is' if count == 1 else 'are'} "
                                "not in the journal: deleted"))  # fmt: skip
    return problems


def _broken_links(chain: list[Record], edited: set[int | None]) -> list[Problem]:
    by_seq = {r.seq: r for r in chain}
    problems = []
    for record in chain:
        if record.seq == 1:
            if record.prev_sha256 != GENESIS and record.line not in edited:
                problems.append(_at(record, Breakage.EDITED, "seq 1 must start the chain, and its prev_sha256 "
                                    "is not the genesis value"))  # fmt: skip
            continue
        before = by_seq.get(record.seq - 1)
        if before is None or before.sha256 == record.prev_sha256 or before.line in edited:
            continue
        detail = f"line {record.line} (seq {record.seq}) does not link to it: it was changed after it was written"
        problems.append(_at(before, Breakage.EDITED, f"{detail}, or line {record.line}'s prev_sha256 was"))
    return problems
