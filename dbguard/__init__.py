"""dbguard: make database maintenance scripts safe to run."""

__version__ = "0.1.0"
