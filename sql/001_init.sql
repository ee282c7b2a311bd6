-- The table other systems read and write. No CHECK (quantity >= 0): a back-office reduction racing
-- with sales can legitimately leave stock negative (oversold); that must be representable and
-- reported, and must never block the persister.
CREATE TABLE IF NOT EXISTS inventory (
    sku        text        PRIMARY KEY,
    quantity   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, SKU) applied from the Redis event stream. The primary key makes a replayed
-- event a no-op and keeps idempotency for ever, beyond the Redis retention window.
CREATE TABLE IF NOT EXISTS invsync_ledger (
    event_id    text        NOT NULL,  -- "<kind>:<order or request id>"
    sku         text        NOT NULL,
    delta       bigint      NOT NULL,
    kind        text        NOT NULL,
    ref         text        NOT NULL,
    stream_id   text        NOT NULL,  -- Redis stream entry that carried it
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, sku)
);
CREATE INDEX IF NOT EXISTS invsync_ledger_sku ON invsync_ledger (sku);

CREATE TABLE IF NOT EXISTS invsync_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
