"""The `drill` report: its model (a timed restore drill: RTO and RPO) and its renderers (text, markdown, json)."""
