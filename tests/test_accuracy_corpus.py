"""bench/accuracy's corpus is well formed: enough cases in every dialect, hazards and safe counterparts in
each, every case with a source and a reason, names unique. (The figures themselves are measured by
`bench/accuracy/score.py`, not asserted here.)"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

SCORE = Path(__file__).parent.parent / "bench" / "accuracy" / "score.py"


def _score_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("accuracy_score", SCORE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_the_corpus_covers_every_dialect_with_hazards_and_safe_scripts() -> None:
    cases = _score_module().load_cases()
    assert len(cases) >= 150
    per_dialect = Counter((c.dialect, c.label) for c in cases)
    for dialect in ("postgres", "sqlite", "mysql"):
        assert per_dialect[(dialect, "hazard")] >= 20, dialect
        assert per_dialect[(dialect, "safe")] >= 20, dialect
    for case in cases:
        assert case.source.strip() and case.why.strip() and case.sql.strip(), case.name
        assert case.name.startswith({"postgres": "pg-", "sqlite": "sqlite-", "mysql": "mysql-"}[case.dialect])
