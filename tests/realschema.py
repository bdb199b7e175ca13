"""A database shaped like real ones, where the warehouse fixture is too tidy: several schemas, a table
partitioned on two levels with foreign keys on its partitions (and one partition without any), an audit
trigger that writes another table, a DO ALSO rule, a domain with a CHECK, a view with an INSTEAD rule,
an enum, sequences, quoted and non-ASCII names.

Shapes follow the public pagila sample database (a `payment` table partitioned by month, `customer`,
triggers maintaining `last_update`, a `year` domain), written anew and made smaller.
"""

from __future__ import annotations

import psycopg

SCHEMA_SQL = """
CREATE SCHEMA sales;
CREATE SCHEMA audit;
CREATE SCHEMA "Kundendienst";
CREATE DOMAIN sales.year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE TYPE sales.status AS ENUM ('open', 'paid', 'void');

CREATE TABLE sales.customer (id int PRIMARY KEY, name text NOT NULL, since sales.year NOT NULL);
CREATE TABLE sales.store (id int PRIMARY KEY, city text NOT NULL);

-- pay: partitioned by range of d; pay_2024 is itself partitioned by list of store_id.
CREATE TABLE sales.pay (id int NOT NULL, cust_id int NOT NULL, store_id int NOT NULL, amt numeric NOT NULL,
                        d date NOT NULL, status sales.status NOT NULL DEFAULT 'open') PARTITION BY RANGE (d);
CREATE TABLE sales.pay_2023 PARTITION OF sales.pay FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE sales.pay_2024 PARTITION OF sales.pay FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
  PARTITION BY LIST (store_id);
CREATE TABLE sales.pay_2024_s1 PARTITION OF sales.pay_2024 FOR VALUES IN (1);
CREATE TABLE sales.pay_2024_s2 PARTITION OF sales.pay_2024 FOR VALUES IN (2);
-- Foreign keys on the partitions, not on the parent (as pagila has them); pay_2023 has none.
ALTER TABLE sales.pay_2024_s1 ADD FOREIGN KEY (cust_id) REFERENCES sales.customer;
ALTER TABLE sales.pay_2024_s2 ADD FOREIGN KEY (cust_id) REFERENCES sales.customer;
ALTER TABLE sales.pay_2024_s2 ADD FOREIGN KEY (store_id) REFERENCES sales.store;
CREATE INDEX pay_2024_s1_cust ON sales.pay_2024_s1 (cust_id);
CREATE INDEX pay_id_d ON sales.pay (id, d);

-- An audit trigger that writes another table, in another schema.
CREATE TABLE audit.log (id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, at timestamptz DEFAULT now());
CREATE FUNCTION audit.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit.log (tbl, op) VALUES (TG_TABLE_NAME, TG_OP);
  RETURN NULL;
END $$;
CREATE TRIGGER customer_audit AFTER INSERT OR UPDATE OR DELETE ON sales.customer
  FOR EACH ROW EXECUTE FUNCTION audit.note();

-- A DO ALSO rule: every deleted store is remembered in another table.
CREATE TABLE audit.closed_store (id int, city text);
CREATE RULE store_closed AS ON DELETE TO sales.store DO ALSO
  INSERT INTO audit.closed_store VALUES (OLD.id, OLD.city);

-- A view with an INSTEAD rule that writes the table behind it.
CREATE VIEW sales.open_pay AS SELECT id, cust_id, amt, d FROM sales.pay WHERE status = 'open';
CREATE RULE open_pay_void AS ON DELETE TO sales.open_pay DO INSTEAD
  UPDATE sales.pay SET status = 'void' WHERE id = OLD.id AND d = OLD.d;

-- Quoted, non-ASCII names, and a sequence that a column's default uses.
CREATE SEQUENCE "Kundendienst"."Fall_Nr";
CREATE TABLE "Kundendienst"."Fälle" ("Nr" int PRIMARY KEY DEFAULT nextval('"Kundendienst"."Fall_Nr"'),
                                   "Kunde" int REFERENCES sales.customer, "Größe" text);
ALTER SEQUENCE "Kundendienst"."Fall_Nr" OWNED BY "Kundendienst"."Fälle"."Nr";
"""

DATA_SQL = """
INSERT INTO sales.customer SELECT i, 'customer ' || i, 2000 + i % 20 FROM generate_series(1, 50) i;
INSERT INTO sales.store VALUES (1, 'Lisboa'), (2, 'Zürich'), (3, 'Oslo');
INSERT INTO sales.pay SELECT i, 1 + i % 50, 1 + i % 2, (i % 7) * 1.25, date '2023-01-01' + (i % 700),
  (ARRAY['open', 'paid'])[1 + i % 2]::sales.status FROM generate_series(1, 1400) i;
INSERT INTO "Kundendienst"."Fälle" ("Kunde", "Größe") SELECT 1 + i % 50, 'Fall ' || i FROM generate_series(1, 30) i;
TRUNCATE audit.log;
"""

PARTITIONS = ("sales.pay_2023", "sales.pay_2024_s1", "sales.pay_2024_s2")


def load_real_schema(url: str) -> None:
    """Create the schema and its data in the (empty) database at `url`."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA_SQL)
        conn.execute(DATA_SQL)
