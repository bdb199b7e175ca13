"""`dbguard stats`: a snapshot of a database's table sizes and shapes, for `check --stats` in CI."""

from __future__ import annotations

import typer

from dbguard.cli.base import OutputOption, TargetOption, app, emit


@app.command()
def stats(
    db: TargetOption,
    schema: list[str] = typer.Option(
        [], "--schema", "-s", help="Only the tables of this schema (repeat for more; PostgreSQL). Default: all."
    ),
    output: OutputOption = None,
) -> None:
    """Write the database's table statistics as JSON: what `check --stats` needs, so a CI job needs no
    database credentials.

    Per table: estimated rows (pg_class.reltuples; SQLite: count), bytes with indexes
    (pg_total_relation_size; SQLite: dbstat pages), partitions, columns and types, constraints and
    indexes; plus the names of views, sequences and indexes. No row values and no password: the URL
    is recorded without one. The database is opened read-only.

    Example:

    \b
        dbguard stats --db postgresql://readonly@db1:5432/shop > stats.json
        dbguard stats --db sqlite:///var/lib/app/app.db -o stats.json
        dbguard check scripts/ --stats stats.json
    """
    from dbguard.catalog.read import read_catalog
    from dbguard.targets.url import DatabaseUrl

    emit(read_catalog(DatabaseUrl.parse(db), schema).to_json(), output)
