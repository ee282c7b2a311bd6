-- TRUNCATE fires no row triggers, so `TRUNCATE inventory` would empty the table without a word to
-- the syncer, and Redis would go on selling stock that no longer exists. A statement trigger that
-- runs before it records a delete for every row, as `DELETE FROM inventory` would. TRUNCATE holds
-- the table's ACCESS EXCLUSIVE lock by then, so no writer can slip a row in between this read and
-- the truncation.
CREATE OR REPLACE FUNCTION invsync_capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('invsync.origin', true) = 'redis' THEN
    RETURN NULL;
  END IF;
  INSERT INTO invsync_outbox (sku, kind, delta) SELECT sku, 'D', -quantity FROM inventory;
  PERFORM pg_notify('invsync_outbox', '');
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER invsync_capture_truncate BEFORE TRUNCATE ON inventory
    FOR EACH STATEMENT EXECUTE FUNCTION invsync_capture_truncate();
