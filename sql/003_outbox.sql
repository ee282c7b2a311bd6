-- Change capture: every change made to `inventory` by anything other than invsync's persister (a
-- back office, an ERP import, a merchant tool) is recorded here by a trigger, in the writer's own
-- transaction, and applied to Redis by the syncer as a delta, in order, exactly once.
--
-- Ordering. `id` comes from a sequence when the row is written, so ids are not in commit order
-- across transactions: a reader that skipped past an id still in an open transaction would never
-- see it. Each row therefore carries its transaction's id (`xid`), and the syncer reads only rows
-- of transactions older than every transaction still running (pg_snapshot_xmin), in (xid, id)
-- order: that set never grows behind the reader's position. For one SKU, ids *are* in commit
-- order (writers of one row wait for each other's commit before the trigger runs), which is what
-- cache fills rely on: the highest id of a SKU visible in a snapshot says exactly which of its
-- changes the snapshot includes.
CREATE TABLE IF NOT EXISTS invsync_outbox (
    id         bigserial   PRIMARY KEY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    sku        text        NOT NULL,
    kind       "char"      NOT NULL,  -- 'U' update (delta), 'I' insert (delta = quantity), 'D' delete
    delta      bigint      NOT NULL,  -- U: new - old; I: the new row's quantity; D: minus the old one
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS invsync_outbox_order ON invsync_outbox (xid, id);
CREATE INDEX IF NOT EXISTS invsync_outbox_sku ON invsync_outbox (sku, id);

CREATE OR REPLACE FUNCTION invsync_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The persister marks its transactions: those changes came from Redis and must not echo back.
  IF current_setting('invsync.origin', true) = 'redis' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO invsync_outbox (sku, kind, delta) VALUES (NEW.sku, 'I', NEW.quantity);
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO invsync_outbox (sku, kind, delta) VALUES (OLD.sku, 'D', -OLD.quantity);
  ELSIF NEW.sku IS DISTINCT FROM OLD.sku THEN
    INSERT INTO invsync_outbox (sku, kind, delta)
    VALUES (OLD.sku, 'D', -OLD.quantity), (NEW.sku, 'I', NEW.quantity);
  ELSIF NEW.quantity IS DISTINCT FROM OLD.quantity THEN
    INSERT INTO invsync_outbox (sku, kind, delta)
    VALUES (NEW.sku, 'U', NEW.quantity - OLD.quantity);
  ELSE
    RETURN NULL;
  END IF;
  -- Notifications with the same payload are merged at commit: one per transaction.
  PERFORM pg_notify('invsync_outbox', '');
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER invsync_capture AFTER INSERT OR UPDATE OR DELETE ON inventory
    FOR EACH ROW EXECUTE FUNCTION invsync_capture();
