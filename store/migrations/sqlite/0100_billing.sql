-- 0100: the billing outbox (one row per project, metric, hour and revision), the per-metric
-- carry of fractional remainders, the closed-hour watermark and legacy subscription items.
CREATE TABLE billing_reports (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id      TEXT NOT NULL,
	metric          TEXT NOT NULL,
	hour            TIMESTAMP NOT NULL,
	revision        INTEGER NOT NULL,
	amount          TEXT NOT NULL,
	quantity        INTEGER NOT NULL,
	identifier      TEXT NOT NULL UNIQUE,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'carried', 'held', 'failed', 'expired')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMP NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	stripe_ref      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMP NOT NULL,
	sent_at         TIMESTAMP,
	UNIQUE (project_id, metric, hour, revision)
);
CREATE INDEX billing_reports_due ON billing_reports (state, next_attempt_at);
CREATE INDEX billing_reports_hour ON billing_reports (hour);

CREATE TABLE billing_carry (
	project_id TEXT NOT NULL,
	metric     TEXT NOT NULL,
	amount     TEXT NOT NULL,
	quantity   INTEGER NOT NULL,
	PRIMARY KEY (project_id, metric)
);

CREATE TABLE billing_watermark (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	hour TIMESTAMP NOT NULL
);

CREATE TABLE billing_subscription_items (
	project_id TEXT NOT NULL,
	metric     TEXT NOT NULL,
	item_id    TEXT NOT NULL,
	PRIMARY KEY (project_id, metric)
);
