-- Require strictly positive product prices.
-- Step 1 adds the CHECK as NOT VALID: a brief ACCESS EXCLUSIVE lock, no table scan, and new rows are
-- checked at once. Its transaction commits at the step line, releasing that lock.
-- Step 2 validates the existing rows in a transaction of its own, under a SHARE UPDATE EXCLUSIVE lock
-- that blocks neither reads nor writes. (Validated in the same transaction as the ADD, the scan would
-- run under the ADD's ACCESS EXCLUSIVE lock.)

SET lock_timeout = '2s';

ALTER TABLE products
    ADD CONSTRAINT products_price_positive CHECK (unit_price > 0) NOT VALID;

-- dbguard: step

ALTER TABLE products VALIDATE CONSTRAINT products_price_positive;
