-- 0020: tokens may expire (NULL: never); instance_keys holds this installation's random keys,
-- such as the one that makes notification cursors and billing report ids opaque (they are
-- sealed sequence numbers, so one tenant cannot estimate another's volume from them).
ALTER TABLE tokens ADD COLUMN expires_at TIMESTAMP;
CREATE TABLE instance_keys (
	name       TEXT PRIMARY KEY,
	key        BLOB NOT NULL,
	created_at TIMESTAMP NOT NULL
);
