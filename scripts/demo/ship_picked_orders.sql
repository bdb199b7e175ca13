-- Ship the picked orders: book their lines out of stock, then mark the orders shipped.
-- In `dbguard demo` (steps 2 and 3) this is the subtle script. It passes `dbguard check`: the write to
-- the protected stock table is waived, with its reason. But it trusts that the stock on hand covers
-- every picked line, and on the real data a few lines are oversold: stock goes negative, which breaks
-- the policy's invariant "stock on hand is never negative". The dry-run catches it; forced through
-- `dbguard run`, the integrity gate rolls it back by itself.

-- dbguard: allow protected-table-write reason="shipping books picked stock out (reviewed in OPS-2291)"
UPDATE stock
SET qty = qty - (
        SELECT sum(l.qty)
        FROM order_lines AS l
        JOIN orders AS o ON o.id = l.order_id
        WHERE o.status = 'picked'
          AND l.warehouse_id = stock.warehouse_id
          AND l.product_id = stock.product_id
    )
WHERE EXISTS (
        SELECT 1
        FROM order_lines AS l
        JOIN orders AS o ON o.id = l.order_id
        WHERE o.status = 'picked'
          AND l.warehouse_id = stock.warehouse_id
          AND l.product_id = stock.product_id
    );

UPDATE orders
SET status = 'shipped'
WHERE status = 'picked';
