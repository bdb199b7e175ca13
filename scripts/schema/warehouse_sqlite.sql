-- Warehouse schema and demo data for SQLite (NOT a maintenance script): the same tables as
-- warehouse.sql, for the README's examples and the tests. Load it with sqlite3 or Python's executescript().
PRAGMA foreign_keys = ON;
CREATE TABLE warehouses (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT,
  unit_price NUMERIC CHECK (unit_price >= 0), discontinued INTEGER NOT NULL DEFAULT 0);
CREATE TABLE stock (warehouse_id INTEGER NOT NULL REFERENCES warehouses (id),
  product_id INTEGER NOT NULL REFERENCES products (id), qty INTEGER NOT NULL CHECK (qty >= 0),
  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= qty),
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (warehouse_id, product_id));
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'shipped', 'cancelled')),
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line_no INTEGER NOT NULL, product_id INTEGER NOT NULL REFERENCES products (id),
  warehouse_id INTEGER NOT NULL REFERENCES warehouses (id), qty INTEGER NOT NULL CHECK (qty > 0),
  PRIMARY KEY (order_id, line_no));
CREATE TABLE reservations (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders (id),
  warehouse_id INTEGER NOT NULL, product_id INTEGER NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
  expires_at TEXT NOT NULL,
  FOREIGN KEY (warehouse_id, product_id) REFERENCES stock (warehouse_id, product_id));

-- Deterministic data: 3 warehouses, 40 products, a stock row for each pair, 30 orders with two lines
-- each, and reservations for every third order.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO warehouses (code, name) SELECT 'W' || i, 'Warehouse ' || i FROM n WHERE i <= 3;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO products (sku, name, unit_price) SELECT 'SKU-' || i, 'Product ' || i, i * 1.5 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO stock (warehouse_id, product_id, qty)
  SELECT w.i, p.i, 10 + (w.i * p.i) % 50 FROM n AS w, n AS p WHERE w.i <= 3 ORDER BY w.i, p.i;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO orders (customer, status)
  SELECT 'customer ' || i, CASE i % 3 WHEN 0 THEN 'open' WHEN 1 THEN 'shipped' ELSE 'cancelled' END
  FROM n WHERE i <= 30;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO order_lines (order_id, line_no, product_id, warehouse_id, qty)
  SELECT o.i, l.i, 1 + (o.i * l.i) % 40, 1 + o.i % 3, 1 + l.i FROM n AS o, n AS l
  WHERE o.i <= 30 AND l.i <= 2 ORDER BY o.i, l.i;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO reservations (order_id, warehouse_id, product_id, qty, expires_at)
  SELECT i, 1 + i % 3, 1 + i % 40, 1, printf('2026-11-%02d', 1 + i % 28) FROM n WHERE i <= 30 AND i % 3 = 0;
UPDATE stock SET reserved = (SELECT coalesce(sum(r.qty), 0) FROM reservations AS r
  WHERE r.warehouse_id = stock.warehouse_id AND r.product_id = stock.product_id);
