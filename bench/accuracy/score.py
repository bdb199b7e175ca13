"""Score `dbguard check` (and squawk, on PostgreSQL) against a labelled corpus of real hazards and safe
counterparts: recall, false-positive rate and coverage per dialect.

The corpus
  bench/accuracy/cases/<dialect>.toml, one [[case]] per script: name, label ("hazard" or "safe"),
  source (the URL or doc section the case was written from), why (what the source says), sql, and
  `heldout = true` on the cases written after the fixes the first runs prompted (scored apart as well:
  the rest of the corpus has been used to fix dbguard, so its figures flatter). Every case was written
  for this corpus from what its source documents; none is a verbatim copy.

What counts as a positive
  dbguard: the script draws at least one *blocking* finding under the built-in default policy, i.e. a
  finding at or above the policy's fail_on (error), not waived: exactly what makes `dbguard check` exit 1.
  A finding at warning or info is not a positive. dbguard runs in-process (dbguard.pipeline.check_text),
  the dialect taken from the case file.
  squawk (PostgreSQL only, the baseline): any violation at all in `squawk --reporter json`, syntax errors
  included (squawk has no severity threshold of its own that maps to a refusal; every violation is what a
  reviewer sees as a finding). It runs once over all PostgreSQL cases, each written to
  bench/out/accuracy/<name>.sql.

What is printed
  Per dialect and tool: cases, recall (hazards flagged / hazards), false-positive rate (safe scripts
  flagged / safe scripts), and dbguard's coverage: the share of statements (nested ones in bodies
  included) that it fully understood (`Statement.recognized`). Then every miss and every false positive by
  case name, with the rules that fired, so each can be fixed. Targets: recall >= 95%, FP rate <= 3%.

How to run
    make bench                                   # runs this among the other benches
    .venv/bin/python bench/accuracy/score.py [--squawk PATH] [--json bench/out/accuracy.json]

Exit status: 0 when the measurement is complete (whether or not the targets are met), 2 when it is not
(a malformed case, squawk missing or failing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
OUT_DIR = REPO_ROOT / "bench" / "out" / "accuracy"
sys.path.insert(0, str(REPO_ROOT))

from dbguard.dialects import Dialect  # noqa: E402
from dbguard.pipeline.check import check_text  # noqa: E402
from dbguard.policy.policy import load_policy  # noqa: E402

DIALECTS = ("postgres", "sqlite", "mysql")
TARGET_RECALL, TARGET_FP = 0.95, 0.03


@dataclass(frozen=True)
class Case:
    dialect: str
    name: str
    label: str
    source: str
    why: str
    sql: str
    heldout: bool = False  # written after the fixes that this corpus prompted, and not used for them

    @property
    def hazard(self) -> bool:
        return self.label == "hazard"


@dataclass
class Verdict:
    flagged: bool
    rules: list[str] = field(default_factory=list)


class BenchError(Exception):
    pass


def load_cases() -> list[Case]:
    cases: list[Case] = []
    names: set[str] = set()
    for dialect in DIALECTS:
        path = BENCH_DIR / "cases" / f"{dialect}.toml"
        for raw in tomllib.loads(path.read_text())["case"]:
            missing = {"name", "label", "source", "why", "sql"} - raw.keys()
            if missing or raw["label"] not in ("hazard", "safe"):
                raise BenchError(f"{path}: case {raw.get('name')!r} is missing {sorted(missing)} or has a bad label")
            if raw["name"] in names:
                raise BenchError(f"{path}: case name {raw['name']!r} is used twice")
            names.add(raw["name"])
            cases.append(Case(dialect, raw["name"], raw["label"], raw["source"], raw["why"], raw["sql"],
                              bool(raw.get("heldout"))))  # fmt: skip
    return cases


def dbguard_verdicts(cases: list[Case]) -> tuple[dict[str, Verdict], dict[str, tuple[int, int]], list[str]]:
    """Per case: blocking or not, and the rules behind it; per dialect: (statements recognized, statements);
    and each statement not recognized, as "  <dialect>: <case>: <its first words>"."""
    policy = load_policy(None)
    verdicts: dict[str, Verdict] = {}
    coverage: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unrecognized: list[str] = []
    for case in cases:
        report = check_text(case.sql, Dialect(case.dialect), policy, f"{case.name}.sql")
        blocking = sorted({f.rule_id for f in report.findings if f.blocks(policy.fail_on)})
        verdicts[case.name] = Verdict(bool(blocking), blocking)
        statements = report.script.statements
        coverage[case.dialect][0] += sum(1 for s in statements if s.recognized)
        coverage[case.dialect][1] += len(statements)
        unrecognized.extend(f"  {case.dialect}: {case.name}: {' '.join(s.text.split()[:8])}"
                            for s in statements if not s.recognized)  # fmt: skip
    return verdicts, {d: (c[0], c[1]) for d, c in coverage.items()}, unrecognized


def squawk_verdicts(cases: list[Case], squawk: str) -> dict[str, Verdict]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.sql"):
        old.unlink()
    files = []
    for case in cases:
        path = OUT_DIR / f"{case.name}.sql"
        path.write_text(case.sql)
        files.append(path.name)
    # from bench/out/accuracy, so no squawk configuration of the repository applies
    done = subprocess.run([squawk, "--reporter", "json", *files], cwd=OUT_DIR, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise BenchError(f"squawk exited {done.returncode}: {done.stderr[-2000:]}")
    by_file: dict[str, set[str]] = defaultdict(set)
    for violation in json.loads(done.stdout or "[]"):
        by_file[Path(violation["file"]).stem].add(violation["rule_name"])
    return {c.name: Verdict(bool(by_file[c.name]), sorted(by_file[c.name])) for c in cases}


# squawk's rules about style and robustness rather than locks or data; a second row leaves them out.
SQUAWK_STYLE = frozenset({"prefer-robust-stmts", "require-statement-timeout", "prefer-bigint-over-int",
                          "prefer-bigint-over-smallint", "prefer-text-field", "prefer-identity",
                          "prefer-timestamptz", "require-enum-value-ordering", "ban-char-field"})  # fmt: skip


def without_style(verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
    kept = {name: [r for r in v.rules if r not in SQUAWK_STYLE] for name, v in verdicts.items()}
    return {name: Verdict(bool(rules), rules) for name, rules in kept.items()}


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / total:5.1f}%" if total else "n/a"


@dataclass
class Score:
    cases: int
    hazards: int
    safe: int
    misses: list[str]
    false_positives: list[str]
    coverage: float | None = None

    @property
    def recall(self) -> float:
        return (self.hazards - len(self.misses)) / self.hazards if self.hazards else 1.0

    @property
    def fp_rate(self) -> float:
        return len(self.false_positives) / self.safe if self.safe else 0.0

    def row(self) -> str:
        flagged = _rate(self.hazards - len(self.misses), self.hazards)
        return f"{flagged:>20} {_rate(len(self.false_positives), self.safe):>20}"

    def as_dict(self) -> dict[str, object]:
        return {"cases": self.cases, "hazards": self.hazards, "safe": self.safe, "recall": self.recall,
                "fp_rate": self.fp_rate, "coverage": self.coverage, "misses": self.misses,
                "false_positives": self.false_positives}  # fmt: skip


def score(cases: list[Case], verdicts: dict[str, Verdict]) -> Score:
    hazards = [c for c in cases if c.hazard]
    safe = [c for c in cases if not c.hazard]
    misses = [c.name for c in hazards if not verdicts[c.name].flagged]
    false_positives = [c.name for c in safe if verdicts[c.name].flagged]
    return Score(len(cases), len(hazards), len(safe), misses, false_positives)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_squawk = Path(sys.executable).parent / "squawk"
    parser.add_argument("--squawk", default=str(default_squawk) if default_squawk.exists() else "squawk")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    try:
        cases = load_cases()
        squawk = shutil.which(args.squawk)
        if squawk is None:
            raise BenchError(f"{args.squawk} is not an executable (pip install squawk-cli)")
        verdicts, coverage, unrecognized = dbguard_verdicts(cases)
        squawk_seen = squawk_verdicts([c for c in cases if c.dialect == "postgres"], squawk)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"accuracy corpus: {len(cases)} cases; positive = a blocking finding (default policy, fail_on=error) "
        f"for dbguard, any violation for {version}"
    )
    print(f"targets: recall >= {TARGET_RECALL:.0%}, false positives <= {TARGET_FP:.0%}\n")
    print(f"{'dialect':<9} {'tool':<8} {'cases':>5} {'recall':>20} {'false positives':>20} {'coverage':>22}")
    results: dict[str, dict[str, object]] = {}
    details: list[str] = []
    for dialect in DIALECTS:
        subset = [c for c in cases if c.dialect == dialect]
        squawk_rows = [("squawk", squawk_seen), ("squawk-", without_style(squawk_seen))]
        tools = [("dbguard", verdicts)] + (squawk_rows if dialect == "postgres" else [])
        for tool, seen in tools:
            result = score(subset, seen)
            recognized, total = coverage[dialect]
            cover = "-"
            if tool == "dbguard":
                result.coverage = recognized / total
                cover = f"{recognized}/{total} = {100 * result.coverage:5.1f}%"
            results[f"{dialect}/{tool}"] = result.as_dict()
            print(f"{dialect:<9} {tool:<8} {result.cases:>5} {result.row()} {cover:>22}")
            if tool == "squawk-":
                continue  # its misses and false positives are squawk's, less the style rules
            for kind, names in (("miss", result.misses), ("false positive", result.false_positives)):
                for name in names:
                    rules = ", ".join(seen[name].rules) or "nothing fired"
                    details.append(f"  {dialect}/{tool} {kind}: {name} [{rules}]")
    overall = score(cases, verdicts)
    print(f"{'all':<9} {'dbguard':<8} {overall.cases:>5} {overall.row()}")
    heldout = [c for c in cases if c.heldout]
    if heldout:
        print("\nheld-out cases only (written after the fixes this corpus prompted, not used for them):")
        for dialect in DIALECTS:
            subset = [c for c in heldout if c.dialect == dialect]
            tools = [("dbguard", verdicts)] + ([("squawk", squawk_seen)] if dialect == "postgres" else [])
            for tool, seen in tools:
                result = score(subset, seen)
                results[f"heldout/{dialect}/{tool}"] = result.as_dict()
                print(f"{dialect:<9} {tool:<8} {result.cases:>5} {result.row()}")
        held = score(heldout, verdicts)
        results["heldout/all/dbguard"] = held.as_dict()
        print(f"{'all':<9} {'dbguard':<8} {held.cases:>5} {held.row()}")
    met = overall.recall >= TARGET_RECALL and overall.fp_rate <= TARGET_FP
    print(f"\ndbguard overall: targets {'met' if met else 'not met'}")
    print(f"squawk- is squawk without its style rules ({', '.join(sorted(SQUAWK_STYLE))})")
    if details:
        print("\nmisses and false positives (rules that fired):")
        print("\n".join(details))
    if unrecognized:
        print("\nstatements dbguard did not fully understand (coverage):")
        print("\n".join(unrecognized))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"overall": overall.as_dict(), **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
