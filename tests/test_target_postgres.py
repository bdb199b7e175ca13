"""The PostgreSQL target against the real server: each test gets a database of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest

from dbguard.errors import ConnectionFailure
from dbguard.targets.model import CheckResult, SchemaChange
from dbguard.targets.postgres import PostgresTarget, connect, connection_failure_message
from dbguard.targets.url import DatabaseUrl
from tests.warehouse import ADMIN_URL, scratch_database

SECRET = "S3cretPW!"
WAREHOUSE_TABLES = ["public.order_lines", "public.orders", "public.products", "public.reservations",
                    "public.stock", "public.warehouses"]  # fmt: skip


@pytest.fixture
def target(warehouse_pg: str) -> Iterator[PostgresTarget]:
    with connect(DatabaseUrl.parse(warehouse_pg)) as opened:
        yield opened


def admin(url: str, *statements: str) -> None:
    """Run statements on their own autocommit connection, as the test's superuser."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def amcheck_available() -> bool:
    with psycopg.connect(ADMIN_URL) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone() is not None


def with_port(url: str, port: int, password: str | None = None) -> DatabaseUrl:
    parsed = DatabaseUrl.parse(url).url.set(port=port)
    return DatabaseUrl(parsed.set(password=password) if password else parsed)


# -- connecting --


def test_connect_reports_the_server_version(pg_url: str) -> None:
    with connect(DatabaseUrl.parse(pg_url), application_name="dbguard-test") as target:
        assert target.server_major >= 12
        assert target.server_version.startswith(f"{target.server_major}.")
        assert target.conn.execute("SHOW application_name").fetchone() == ("dbguard-test",)
        assert not target.conn.autocommit
    assert target.conn.closed


def test_unreachable_port_is_a_connection_failure_without_the_password(pg_url: str) -> None:
    with pytest.raises(ConnectionFailure) as caught:
        connect(with_port(pg_url, 1, SECRET))
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert SECRET not in message
    assert "connection refused — is the server running?" in message
    assert message.startswith("cannot connect to postgresql://postgres@127.0.0.1:1/")
    assert "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_missing_database_is_named(pg_url: str) -> None:
    url = DatabaseUrl.parse(pg_url).with_database("dbguard_no_such_database")
    with pytest.raises(ConnectionFailure) as caught:
        connect(url)
    assert str(caught.value) == "database 'dbguard_no_such_database' does not exist on 127.0.0.1:5432"
    assert caught.value.exit_code == 4


