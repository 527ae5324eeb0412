-- The entity stores' schema: users and profiles, products, orders with their items and status history,
-- and the transactional outbox the relay drains into the events stream.
-- Money is numeric without a declared scale: stored exactly as given, never rounded.

CREATE TABLE users (
    user_id      text PRIMARY KEY,
    email        text NOT NULL,
    name         text NOT NULL,
    user_segment text NOT NULL DEFAULT 'standard',
    created_at   timestamptz NOT NULL
);

-- Emails are unique case-insensitively; the repository stores them lowercased too.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE user_profiles (
    user_id    text PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
    first_name text,
    last_name  text,
    phone      text
);

CREATE TABLE products (
    product_id text PRIMARY KEY,
    name       text NOT NULL,
    category   text NOT NULL,
    price      numeric NOT NULL CONSTRAINT products_price_check CHECK (price >= 0),
    -- The last line of defence: create_order_with_items' conditional decrement never lets it fail.
    stock      integer NOT NULL CONSTRAINT products_stock_check CHECK (stock >= 0),
    created_at timestamptz NOT NULL
);

CREATE INDEX products_category_idx ON products (category, name);

CREATE TABLE orders (
    order_id     text PRIMARY KEY,
    user_id      text NOT NULL CONSTRAINT orders_user_id_fkey REFERENCES users (user_id),
    status       text NOT NULL
                 CHECK (status IN ('created', 'paid', 'shipped', 'completed', 'cancelled')),
    total_amount numeric NOT NULL CHECK (total_amount >= 0),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      integer NOT NULL CHECK (version >= 1)
);

CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC);
CREATE INDEX orders_status_idx ON orders (status, updated_at);

CREATE TABLE order_items (
    order_id   text NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    line_no    integer NOT NULL,
    product_id text NOT NULL CONSTRAINT order_items_product_id_fkey REFERENCES products (product_id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    price      numeric NOT NULL CHECK (price >= 0),
    PRIMARY KEY (order_id, line_no),
    UNIQUE (order_id, product_id)
);

-- One row per status an order entered, at the time it did: what the daily analytics count.
CREATE TABLE order_status_changes (
    order_id   text NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    version    integer NOT NULL,
    status     text NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, version)
);

CREATE INDEX order_status_changes_time_idx ON order_status_changes (changed_at);

-- Written in the same transaction as the change it describes; published_at is set after the relay
-- has published the event (publish, then mark: a crash between republishes the same event_id).
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    partition_key text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
