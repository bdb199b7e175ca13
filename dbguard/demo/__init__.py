"""`dbguard demo`: the postmortem's story told end to end on a generated warehouse database.

- `schema`: the warehouse's tables, for SQLite and PostgreSQL;
- `data`: the deterministic rows (a seeded `random.Random`), and loading them;
- `database`: where the demo's database lives (a SQLite file, or a PostgreSQL database of its own, dropped
  afterwards);
- `story`: the five steps, each calling the real pipeline (check, dry-run, run, restore) and its renderers.
"""
