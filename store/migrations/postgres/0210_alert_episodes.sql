-- 0210: alert episodes replace the per-period dedup rows of 0200. An episode is one stretch of
-- an alert firing for a project, within one billing period and under one budget limit; it has
-- exactly one firing notification and, once the condition has really cleared, one resolution.
-- At most one episode of a (project, alert) is open (ended_at IS NULL): the unique index makes
-- replicas that race for the same transition agree. clear_since is when the open episode's
-- alert was first seen not firing (NULL while it fires), so the resolve hold survives restarts.
CREATE TABLE alert_episodes (
	id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	project_id               TEXT NOT NULL,
	team_id                  TEXT NOT NULL,
	alert                    TEXT NOT NULL,
	alert_name               TEXT NOT NULL,
	type                     TEXT NOT NULL,
	severity                 TEXT NOT NULL,
	period                   TEXT NOT NULL,
	limit_usd                TEXT NOT NULL DEFAULT '',
	started_at               TIMESTAMPTZ NOT NULL,
	notification_id          TEXT NOT NULL,
	clear_since              TIMESTAMPTZ,
	ended_at                 TIMESTAMPTZ,
	end_reason               TEXT NOT NULL DEFAULT '',
	resolved_notification_id TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alert_episodes_open ON alert_episodes (project_id, alert) WHERE ended_at IS NULL;
CREATE INDEX alert_episodes_project ON alert_episodes (project_id, started_at);

-- The rows of 0200 become episodes. The shipped budget alerts now carry a threshold label, which
-- is part of an alert's identity; their old identities get it, so an alert that is firing during
-- the upgrade is not notified a second time. The limit of an old row is unknown (''): the next
-- evaluation adopts the limit in force instead of starting a new episode. Of several open rows of
-- one alert (one per period) the newest stays open.
INSERT INTO alert_episodes (project_id, team_id, alert, alert_name, type, severity, period, limit_usd,
	started_at, notification_id, ended_at, end_reason, resolved_notification_id)
SELECT a.project_id, a.team_id,
	CASE a.alert
		WHEN '{alertname="ProjectBudgetWarning"}' THEN '{alertname="ProjectBudgetWarning", threshold="80"}'
		WHEN '{alertname="ProjectBudgetExceeded"}' THEN '{alertname="ProjectBudgetExceeded", threshold="100"}'
		ELSE a.alert END,
	a.alert_name, COALESCE(n.type, 'alert'), COALESCE(n.severity, 'warning'), a.period, '',
	a.fired_at, a.notification_id,
	CASE WHEN a.resolved_at IS NOT NULL THEN a.resolved_at
		WHEN a.period < (SELECT MAX(b.period) FROM alert_notifications b
			WHERE b.project_id = a.project_id AND b.alert = a.alert AND b.resolved_at IS NULL) THEN a.fired_at
		ELSE NULL END,
	CASE WHEN a.resolved_at IS NOT NULL THEN 'resolved'
		WHEN a.period < (SELECT MAX(b.period) FROM alert_notifications b
			WHERE b.project_id = a.project_id AND b.alert = a.alert AND b.resolved_at IS NULL) THEN 'new_period'
		ELSE '' END,
	a.resolved_notification_id
FROM alert_notifications a LEFT JOIN notifications n ON n.id = a.notification_id
ORDER BY a.fired_at;

DROP TABLE alert_notifications;
