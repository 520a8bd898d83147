-- 0001: teams, members, projects, deployments, API tokens, notifications.
CREATE TABLE teams (
	id                 TEXT PRIMARY KEY,
	name               TEXT NOT NULL,
	billing_email      TEXT NOT NULL DEFAULT '',
	billing_anchor_day INTEGER NOT NULL DEFAULT 1 CHECK (billing_anchor_day BETWEEN 1 AND 28),
	default_limit      TEXT,
	stripe_customer_id TEXT NOT NULL DEFAULT '',
	created_at         TIMESTAMP NOT NULL
);

CREATE TABLE members (
	team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	email   TEXT NOT NULL,
	name    TEXT NOT NULL DEFAULT '',
	role    TEXT NOT NULL CHECK (role IN ('admin', 'billing', 'member')),
	PRIMARY KEY (team_id, email)
);

CREATE TABLE projects (
	id           TEXT PRIMARY KEY,
	team_id      TEXT NOT NULL REFERENCES teams (id),
	name         TEXT NOT NULL,
	budget_limit TEXT,
	suspended    INTEGER NOT NULL DEFAULT 0,
	created_at   TIMESTAMP NOT NULL
);
CREATE INDEX projects_team ON projects (team_id);

CREATE TABLE deployments (
	project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	cluster    TEXT NOT NULL,
	name       TEXT NOT NULL,
	first_seen TIMESTAMP NOT NULL,
	last_seen  TIMESTAMP NOT NULL,
	PRIMARY KEY (cluster, name)
);
CREATE INDEX deployments_project ON deployments (project_id);

CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	team_id      TEXT NOT NULL REFERENCES teams (id),
	role         TEXT NOT NULL CHECK (role IN ('admin', 'billing', 'member')),
	name         TEXT NOT NULL DEFAULT '',
	hash         BLOB NOT NULL,
	created_at   TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP,
	revoked_at   TIMESTAMP
);
CREATE INDEX tokens_team ON tokens (team_id);

CREATE TABLE notifications (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	team_id    TEXT NOT NULL REFERENCES teams (id),
	project_id TEXT NOT NULL DEFAULT '',
	type       TEXT NOT NULL,
	severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
	message    TEXT NOT NULL,
	payload    TEXT NOT NULL DEFAULT '{}',
	created_at TIMESTAMP NOT NULL,
	read_at    TIMESTAMP
);
CREATE INDEX notifications_team ON notifications (team_id, seq);
CREATE INDEX notifications_unread ON notifications (team_id, seq) WHERE read_at IS NULL;