def test_wrong_password_never_shows_the_password(pg_url: str) -> None:
    role = f"dbguard_pw_test_{uuid.uuid4().hex[:8]}"
    admin(pg_url, f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
    try:
        url = DatabaseUrl(DatabaseUrl.parse(pg_url).url.set(username=role, password="wrong-" + SECRET))
        try:
            connect(url).close()
        except ConnectionFailure as error:  # a server that checks passwords
            assert str(error) == f"password authentication failed for user '{role}' on 127.0.0.1:5432"
            assert SECRET not in str(error)
        # this machine trusts every local connection, so prove the masking on an unreachable port too
        with pytest.raises(ConnectionFailure) as caught:
            connect(with_port(str(url.url.render_as_string(hide_password=False)), 1))
        assert SECRET not in str(caught.value)
        assert caught.value.exit_code == 4
    finally:
        admin(pg_url, f"DROP ROLE IF EXISTS {role}")


def test_libpq_password_message_becomes_one_line() -> None:
    url = DatabaseUrl.parse(f"postgresql://alice:{SECRET}@db.example:6543/app")
    libpq = ('connection failed: connection to server at "10.0.0.5", port 6543 failed: FATAL:  '
             'password authentication failed for user "alice"')  # fmt: skip
    assert (
        connection_failure_message(url, libpq) == "password authentication failed for user 'alice' on db.example:6543"
    )


# -- names, sizes and schema --


def test_resolve_names_as_a_script_spells_them(target: PostgresTarget) -> None:
    target.conn.execute('CREATE SCHEMA inventory; CREATE TABLE inventory.stock (id int); CREATE TABLE "Audit" (id int)')
    target.conn.execute("CREATE VIEW stock_view AS SELECT * FROM stock")
    resolved = target.resolve(["stock", "public.stock", "inventory.stock", "Audit", "audit", "nothing",
                               "stock_view", "a.b.c.d", ""])  # fmt: skip
    assert resolved == {"stock": "public.stock", "public.stock": "public.stock",
                        "inventory.stock": "inventory.stock", "Audit": "public.Audit"}  # fmt: skip


def test_all_tables_lists_user_tables_sorted(target: PostgresTarget) -> None:
    assert target.all_tables() == WAREHOUSE_TABLES


def test_table_sizes_after_analyze(target: PostgresTarget) -> None:
    target.conn.execute("ANALYZE")
    sizes = target.table_sizes(["public.stock", "public.warehouses", "public.missing"])
    assert set(sizes) == {"public.stock", "public.warehouses"}
    assert sizes["public.stock"].estimated_rows == 120
    assert sizes["public.warehouses"].estimated_rows == 3
    assert sizes["public.stock"].bytes is not None and sizes["public.stock"].bytes > 0


def test_table_sizes_count_a_table_never_analyzed(target: PostgresTarget) -> None:
    target.conn.execute("CREATE TABLE fresh AS SELECT generate_series(1, 7) AS n")
    assert target.table_sizes(["public.fresh"])["public.fresh"].estimated_rows == 7


def test_schema_describes_columns_constraints_and_indexes(target: PostgresTarget) -> None:
    schema = target.schema()
    assert set(schema.tables) == set(WAREHOUSE_TABLES)
    columns = {column.name: column for column in schema.tables["public.stock"]}
    assert [c.name for c in schema.tables["public.stock"]] == ["warehouse_id", "product_id", "qty", "reserved",
                                                              "updated_at"]  # fmt: skip
    assert columns["qty"].type == "integer" and not columns["qty"].nullable
    assert columns["updated_at"].default == "now()"
    assert columns["updated_at"].type == "timestamp with time zone"
    assert schema.tables["public.warehouses"][0].default == "GENERATED ALWAYS AS IDENTITY"
    fk = schema.constraints["public.reservations.reservations_warehouse_id_product_id_fkey"]
    assert fk.kind == "foreign" and fk.valid
    assert fk.definition == "FOREIGN KEY (warehouse_id, product_id) REFERENCES stock(warehouse_id, product_id)"
    assert schema.constraints["public.stock.stock_pkey"].kind == "primary"
    assert schema.constraints["public.products.products_unit_price_check"].kind == "check"
    index = schema.indexes["public.stock_pkey"]
    assert index.table == "public.stock" and index.valid
    assert index.definition == "CREATE UNIQUE INDEX stock_pkey ON public.stock USING btree (warehouse_id, product_id)"


def test_schema_diff_shows_exactly_the_changes(target: PostgresTarget) -> None:
    before = target.schema()
    target.conn.execute("ALTER TABLE stock ADD COLUMN note text")
    target.conn.execute("CREATE INDEX stock_qty_idx ON stock (qty)")
    assert before.diff(target.schema()) == [
        SchemaChange("column added", "public.stock.note", after="text"),
        SchemaChange("index added", "public.stock_qty_idx",
                     after="CREATE INDEX stock_qty_idx ON public.stock USING btree (qty)"),
    ]  # fmt: skip


# -- content hashes --


def test_hash_ignores_physical_order_and_sees_one_changed_value(target: PostgresTarget) -> None:
    target.conn.execute("CREATE TABLE stock_copy (LIKE stock)")
    target.conn.execute("INSERT INTO stock_copy SELECT * FROM stock ORDER BY warehouse_id DESC, product_id DESC")
    stats = target.table_stats(["public.stock", "public.stock_copy"])
    original, copy = stats["public.stock"], stats["public.stock_copy"]
    assert original.rows == copy.rows == 120
    assert original.hash == copy.hash
    assert target.table_stats(["public.stock"])["public.stock"] == original

    target.conn.execute("UPDATE stock_copy SET qty = qty + 1 WHERE warehouse_id = 2 AND product_id = 17")
    changed = target.table_stats(["public.stock_copy"])["public.stock_copy"]
    assert changed.rows == 120
    assert changed.hash != original.hash


def test_hash_does_not_depend_on_session_settings(target: PostgresTarget) -> None:
    before = target.table_stats(["public.stock"])
    target.conn.execute("SET TimeZone = 'Asia/Tokyo'")
    target.conn.execute("SET DateStyle = 'German'")
    assert target.table_stats(["public.stock"]) == before
    assert target.conn.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)


