-- The capture trigger is not called at all for the persister's own writes: its condition reads
-- the mark the persister sets on its transactions (invsync.origin = 'redis'), which spares one
-- PL/pgSQL call per stock row a persister batch updates. invsync_capture() keeps its own check.
CREATE OR REPLACE TRIGGER invsync_capture AFTER INSERT OR UPDATE OR DELETE ON inventory
    FOR EACH ROW
    WHEN (current_setting('invsync.origin', true) IS DISTINCT FROM 'redis')
    EXECUTE FUNCTION invsync_capture();
