-- Cancel open orders older than two years, and give their customers' lookups an index.
-- An example for `dbguard check --stats` in the README: it is checked against
-- docs/examples/warehouse-stats.json, the table statistics of a warehouse with 300,000 orders.
SET lock_timeout = '2s';
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX warehouses_name ON warehouses (name);
ALTER TABLE orders ALTER COLUMN customer TYPE varchar(200);
UPDATE orders SET status = 'cancelled' WHERE status = 'open' AND created_at < now() - interval '2 years';
DELETE FROM reservatons WHERE order_id = 42;
