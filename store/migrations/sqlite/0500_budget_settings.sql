-- 0500: budgets the way customers set them (issue #20).
-- budget_settings: per team (project_id '') and per project. thresholds is the JSON list of
-- alert thresholds (NULL: inherit, the project from its team, the team the seed's 80/100 %);
-- team_limit is the team budget over all its projects (team row only); daily_limit a project's
-- daily budget (project rows only), reset at local midnight in time_zone (team row; '' = UTC).
-- NULL: not set.
CREATE TABLE budget_settings (
	team_id     TEXT NOT NULL REFERENCES teams (id),
	project_id  TEXT NOT NULL DEFAULT '',
	thresholds  TEXT,
	team_limit  TEXT,
	daily_limit TEXT,
	time_zone   TEXT NOT NULL DEFAULT '',
	updated_at  TIMESTAMP NOT NULL,
	PRIMARY KEY (team_id, project_id)
);

-- audit_events: every change of a limit, threshold, recipient, price override, Stripe link,
-- token or member. Append-only: nothing updates or deletes a row.
CREATE TABLE audit_events (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	team_id      TEXT NOT NULL,
	at           TIMESTAMP NOT NULL,
	actor_token  TEXT NOT NULL DEFAULT '',
	actor_member TEXT NOT NULL DEFAULT '',
	actor        TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL,
	target       TEXT NOT NULL DEFAULT '',
	old_value    TEXT NOT NULL DEFAULT '',
	new_value    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_team ON audit_events (team_id, id);

-- notification_mutes: a member does not want a project's warnings (exceeded alerts to admins
-- are never muted).
CREATE TABLE notification_mutes (
	team_id    TEXT NOT NULL REFERENCES teams (id),
	project_id TEXT NOT NULL,
	email      TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (team_id, project_id, email)
);

-- tokens may belong to a member (the audit names them; mutes are theirs).
ALTER TABLE tokens ADD COLUMN member_email TEXT NOT NULL DEFAULT '';
