"""Sandboxes for dry-runs: a throwaway database holding a scoped copy of the target, always removed."""

from dbguard.sandbox.base import PROVIDERS, Sandbox, open_sandbox, provider_for
from dbguard.sandbox.copy import CopyStats, copy_scoped

__all__ = ["PROVIDERS", "CopyStats", "Sandbox", "copy_scoped", "open_sandbox", "provider_for"]
