-- Add an index on stock.updated_at for the "recently changed stock" report.
-- Built CONCURRENTLY so inserts/updates on stock keep flowing. It cannot run
-- inside a transaction block: dbguard runs it as a step of its own, in
-- autocommit (the default policy allows that for online statements; check
-- says so with an info finding, require-separate-step).

SET lock_timeout = '2s';

CREATE INDEX CONCURRENTLY IF NOT EXISTS stock_updated_at_idx ON stock (updated_at);
