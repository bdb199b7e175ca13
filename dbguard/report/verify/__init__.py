"""Renderers of `dbguard verify`'s report: text, JSON, Prometheus text exposition."""