def test_hash_of_an_empty_table_and_of_a_quoted_name(target: PostgresTarget) -> None:
    target.conn.execute('CREATE TABLE "Empty Table" (id int)')
    stats = target.table_stats(["public.Empty Table"])
    assert stats["public.Empty Table"].rows == 0
    assert stats["public.Empty Table"].hash == "0:0000000000000000"


def test_hash_inside_the_callers_transaction_sees_uncommitted_rows(target: PostgresTarget) -> None:
    target.conn.execute("DELETE FROM stock WHERE warehouse_id = 3")
    assert target.table_stats(["public.stock"])["public.stock"].rows == 80
    target.conn.rollback()
    assert target.table_stats(["public.stock"])["public.stock"].rows == 120


# -- foreign-key closure --


def test_foreign_key_closure_of_reservations(target: PostgresTarget) -> None:
    target.conn.execute("CREATE TABLE unrelated (id int PRIMARY KEY)")
    target.conn.execute("CREATE TABLE unrelated_child (id int REFERENCES unrelated (id))")
    assert target.foreign_key_closure(["public.reservations"]) == {
        "public.reservations", "public.orders", "public.stock", "public.warehouses", "public.products"}  # fmt: skip


def test_foreign_key_closure_takes_children_and_their_parents(target: PostgresTarget) -> None:
    closure = target.foreign_key_closure(["public.stock"])
    # reservations reference stock, and reservations need their orders; order_lines only reference stock's parents
    assert closure == {"public.stock", "public.warehouses", "public.products", "public.reservations",
                       "public.orders"}  # fmt: skip


# -- integrity checks --


def test_integrity_checks_pass_on_the_clean_warehouse(target: PostgresTarget) -> None:
    results = by_name(target.integrity_checks(WAREHOUSE_TABLES))
    assert list(results) == ["constraints valid", "deferred constraints", "indexes valid", "foreign keys hold",
                             "amcheck"]  # fmt: skip
    for name in ("constraints valid", "deferred constraints", "indexes valid", "foreign keys hold"):
        assert results[name].passed and not results[name].skipped, results[name]
    assert results["foreign keys hold"].detail == "7 foreign key(s) checked"
    assert results["amcheck"] == CheckResult("amcheck", False, "amcheck is not installed", skipped=True)


def test_broken_foreign_key_with_triggers_disabled_is_caught(warehouse_pg: str, target: PostgresTarget) -> None:
    admin(warehouse_pg, "ALTER TABLE stock DISABLE TRIGGER ALL",
          "INSERT INTO stock (warehouse_id, product_id, qty) VALUES (999, 1, 5)",
          "ALTER TABLE stock ENABLE TRIGGER ALL")  # fmt: skip
    result = by_name(target.integrity_checks(["public.stock"]))["foreign keys hold"]
    assert not result.passed and not result.skipped
    assert result.sample == (("public.stock.stock_warehouse_id_fkey", 999),)
    assert result.columns == ("foreign key", "warehouse_id")
    assert "public.stock.stock_warehouse_id_fkey" in result.detail and "e.g. warehouse_id=999" in result.detail
    assert "public.warehouses (id)" in result.detail


