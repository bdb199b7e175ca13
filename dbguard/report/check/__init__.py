"""The `check` report: its model, and one pure renderer per format (text, json, markdown, sarif, junit,
github, gitlab)."""
