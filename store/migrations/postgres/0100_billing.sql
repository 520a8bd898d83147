-- 0100: the billing outbox (one row per project, metric, hour and revision), the per-metric
-- carry of fractional remainders, the closed-hour watermark and legacy subscription items.
CREATE TABLE billing_reports (
	id              BIGSERIAL PRIMARY KEY,
	project_id      TEXT NOT NULL,
	metric          TEXT NOT NULL,
	hour            TIMESTAMPTZ NOT NULL,
	revision        INTEGER NOT NULL,
	amount          NUMERIC NOT NULL,
	quantity        BIGINT NOT NULL,
	identifier      TEXT NOT NULL UNIQUE,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'carried', 'held', 'failed', 'expired')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMPTZ NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	stripe_ref      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMPTZ NOT NULL,
	sent_at         TIMESTAMPTZ,
	UNIQUE (project_id, metric, hour, revision)
);
CREATE INDEX billing_reports_due ON billing_reports (state, next_attempt_at);
CREATE INDEX billing_reports_hour ON billing_reports (hour);

CREATE TABLE billing_carry (
	project_id TEXT NOT NULL,
	metric     TEXT NOT NULL,
	amount     NUMERIC NOT NULL,
	quantity   BIGINT NOT NULL,
	PRIMARY KEY (project_id, metric)
);

CREATE TABLE billing_watermark (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	hour TIMESTAMPTZ NOT NULL
);

CREATE TABLE billing_subscription_items (
	project_id TEXT NOT NULL,
	metric     TEXT NOT NULL,
	item_id    TEXT NOT NULL,
	PRIMARY KEY (project_id, metric)
);
