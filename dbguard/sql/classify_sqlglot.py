"""placeholder until helper finishes"""
from __future__ import annotations
from typing import Any
def classify(expression: Any, dialect: Any) -> Any:
    return None
