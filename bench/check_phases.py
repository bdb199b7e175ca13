"""Where `dbguard check` spends its time on bench/out/bench_10k.sql, stage by stage, in one process.

Run bench/check_speed.py first (it writes the script). Prints the median of 5 runs of each stage:
imports, lexer, pglast's parse alone, dbguard's parse and classification on two cores and on one, the
rules, and the JSON and text reports.

    .venv/bin/python bench/check_phases.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

started = time.perf_counter()
import pglast  # noqa: E402 - the imports are what the first stage times

from dbguard.dialects import Dialect  # noqa: E402
from dbguard.pipeline.check import check_script  # noqa: E402
from dbguard.policy.policy import load_policy  # noqa: E402
from dbguard.report.check import json as render_json  # noqa: E402
from dbguard.report.check import text as render_text  # noqa: E402
from dbguard.report.check.model import CheckReport, FileReport  # noqa: E402
from dbguard.sql import parse  # noqa: E402
from dbguard.sql.lexer import lex  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "out" / "bench_10k.sql"


def median(stage: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = stage()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    print(f"imports                          {time.perf_counter() - started:.3f} s")
    text = SCRIPT.read_text("utf-8")
    print(f"lexer                            {median(lambda: lex(text, Dialect.POSTGRES))[0]:.3f} s")
    print(f"pglast.parse_sql alone           {median(lambda: pglast.parse_sql(text))[0]:.3f} s")
    seconds, script = median(lambda: parse.parse_script(text, Dialect.POSTGRES, SCRIPT.name))
    print(f"parse and classify, two cores    {seconds:.3f} s")
    threshold, parse.PARALLEL_MIN_STATEMENTS = parse.PARALLEL_MIN_STATEMENTS, 10**9
    print(f"parse and classify, one core     "
          f"{median(lambda: parse.parse_script(text, Dialect.POSTGRES, SCRIPT.name))[0]:.3f} s")
    parse.PARALLEL_MIN_STATEMENTS = threshold
    policy = load_policy(None)
    seconds, findings = median(lambda: check_script(script, policy))
    print(f"rules                            {seconds:.3f} s ({len(findings):,} findings)")
    file = FileReport(path=SCRIPT.name, dialect=Dialect.POSTGRES, script=script, findings=tuple(findings))
    report = CheckReport(policy=policy, files=(file,))
    print(f"JSON report                      {median(lambda: render_json.render(report))[0]:.3f} s")
    print(f"text report                      {median(lambda: render_text.render(report))[0]:.3f} s")


if __name__ == "__main__":
    main()
