"""Database targets: one interface over PostgreSQL and SQLite, reached through SQLAlchemy URLs."""
