-- Require strictly positive product prices.
-- Adds the CHECK as NOT VALID (brief lock, no table scan), then validates it
-- separately, which scans under a SHARE UPDATE EXCLUSIVE lock and does not
-- block reads or writes.

SET lock_timeout = '2s';

ALTER TABLE products
    ADD CONSTRAINT products_price_positive CHECK (unit_price > 0) NOT VALID;

ALTER TABLE products VALIDATE CONSTRAINT products_price_positive;