def test_broken_two_column_foreign_key_is_caught_from_the_referenced_side(
    warehouse_pg: str, target: PostgresTarget
) -> None:
    admin(warehouse_pg, "ALTER TABLE stock DISABLE TRIGGER ALL",
          "DELETE FROM stock WHERE (warehouse_id, product_id) = (1, 4)",  # reserved by order 3
          "ALTER TABLE stock ENABLE TRIGGER ALL")  # fmt: skip
    result = by_name(target.integrity_checks(["public.stock"]))["foreign keys hold"]
    assert not result.passed
    assert result.sample == (("public.reservations.reservations_warehouse_id_product_id_fkey", 1, 4),)
    assert result.columns == ("foreign key", "warehouse_id", "product_id")
    assert "public.reservations.reservations_warehouse_id_product_id_fkey" in result.detail
    assert "e.g. warehouse_id=1, product_id=4" in result.detail


def test_null_keys_are_not_violations_under_match_simple(target: PostgresTarget) -> None:
    target.conn.execute("CREATE TABLE notes (warehouse_id bigint, product_id bigint, "
                        "FOREIGN KEY (warehouse_id, product_id) REFERENCES stock)")  # fmt: skip
    target.conn.execute("INSERT INTO notes VALUES (999, NULL), (NULL, NULL)")
    result = by_name(target.integrity_checks(["public.notes"]))["foreign keys hold"]
    assert result.passed, result


def test_not_valid_constraint_is_reported(target: PostgresTarget) -> None:
    target.conn.execute("ALTER TABLE stock ADD CONSTRAINT stock_qty_small CHECK (qty < 1000) NOT VALID")
    result = by_name(target.integrity_checks(["public.stock"]))["constraints valid"]
    assert not result.passed and not result.skipped
    assert "public.stock.stock_qty_small" in result.detail
    assert result.sample == (("public.stock.stock_qty_small", "CHECK ((qty < 1000)) NOT VALID"),)


def test_invalid_index_is_reported(warehouse_pg: str) -> None:
    with connect(DatabaseUrl.parse(warehouse_pg), autocommit=True) as target:
        with pytest.raises(psycopg.errors.UniqueViolation):
            target.conn.execute("CREATE UNIQUE INDEX CONCURRENTLY stock_qty_unique ON stock (qty)")
        results = by_name(target.integrity_checks(["public.stock"], install_amcheck=True))
    assert not results["indexes valid"].passed
    assert "public.stock_qty_unique" in results["indexes valid"].detail
    if amcheck_available():  # an invalid index is not handed to bt_index_check
        assert results["amcheck"].passed, results["amcheck"]


def test_deferred_violation_fails_without_aborting_the_transaction(target: PostgresTarget) -> None:
    target.conn.execute(
        "CREATE TABLE pallets (warehouse_id bigint REFERENCES warehouses DEFERRABLE INITIALLY DEFERRED)"
    )
    target.conn.commit()
    target.conn.execute("INSERT INTO pallets VALUES (999)")
    result = by_name(target.integrity_checks(["public.pallets"]))["deferred constraints"]
    assert not result.passed and not result.skipped
    assert "pallets_warehouse_id_fkey" in result.detail
    assert result.sample == (("pallets_warehouse_id_fkey",),)
    assert target.query("SELECT count(*) FROM pallets") == [(1,)]  # the caller's transaction goes on
    target.conn.rollback()


def test_amcheck_runs_when_it_may_be_installed(target: PostgresTarget) -> None:
    if not amcheck_available():
        pytest.skip("the amcheck extension is not available on this server")
    result = by_name(target.integrity_checks(WAREHOUSE_TABLES, install_amcheck=True))["amcheck"]
    assert result.passed and not result.skipped, result
    assert result.detail == "bt_index_check passed on 8 btree index(es)"


