-- Add an index on stock.updated_at for the "recently changed stock" report.
-- Built CONCURRENTLY so inserts/updates on stock keep flowing; must run
-- outside a transaction block (psql autocommit, not inside BEGIN/COMMIT).

SET lock_timeout = '2s';

-- dbguard: allow ban-non-transactional-statement reason="index build must not block writers; runs as its own step"
CREATE INDEX CONCURRENTLY IF NOT EXISTS stock_updated_at_idx ON stock (updated_at);
