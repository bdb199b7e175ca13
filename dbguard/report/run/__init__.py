"""The `run` report: its model (the plan, each step, the outcome) and its renderers (text, json)."""
