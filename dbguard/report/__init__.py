"""Report model and pure renderers: each renderer is a function from a report to text."""
