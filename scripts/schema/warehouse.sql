-- Warehouse schema (NOT a maintenance script).
-- Reference schema for warehouses, products, stock, orders, order_lines and
-- reservations; the maintenance scripts in scripts/ assume these tables exist.

CREATE TABLE warehouses (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code text UNIQUE,
    name text
);

CREATE TABLE products (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku          text NOT NULL UNIQUE,
    name         text,
    unit_price   numeric(12,2) CHECK (unit_price >= 0),
    discontinued boolean NOT NULL DEFAULT false
);

CREATE TABLE stock (
    warehouse_id bigint NOT NULL REFERENCES warehouses (id),
    product_id   bigint NOT NULL REFERENCES products (id),
    qty          integer NOT NULL CHECK (qty >= 0),
    reserved     integer NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= qty),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, product_id)
);

CREATE TABLE orders (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer   text NOT NULL,
    status     text NOT NULL CHECK (status IN ('open', 'shipped', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_lines (
    order_id     bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no      integer NOT NULL,
    product_id   bigint NOT NULL REFERENCES products (id),
    warehouse_id bigint NOT NULL REFERENCES warehouses (id),
    qty          integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE reservations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES orders (id),
    warehouse_id bigint NOT NULL,
    product_id   bigint NOT NULL,
    qty          integer NOT NULL CHECK (qty > 0),
    expires_at   timestamptz NOT NULL,
    FOREIGN KEY (warehouse_id, product_id) REFERENCES stock (warehouse_id, product_id)
);
