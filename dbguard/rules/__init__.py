"""Safety rules. Each module in this package is one rule; importing the package registers them all."""

from __future__ import annotations

import importlib
import pkgutil

from dbguard.registry import RULES, Rule, RuleContext, Severity, Violation, rule

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["RULES", "Rule", "RuleContext", "Severity", "Violation", "rule"]
