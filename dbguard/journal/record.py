"""One journal record: a line of canonical JSON that carries its own sha256 and the sha256 of the record
before it.

Canonical JSON is `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=True)`: one
byte sequence per content, so a record's bytes can be recomputed from what it says. A record's
`sha256` is taken over its canonical JSON without the `sha256` key (its `prev_sha256` included), so
the last record's sha256, the head, stands for the whole history before it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

JOURNAL_VERSION = 1
GENESIS = "0" * 64  # the prev_sha256 of the first record
ENVELOPE = ("journal_version", "seq", "run_id", "kind", "at", "prev_sha256", "sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Kind(StrEnum):
    INTENT = "intent"
    ATTEMPT = "attempt"
    OUTCOME = "outcome"
    REPAIR = "repair"
    DRILL = "drill"  # a restore drill (`dbguard drill`): a run of its own, one record
    APPROVAL = "approval"  # a reviewer's sign-off (`dbguard approve --journal`): a run id of its own, one record


@dataclass(frozen=True)
class Record:
    """A sealed record. `fields` is the payload (see `entries`); `line` is where it was read, 0 if new."""

    seq: int  # 1, 2, ... in the order written
    run_id: str
    kind: str  # "intent", "attempt", "outcome", "repair", "drill", "approval"
    at: str  # UTC, ISO 8601 with milliseconds and a Z
    prev_sha256: str
    sha256: str
    fields: Mapping[str, Any]
    line: int = field(default=0, compare=False)

    @classmethod
    def seal(cls, seq: int, run_id: str, kind: str, prev_sha256: str, fields: Mapping[str, Any]) -> Record:
        """A new record: the payload round-trips through JSON (so it is what a reader will see), then its
        sha256 is computed. Raises ValueError for a payload JSON cannot hold (NaN, a set...)."""
        clash = set(fields) & set(ENVELOPE)
        if clash:
            raise ValueError(f"payload field {sorted(clash)[0]!r} is an envelope field")
        payload = json.loads(canonical_json(dict(fields)))
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        unsealed = cls(seq, run_id, kind, at, prev_sha256, "", payload)
        return cls(seq, run_id, kind, at, prev_sha256, unsealed.digest(), payload)

    @classmethod
    def parse(cls, line: bytes, number: int = 0) -> Record:
        """Read one line (its newline included or not). Raises ValueError saying what is wrong."""
        try:
            body = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"not JSON ({error})") from None
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        missing = [key for key in ENVELOPE if key not in body]
        if missing:
            raise ValueError(f"no {missing[0]!r} field")
        if body["journal_version"] != JOURNAL_VERSION:
            raise ValueError(f"journal_version {body['journal_version']!r}, this dbguard reads {JOURNAL_VERSION}")
        seq = body["seq"]
        if type(seq) is not int or seq < 1:  # not isinstance: True is an int too
            raise ValueError(f"seq {seq!r} is not a positive integer")
        for key in ("run_id", "kind", "at"):
            if not isinstance(body[key], str) or not body[key]:
                raise ValueError(f"{key} {body[key]!r} is not a text")
        for key in ("prev_sha256", "sha256"):
            if not isinstance(body[key], str) or not _SHA256.match(body[key]):
                raise ValueError(f"{key} {body[key]!r} is not a sha256")
        payload = {key: value for key, value in body.items() if key not in ENVELOPE}
        return cls(seq, body["run_id"], body["kind"], body["at"], body["prev_sha256"], body["sha256"], payload, number)

    def to_dict(self) -> dict[str, Any]:
        envelope = {"journal_version": JOURNAL_VERSION, "seq": self.seq, "run_id": self.run_id, "kind": self.kind,
                    "at": self.at, "prev_sha256": self.prev_sha256, "sha256": self.sha256}  # fmt: skip
        return {**envelope, **self.fields}

    def to_line(self) -> bytes:
        return canonical_json(self.to_dict()).encode("ascii") + b"\n"

    def digest(self) -> str:
        """The sha256 this record's content calls for: over its canonical JSON without `sha256`."""
        body = self.to_dict()
        del body["sha256"]
        return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()

    def intact(self, line: bytes) -> bool:
        """True when `line` is exactly this record as dbguard wrote it, and its sha256 fits its content."""
        return self.sha256 == self.digest() and line.rstrip(b"\n") == self.to_line().rstrip(b"\n")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
