-- A random identity, created once, that the syncer keeps in Redis beside its cursor: a cursor
-- written against another database (Redis pointed at a new cluster, an emptied and re-created
-- database) is recognised and not used, so no change is skipped or pruned unapplied. A restore
-- keeps the identity; the syncer also checks that the cursor's transaction id exists here.
INSERT INTO invsync_meta (key, value) VALUES ('database_id', gen_random_uuid()::text)
ON CONFLICT (key) DO NOTHING;
