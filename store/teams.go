package store

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/shopspring/decimal"
)

const teamColumns = "id, name, billing_email, billing_anchor_day, default_limit, stripe_customer_id, created_at"

func scanTeam(sc interface{ Scan(...any) error }) (Team, error) {
	var t Team
	var lim decimal.NullDecimal
	if err := sc.Scan(&t.ID, &t.Name, &t.BillingEmail, &t.BillingAnchorDay, &lim, &t.StripeCustomerID, &t.CreatedAt); err != nil {
		return Team{}, err
	}
	if lim.Valid {
		t.DefaultLimit = &lim.Decimal
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

func nullDecimal(d *decimal.Decimal) decimal.NullDecimal {
	if d == nil {
		return decimal.NullDecimal{}
	}
	return decimal.NullDecimal{Decimal: *d, Valid: true}
}

// checkLimit rejects negative budget limits.
func checkLimit(d *decimal.Decimal) error {
	if d != nil && d.IsNegative() {
		return fmt.Errorf("budget limit %s is negative", d)
	}
	return nil
}

// CreateTeam adds a team. An empty ID gets a fresh "team_…" id, a zero BillingAnchorDay is 1;
// an existing ID is ErrConflict.
func (s *Store) CreateTeam(ctx context.Context, t Team) (Team, error) {
	if t.ID == "" {
		t.ID = newID(PrefixTeam)
	}
	if err := CheckID(PrefixTeam, t.ID); err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		return Team{}, fmt.Errorf("create team: the name is empty")
	}
	if t.BillingEmail != "" {
		if _, err := mail.ParseAddress(t.BillingEmail); err != nil {
			return Team{}, fmt.Errorf("create team: billing e-mail %q: %w", t.BillingEmail, err)
		}
	}
	if t.BillingAnchorDay == 0 {
		t.BillingAnchorDay = 1
	}
	if t.BillingAnchorDay < 1 || t.BillingAnchorDay > 28 {
		return Team{}, fmt.Errorf("create team: billing anchor day %d is outside 1..28", t.BillingAnchorDay)
	}
	if err := checkLimit(t.DefaultLimit); err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	t.CreatedAt = s.now()
	_, err := s.exec(ctx, "INSERT INTO teams ("+teamColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Name, t.BillingEmail, t.BillingAnchorDay, nullDecimal(t.DefaultLimit), t.StripeCustomerID, t.CreatedAt)
	if isUniqueViolation(err) {
		return Team{}, fmt.Errorf("create team %s: %w", t.ID, ErrConflict)
	}
	if err != nil {
		return Team{}, fmt.Errorf("create team %s: %w", t.ID, err)
	}
	return t, nil
}

// GetTeam returns a team or ErrNotFound.
func (s *Store) GetTeam(ctx context.Context, id string) (Team, error) {
	t, err := scanTeam(s.db.QueryRowContext(ctx, s.rebind("SELECT "+teamColumns+" FROM teams WHERE id = ?"), id))
	if err != nil {
		return Team{}, fmt.Errorf("get team %s: %w", id, notFound(err))
	}
	return t, nil
}

// ListTeams returns every team, by id.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+teamColumns+" FROM teams ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	defer rows.Close()
	var ts []Team
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, fmt.Errorf("list teams: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return ts, nil
}

// SetTeamStripeCustomer maps a team to its Stripe customer.
func (s *Store) SetTeamStripeCustomer(ctx context.Context, teamID, customerID string) error {
	return s.updateOne(ctx, "set the Stripe customer of team "+teamID,
		"UPDATE teams SET stripe_customer_id = ? WHERE id = ?", customerID, teamID)
}

// SetTeamDefaultLimit sets (or, with nil, clears) a team's default budget limit.
func (s *Store) SetTeamDefaultLimit(ctx context.Context, teamID string, limit *decimal.Decimal) error {
	if err := checkLimit(limit); err != nil {
		return fmt.Errorf("set the default limit of team %s: %w", teamID, err)
	}
	return s.updateOne(ctx, "set the default limit of team "+teamID,
		"UPDATE teams SET default_limit = ? WHERE id = ?", nullDecimal(limit), teamID)
}

// updateOne runs an UPDATE that must touch exactly one row; none is ErrNotFound.
func (s *Store) updateOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// AddMember adds a person to a team, or updates their name and role.
func (s *Store) AddMember(ctx context.Context, m Member) error {
	m.Email = strings.ToLower(strings.TrimSpace(m.Email))
	if _, err := mail.ParseAddress(m.Email); err != nil {
		return fmt.Errorf("add member: e-mail %q: %w", m.Email, err)
	}
	if !ValidRole(m.Role) {
		return fmt.Errorf("add member: role %q; want admin, billing or member", m.Role)
	}
	_, err := s.exec(ctx, `INSERT INTO members (team_id, email, name, role) VALUES (?, ?, ?, ?)
		ON CONFLICT (team_id, email) DO UPDATE SET name = excluded.name, role = excluded.role`,
		m.TeamID, m.Email, m.Name, m.Role)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("add member to team %s: %w", m.TeamID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add member to team %s: %w", m.TeamID, err)
	}
	return nil
}

// RemoveMember removes a person from a team; ErrNotFound when they are not in it.
func (s *Store) RemoveMember(ctx context.Context, teamID, email string) error {
	res, err := s.exec(ctx, "DELETE FROM members WHERE team_id = ? AND email = ?", teamID, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return fmt.Errorf("remove member from team %s: %w", teamID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove member %s from team %s: %w", email, teamID, ErrNotFound)
	}
	return nil
}

// ListMembers returns a team's members by e-mail.
func (s *Store) ListMembers(ctx context.Context, teamID string) ([]Member, error) {
	return s.members(ctx, "SELECT team_id, email, name, role FROM members WHERE team_id = ? ORDER BY email", teamID)
}

// TeamAdmins returns a team's members with the admin role, by e-mail.
func (s *Store) TeamAdmins(ctx context.Context, teamID string) ([]Member, error) {
	return s.members(ctx, "SELECT team_id, email, name, role FROM members WHERE team_id = ? AND role = 'admin' ORDER BY email", teamID)
}

func (s *Store) members(ctx context.Context, query string, args ...any) ([]Member, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer rows.Close()
	var ms []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.TeamID, &m.Email, &m.Name, &m.Role); err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return ms, nil
}
