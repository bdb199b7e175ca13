-- Repair negative stock quantities in warehouse 3 (ticket OPS-1142).
-- A scanner bug in warehouse 3 booked returns as negative quantities; clamp
-- exactly those rows to zero (and drop their reservations count with them)
-- and leave every other warehouse untouched.
-- NB: on the current schema the qty >= 0 CHECK prevents such rows, so this is
-- expected to update 0 rows; it is kept for databases restored from old dumps.

SET lock_timeout = '2s';
SET statement_timeout = '30s';

UPDATE stock
SET qty = 0,
    reserved = 0,
    updated_at = now()
WHERE qty < 0
  AND warehouse_id = 3;
