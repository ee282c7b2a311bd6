-- The SQLite store's schema: the same tables and the same change capture as PostgreSQL's
-- (sql/001_init.sql, sql/003_outbox.sql), in SQLite's dialect.
CREATE TABLE IF NOT EXISTS inventory (
    sku        TEXT    PRIMARY KEY,
    quantity   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS invsync_ledger (
    event_id    TEXT    NOT NULL,
    sku         TEXT    NOT NULL,
    delta       INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    ref         TEXT    NOT NULL,
    stream_id   TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (event_id, sku)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invsync_ledger_sku ON invsync_ledger (sku);

CREATE TABLE IF NOT EXISTS invsync_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- SQLite has one writer at a time, so ids (AUTOINCREMENT: never reused) are in commit order and
-- a reader never sees a later id before an earlier one: `xid` is always 0.
CREATE TABLE IF NOT EXISTS invsync_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    xid        INTEGER NOT NULL DEFAULT 0,
    sku        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,  -- 'U' update (delta), 'I' insert (delta = quantity), 'D' delete
    delta      INTEGER NOT NULL,
    changed_at REAL    NOT NULL DEFAULT (julianday('now'))
);
CREATE INDEX IF NOT EXISTS invsync_outbox_sku ON invsync_outbox (sku, id);

-- The persister's own writes are captured too (SQLite has no session variables a trigger could
-- test) and deleted again inside the persister's transaction: no echo ever commits.
CREATE TRIGGER IF NOT EXISTS invsync_capture_insert AFTER INSERT ON inventory BEGIN
  INSERT INTO invsync_outbox (sku, kind, delta) VALUES (NEW.sku, 'I', NEW.quantity);
END;
CREATE TRIGGER IF NOT EXISTS invsync_capture_delete AFTER DELETE ON inventory BEGIN
  INSERT INTO invsync_outbox (sku, kind, delta) VALUES (OLD.sku, 'D', -OLD.quantity);
END;
CREATE TRIGGER IF NOT EXISTS invsync_capture_rename AFTER UPDATE ON inventory
WHEN NEW.sku IS NOT OLD.sku BEGIN
  INSERT INTO invsync_outbox (sku, kind, delta) VALUES (OLD.sku, 'D', -OLD.quantity);
  INSERT INTO invsync_outbox (sku, kind, delta) VALUES (NEW.sku, 'I', NEW.quantity);
END;
CREATE TRIGGER IF NOT EXISTS invsync_capture_update AFTER UPDATE ON inventory
WHEN NEW.sku IS OLD.sku AND NEW.quantity IS NOT OLD.quantity BEGIN
  INSERT INTO invsync_outbox (sku, kind, delta) VALUES (NEW.sku, 'U', NEW.quantity - OLD.quantity);
END;
