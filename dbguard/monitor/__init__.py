"""Monitoring a live database: `dbguard verify` (integrity checks, read-only, and backup freshness)."""
