-- 0900: negotiated prices per team and per project (issue #18 item 3).
-- price_overrides: from effective_from on, the prices set in prices (a JSON object of decimal
-- strings: vcpuHour, memoryGbHour, egressGb, storageGbHour, millionRequests) replace those of
-- the sheet underneath (project_id '': the team's, on top of the default sheets of the
-- configuration; a project's, on top of its team's). prices '{}' is a reset: from that instant
-- the sheet underneath applies again. Setting the same instant again replaces the row; every
-- change is in audit_events (action price_override).
CREATE TABLE price_overrides (
	team_id        TEXT NOT NULL REFERENCES teams (id),
	project_id     TEXT NOT NULL DEFAULT '',
	effective_from TIMESTAMP NOT NULL,
	prices         TEXT NOT NULL,
	updated_at     TIMESTAMP NOT NULL,
	PRIMARY KEY (team_id, project_id, effective_from)
);
