"""The `dry-run` report: its model and one pure renderer per format (text, markdown, html, json)."""
