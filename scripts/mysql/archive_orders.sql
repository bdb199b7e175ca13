-- dbguard: dialect=mysql
-- MySQL: archive shipped/cancelled orders older than 18 months.
-- Copies old finished orders into orders_archive, then deletes exactly the
-- rows that were copied. (The archived_at column is add_archived_at.sql's:
-- MySQL commits implicitly around DDL, so it is not mixed in here.)

-- No BEGIN/COMMIT here: dbguard runs the whole script as one transaction.

INSERT INTO orders_archive (id, customer, status, created_at, archived_at)
SELECT o.id, o.customer, o.status, o.created_at, NOW()
FROM orders AS o
WHERE o.status IN ('shipped', 'cancelled')
  AND o.created_at < NOW() - INTERVAL 18 MONTH;

DELETE FROM orders
WHERE status IN ('shipped', 'cancelled')
  AND created_at < NOW() - INTERVAL 18 MONTH
  AND id IN (SELECT id FROM orders_archive);
