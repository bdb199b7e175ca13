-- dbguard: dialect=mysql
-- MySQL: add an archived_at marker column to orders (instant metadata change, no table copy).
-- DDL commits implicitly in MySQL, so it lives in a script of its own, run before archive_orders.sql:
-- mixed with the archive's INSERT and DELETE, it would commit them halfway (ban-mixed-ddl-and-dml).

ALTER TABLE orders ADD COLUMN archived_at DATETIME NULL, ALGORITHM=INSTANT;
