-- "Optimize the database" -- weekly stock cleanup.
-- This is the script from the Stockpocalypse postmortem (2024-06-06), kept
-- verbatim as a known-bad example. DO NOT RUN IT. Every statement below is a
-- hazard dbguard should flag.

-- make the cleanup go faster, skip triggers and FK checks
SET session_replication_role = replica;

-- reset stale reservations
DELETE FROM reservations;

BEGIN;

-- reservations are gone now, so nothing is reserved
UPDATE stock SET reserved = 0 WHERE 1=1;

-- old order lines are not needed anymore
TRUNCATE order_lines CASCADE;

-- don't want the audit trigger firing on every row
ALTER TABLE stock DISABLE TRIGGER ALL;

-- bigger quantities for the new warehouse
ALTER TABLE stock ALTER COLUMN qty TYPE bigint;

COMMIT;

-- drop junk orders
DO $$
BEGIN
    DELETE FROM orders WHERE status = status;
END
$$;

-- speed things up
CREATE INDEX stock_updated_idx ON stock (updated_at);

-- reclaim disk space
VACUUM FULL stock;

-- rebuild indexes while we're at it
REINDEX TABLE stock;
