-- Expire stale reservations (the safe replacement for "reset stale reservations").
-- Deletes only reservations that expired more than a day ago, then recomputes
-- stock.reserved from the reservations that remain, touching only rows whose
-- value actually changes. Short lock/statement timeouts so it never queues
-- behind (or in front of) live order traffic.

SET lock_timeout = '2s';
SET statement_timeout = '60s';

DELETE FROM reservations
WHERE expires_at < now() - interval '1 day';

UPDATE stock AS s
SET reserved = (
        SELECT coalesce(sum(r.qty), 0)
        FROM reservations AS r
        WHERE r.warehouse_id = s.warehouse_id
          AND r.product_id = s.product_id
    ),
    updated_at = now()
WHERE s.reserved <> (
        SELECT coalesce(sum(r.qty), 0)
        FROM reservations AS r
        WHERE r.warehouse_id = s.warehouse_id
          AND r.product_id = s.product_id
    );
