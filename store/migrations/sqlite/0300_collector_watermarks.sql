-- 0300: the collectors' watermarks, kept in the shared store (storage.mode: remote) so that a
-- collector can be restarted on another machine and a Deriver in another process knows how far
-- every shard has collected. One row per region and shard (key "us-east-1/0of2"); shards is the
-- shard count the row was written under, so rows of an older sharding can be told apart.
CREATE TABLE collector_watermarks (
	key          TEXT PRIMARY KEY,
	shards       INTEGER NOT NULL,
	watermark_ms BIGINT NOT NULL,
	updated_ms   BIGINT NOT NULL
);
