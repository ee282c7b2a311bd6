-- A random identity, created once, that the syncer keeps in Redis beside its cursor (see
-- sql/006_database_id.sql). A restored file keeps it; the syncer also checks that the cursor's
-- id is not above the highest id this file ever gave an outbox row (sqlite_sequence).
INSERT OR IGNORE INTO invsync_meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
