-- dbguard: dialect=sqlite
-- SQLite: release reservations that expired before November 4, and give their stock back.
-- The README's dry-run and run examples run this on scripts/schema/warehouse_sqlite.sql.

DELETE FROM reservations WHERE expires_at < '2026-11-04';

UPDATE stock
SET reserved = (
    SELECT coalesce(sum(r.qty), 0) FROM reservations AS r
    WHERE r.warehouse_id = stock.warehouse_id AND r.product_id = stock.product_id
)
WHERE reserved > 0;
