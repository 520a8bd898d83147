package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
)

const projectSelect = `SELECT p.id, p.team_id, p.name, p.budget_limit, p.suspended, p.created_at,
	(SELECT COUNT(*) FROM deployments d WHERE d.project_id = p.id)
	FROM projects p`

func scanProject(sc interface{ Scan(...any) error }) (Project, error) {
	var p Project
	var lim decimal.NullDecimal
	if err := sc.Scan(&p.ID, &p.TeamID, &p.Name, &lim, &p.Suspended, &p.CreatedAt, &p.Deployments); err != nil {
		return Project{}, err
	}
	if lim.Valid {
		p.BudgetLimit = &lim.Decimal
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// CreateProject adds a project to a team. An empty ID gets a fresh "proj_…" id, an empty name
// is the id; an existing ID is ErrConflict, an unknown team ErrNotFound.
func (s *Store) CreateProject(ctx context.Context, p Project) (Project, error) {
	if p.ID == "" {
		p.ID = newID(PrefixProject)
	}
	if err := CheckID(PrefixProject, p.ID); err != nil {
		return Project{}, fmt.Errorf("create project: %w", err)
	}
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		p.Name = p.ID
	}
	if err := checkLimit(p.BudgetLimit); err != nil {
		return Project{}, fmt.Errorf("create project %s: %w", p.ID, err)
	}
	p.CreatedAt = s.now()
	p.Deployments = 0
	_, err := s.exec(ctx, "INSERT INTO projects (id, team_id, name, budget_limit, suspended, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		p.ID, p.TeamID, p.Name, nullDecimal(p.BudgetLimit), p.Suspended, p.CreatedAt)
	switch {
	case isUniqueViolation(err):
		return Project{}, fmt.Errorf("create project %s: %w", p.ID, ErrConflict)
	case isForeignKeyViolation(err):
		return Project{}, fmt.Errorf("create project %s: team %s: %w", p.ID, p.TeamID, ErrNotFound)
	case err != nil:
		return Project{}, fmt.Errorf("create project %s: %w", p.ID, err)
	}
	return p, nil
}

// GetProject returns a team's project; ErrNotFound also when it belongs to another team.
func (s *Store) GetProject(ctx context.Context, teamID, projectID string) (Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx, s.rebind(projectSelect+" WHERE p.id = ? AND p.team_id = ?"), projectID, teamID))
	if err != nil {
		return Project{}, fmt.Errorf("get project %s: %w", projectID, notFound(err))
	}
	return p, nil
}

// ListProjects returns a team's projects by id.
func (s *Store) ListProjects(ctx context.Context, teamID string) ([]Project, error) {
	return s.projects(ctx, projectSelect+" WHERE p.team_id = ? ORDER BY p.id", teamID)
}

// AllProjects returns every project of every team by id (collector, alerting, billing).
func (s *Store) AllProjects(ctx context.Context) ([]Project, error) {
	return s.projects(ctx, projectSelect+" ORDER BY p.id")
}

func (s *Store) projects(ctx context.Context, query string, args ...any) ([]Project, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var ps []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return ps, nil
}

// MoveProject gives a project to another team. Its past notifications stay with the old team.
func (s *Store) MoveProject(ctx context.Context, projectID, toTeamID string) error {
	err := s.updateOne(ctx, "move project "+projectID, "UPDATE projects SET team_id = ? WHERE id = ?", toTeamID, projectID)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("move project %s: team %s: %w", projectID, toTeamID, ErrNotFound)
	}
	return err
}

// SetBudgetLimit sets a team's project's monthly budget limit in USD; ErrNotFound for another
// team's project.
func (s *Store) SetBudgetLimit(ctx context.Context, teamID, projectID string, limit decimal.Decimal) error {
	if err := checkLimit(&limit); err != nil {
		return fmt.Errorf("set the budget limit of project %s: %w", projectID, err)
	}
	return s.updateOne(ctx, "set the budget limit of project "+projectID,
		"UPDATE projects SET budget_limit = ? WHERE id = ? AND team_id = ?", limit, projectID, teamID)
}

// SetProjectSuspended records an operator's suspension (the system never suspends).
func (s *Store) SetProjectSuspended(ctx context.Context, projectID string, suspended bool) error {
	return s.updateOne(ctx, "suspend project "+projectID, "UPDATE projects SET suspended = ? WHERE id = ?", suspended, projectID)
}

// EffectiveLimit is the project's limit, else the team's default, else DefaultBudgetLimit
// (budget.EffectiveLimit).
func EffectiveLimit(p Project, t Team) decimal.Decimal {
	return budget.EffectiveLimit(p.BudgetLimit, t.DefaultLimit)
}

// EffectiveLimit is the package function EffectiveLimit, as a method for callers holding a Store.
func (s *Store) EffectiveLimit(p Project, t Team) decimal.Decimal { return EffectiveLimit(p, t) }

// UpsertDeployment records that the ECS service name on cluster belongs to a project (the
// collector calls it for every tagged service it sees). A service re-tagged to another project
// moves. An unknown project is ErrNotFound.
func (s *Store) UpsertDeployment(ctx context.Context, projectID, name, cluster string) error {
	now := s.now()
	_, err := s.exec(ctx, `INSERT INTO deployments (project_id, cluster, name, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (cluster, name) DO UPDATE SET project_id = excluded.project_id, last_seen = excluded.last_seen`,
		projectID, cluster, name, now, now)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("record deployment %s/%s: project %s: %w", cluster, name, projectID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("record deployment %s/%s: %w", cluster, name, err)
	}
	return nil
}
