package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cygni/usage/config"
)

// PriceOverride is one row of a team's negotiated prices: the team's own (ProjectID "") or one
// of its projects', in force from EffectiveFrom until the next row of the same scope.
type PriceOverride struct {
	TeamID, ProjectID string
	config.PriceOverride
	UpdatedAt time.Time
}

// ProjectPriceOverrides are the overrides that price one project: its team's and its own, each
// in increasing EffectiveFrom order.
type ProjectPriceOverrides struct{ Team, Project []config.PriceOverride }

// SetPriceOverride sets the prices of a team (projectID "") or of one of its projects from
// o.EffectiveFrom on (replacing a row at the same instant; an override without prices is a
// reset to the sheet underneath), and records e in the audit trail in the same transaction:
// old is the override of the same scope in force at that instant before ("" if none). o must
// be valid (config.PriceOverride.Validate). Another team's project is ErrNotFound.
func (s *Store) SetPriceOverride(ctx context.Context, teamID, projectID string, o config.PriceOverride, e AuditEvent) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("set the prices of %s: %w", targetOf(teamID, projectID), err)
	}
	if projectID != "" {
		if _, err := s.GetProject(ctx, teamID, projectID); err != nil {
			return err
		}
	} else if _, err := s.GetTeam(ctx, teamID); err != nil {
		return err
	}
	from := o.EffectiveFrom.UTC().Truncate(time.Millisecond)
	e.TeamID, e.Action = teamID, AuditPriceOverride
	e.Target = targetOf(teamID, projectID) + " from " + from.Format(time.RFC3339Nano)
	e.New = o.PricesJSON()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := s.scanOverrides(ctx, tx, "team_id = ? AND project_id = ?", teamID, projectID)
		if err != nil {
			return err
		}
		e.Old = ""
		for _, r := range rows {
			if !r.EffectiveFrom.After(from) {
				e.Old = r.PricesJSON()
			}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM price_overrides WHERE team_id = ? AND project_id = ? AND effective_from = ?"), teamID, projectID, from); err != nil {
			return fmt.Errorf("write the price override: %w", err)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO price_overrides (team_id, project_id, effective_from, prices, updated_at) VALUES (?, ?, ?, ?, ?)"),
			teamID, projectID, from, e.New, now); err != nil {
			return fmt.Errorf("write the price override: %w", err)
		}
		e.At = now
		return s.insertAuditTx(ctx, tx, e)
	})
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanOverrides reads the override rows matching where, by team, project and instant.
func (s *Store) scanOverrides(ctx context.Context, q queryer, where string, args ...any) ([]PriceOverride, error) {
	query := "SELECT team_id, project_id, effective_from, prices, updated_at FROM price_overrides"
	if where != "" {
		query += " WHERE " + where
	}
	rows, err := q.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read the price overrides: %w", err)
	}
	defer rows.Close()
	var out []PriceOverride
	for rows.Next() {
		var r PriceOverride
		var from time.Time
		var prices string
		if err := rows.Scan(&r.TeamID, &r.ProjectID, &from, &prices, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("read the price overrides: %w", err)
		}
		o, err := config.ParsePricesJSON(prices)
		if err != nil {
			return nil, fmt.Errorf("read the price override of %s at %s: %w", targetOf(r.TeamID, r.ProjectID), from, err)
		}
		o.EffectiveFrom = from.UTC()
		r.PriceOverride, r.UpdatedAt = o, r.UpdatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the price overrides: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.TeamID != b.TeamID {
			return a.TeamID < b.TeamID
		}
		if a.ProjectID != b.ProjectID {
			return a.ProjectID < b.ProjectID
		}
		return a.EffectiveFrom.Before(b.EffectiveFrom)
	})
	return out, nil
}

// ListPriceOverrides returns a team's override rows (its own and those of its projects), by
// project ("" first) and instant. Another team's are never included, nor those of a project
// since moved to another team.
func (s *Store) ListPriceOverrides(ctx context.Context, teamID string) ([]PriceOverride, error) {
	if _, err := s.GetTeam(ctx, teamID); err != nil {
		return nil, err
	}
	return s.scanOverrides(ctx, s.db, "team_id = ? AND (project_id = '' OR project_id IN (SELECT id FROM projects WHERE team_id = ?))", teamID, teamID)
}

// ProjectPriceOverrides returns, for each of projects (nil: every project) whose prices have an
// override, its team's and its own overrides: one read for a whole rollup or Deriver cycle.
func (s *Store) ProjectPriceOverrides(ctx context.Context, projects []string) (map[string]ProjectPriceOverrides, error) {
	if projects != nil && len(projects) == 0 {
		return nil, nil
	}
	// Only the overrides of the projects' teams (all of them for the Deriver).
	where, args := "", []any{}
	if projects != nil {
		ph := make([]string, len(projects))
		for i, p := range projects {
			ph[i], args = "?", append(args, p)
		}
		where = "team_id IN (SELECT team_id FROM projects WHERE id IN (" + strings.Join(ph, ", ") + "))"
	}
	all, err := s.scanOverrides(ctx, s.db, where, args...)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	teams := map[string]bool{}
	for _, r := range all {
		teams[r.TeamID] = true
	}
	// The projects of the teams that have overrides (a team's override prices all of them).
	tp, args := []string{}, []any{}
	for t := range teams {
		tp, args = append(tp, "?"), append(args, t)
	}
	q := "SELECT id, team_id FROM projects WHERE team_id IN (" + strings.Join(tp, ", ") + ")"
	if projects != nil {
		ph := make([]string, len(projects))
		for i, p := range projects {
			ph[i], args = "?", append(args, p)
		}
		q += " AND id IN (" + strings.Join(ph, ", ") + ")"
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read the projects of the price overrides: %w", err)
	}
	defer rows.Close()
	teamOf := map[string]string{}
	for rows.Next() {
		var id, team string
		if err := rows.Scan(&id, &team); err != nil {
			return nil, fmt.Errorf("read the projects of the price overrides: %w", err)
		}
		teamOf[id] = team
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the projects of the price overrides: %w", err)
	}
	byTeam := map[string][]config.PriceOverride{}
	byProject := map[string][]config.PriceOverride{}
	for _, r := range all {
		switch {
		case r.ProjectID == "":
			byTeam[r.TeamID] = append(byTeam[r.TeamID], r.PriceOverride)
		case teamOf[r.ProjectID] == r.TeamID:
			// A project's own prices are its team's contract: a project moved to another team
			// leaves them behind.
			byProject[r.ProjectID] = append(byProject[r.ProjectID], r.PriceOverride)
		}
	}
	out := map[string]ProjectPriceOverrides{}
	for id, team := range teamOf {
		o := ProjectPriceOverrides{Team: byTeam[team], Project: byProject[id]}
		if len(o.Team)+len(o.Project) > 0 {
			out[id] = o
		}
	}
	return out, nil
}
