-- 0200: alerting. alert_notifications is the dedup state: one row per project, alert and billing
-- period, inserted in the same transaction as its notification. alert_outbox holds the e-mails
-- and webhooks of notifications until they are delivered (retried with back-off, never dropped).
CREATE TABLE alert_notifications (
	project_id               TEXT NOT NULL,
	alert                    TEXT NOT NULL,
	period                   TEXT NOT NULL,
	alert_name               TEXT NOT NULL,
	team_id                  TEXT NOT NULL,
	notification_id          TEXT NOT NULL,
	fired_at                 TIMESTAMP NOT NULL,
	resolved_at              TIMESTAMP,
	resolved_notification_id TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (project_id, alert, period)
);
CREATE INDEX alert_notifications_open ON alert_notifications (project_id, alert) WHERE resolved_at IS NULL;

CREATE TABLE alert_outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	notification_id TEXT NOT NULL,
	channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
	payload         TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TIMESTAMP NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMP NOT NULL,
	sent_at         TIMESTAMP
);
CREATE INDEX alert_outbox_due ON alert_outbox (channel, next_attempt_at) WHERE sent_at IS NULL;
