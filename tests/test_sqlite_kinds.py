"""SQLite facts the rules rely on, shown on a real SQLite database, and what check says about them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dbguard.dialects import Dialect
from tests.conftest import findings_for

S = Dialect.SQLITE


def test_foreign_keys_off_inside_a_transaction_is_a_no_op_and_drop_table_cascades(tmp_path: Path) -> None:
    """The SQLite manual's schema-change recipe, run the way dbguard runs a script (in one transaction),
    deletes the child rows: this is why ban-disabling-integrity says so, instead of 'checks are off'."""
    db = sqlite3.connect(tmp_path / "shop.db", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id REFERENCES customers ON DELETE CASCADE)")
    db.execute("INSERT INTO customers VALUES (1)")
    db.execute("INSERT INTO orders VALUES (10, 1)")
    db.execute("BEGIN")
    db.execute("PRAGMA foreign_keys = OFF")
    assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)  # ignored inside the transaction
    db.execute("CREATE TABLE new_customers (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO new_customers SELECT id FROM customers")
    db.execute("DROP TABLE customers")
    db.execute("ALTER TABLE new_customers RENAME TO customers")
    db.execute("COMMIT")
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)  # the order went with the old table
    db.close()

    findings = findings_for("PRAGMA foreign_keys = OFF;\nDROP TABLE customers;", S)
    message = next(f.message for f in findings if f.rule_id == "ban-disabling-integrity")
    assert "does nothing inside a transaction" in message and "ON DELETE CASCADE" in message


def test_a_non_constant_default_fails_only_on_a_table_with_rows(tmp_path: Path) -> None:
    """Why ban-non-constant-default fires even though a dry-run on an empty copy would pass."""
    db = sqlite3.connect(tmp_path / "shop.db", isolation_level=None)
    db.execute("CREATE TABLE empty (id INTEGER PRIMARY KEY)")
    db.execute("ALTER TABLE empty ADD COLUMN at TEXT DEFAULT CURRENT_TIMESTAMP")  # no rows: accepted
    db.execute("CREATE TABLE filled (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO filled VALUES (1)")
    try:
        db.execute("ALTER TABLE filled ADD COLUMN at TEXT DEFAULT CURRENT_TIMESTAMP")
        raised = ""
    except sqlite3.OperationalError as error:
        raised = str(error)
    db.close()
    assert "non-constant default" in raised
    findings = findings_for("ALTER TABLE filled ADD COLUMN at TEXT DEFAULT CURRENT_TIMESTAMP;", S)
    assert any(f.rule_id == "ban-non-constant-default" for f in findings)