def test_amcheck_that_cannot_be_installed_is_skipped_not_passed(pg_url: str) -> None:
    role = f"dbguard_plain_{uuid.uuid4().hex[:8]}"
    admin(pg_url, f"CREATE ROLE {role} LOGIN", "CREATE TABLE t (id int PRIMARY KEY)", f"GRANT SELECT ON t TO {role}")
    try:
        url = DatabaseUrl(DatabaseUrl.parse(pg_url).url.set(username=role))
        with connect(url) as target:
            results = by_name(target.integrity_checks(["public.t"], install_amcheck=True))
            assert results["amcheck"].skipped and not results["amcheck"].passed
            assert results["amcheck"].detail.startswith("amcheck could not be installed: ")
            assert results["foreign keys hold"].passed  # the failed install left the transaction usable
    finally:
        admin(pg_url, f"DROP OWNED BY {role}", f"DROP ROLE IF EXISTS {role}")


def test_a_check_that_cannot_run_fails_with_the_reason(warehouse_pg: str) -> None:
    role = f"dbguard_reader_{uuid.uuid4().hex[:8]}"
    admin(warehouse_pg, f"CREATE ROLE {role} LOGIN", f"GRANT SELECT ON stock TO {role}")
    try:
        url = DatabaseUrl(DatabaseUrl.parse(warehouse_pg).url.set(username=role))
        with connect(url) as target:
            result = by_name(target.integrity_checks(["public.stock"]))["foreign keys hold"]
            assert not result.skipped and not result.passed  # fail closed: not run is not passed
            assert "permission denied" in result.detail
    finally:
        admin(warehouse_pg, f"DROP OWNED BY {role}", f"DROP ROLE IF EXISTS {role}")


# -- queries --


def test_query_returns_at_most_limit_rows_and_changes_nothing(target: PostgresTarget) -> None:
    assert target.query("SELECT id FROM products ORDER BY id", limit=3) == [(1,), (2,), (3,)]
    assert target.query("DELETE FROM order_lines RETURNING 1", limit=2) == [(1,), (1,)]
    assert target.query("SELECT count(*) FROM order_lines") == [(60,)]
    assert target.query("SET LOCAL work_mem = '8MB'") == []


def test_query_error_leaves_the_callers_transaction_usable(target: PostgresTarget) -> None:
    target.conn.execute("DELETE FROM stock WHERE warehouse_id = 2")
    with pytest.raises(psycopg.errors.UndefinedTable):
        target.query("SELECT * FROM no_such_table")
    assert target.query("SELECT count(*) FROM stock") == [(80,)]
    target.conn.rollback()


def test_the_gates_foreign_key_check_follows_inheritance_as_the_server_does() -> None:
    """A foreign key binds its own table's rows, not its INHERITS children's, and only the referenced table's
    own rows satisfy it: a child row with no parent is legal, a key whose row only a child holds is an orphan."""
    with scratch_database() as url:
        admin(url, "CREATE TABLE region (id int PRIMARY KEY)", "CREATE TABLE region_eu () INHERITS (region)",
              "CREATE TABLE depot (id int PRIMARY KEY, region_id int REFERENCES region)",
              "CREATE TABLE depot_old () INHERITS (depot)",
              "INSERT INTO region VALUES (1)", "INSERT INTO region_eu VALUES (2)",
              "INSERT INTO depot VALUES (1, 1)", "INSERT INTO depot_old VALUES (9, 4242)")  # fmt: skip
        with closing(connect(DatabaseUrl.parse(url), read_only=True)) as target:
            assert by_name(target.integrity_checks(["public.depot"]))["foreign keys hold"].passed
        admin(url, "SET session_replication_role = replica; INSERT INTO depot VALUES (2, 2)")
        with closing(connect(DatabaseUrl.parse(url), read_only=True)) as target:
            result = by_name(target.integrity_checks(["public.depot"]))["foreign keys hold"]
        assert not result.passed and result.sample == (("public.depot.depot_region_id_fkey", 2),), result
