package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
)

// BudgetSettings are what a customer set beyond the monthly limit, for a team (ProjectID "") or
// one project. A nil field is "not set".
type BudgetSettings struct {
	TeamID, ProjectID string
	Thresholds        []budget.Threshold // nil: inherit (project → team default → the seed's)
	TeamLimit         *decimal.Decimal   // the team budget over all its projects (team row)
	DailyLimit        *decimal.Decimal   // a project's daily budget (project rows)
	TimeZone          string             // the team's time zone of daily budgets (team row; "" = UTC)
	UpdatedAt         time.Time
}

// thresholdJSON is a threshold as the store keeps it (the percent as an exact decimal string).
type thresholdJSON struct {
	Percent    string            `json:"percent"`
	Basis      string            `json:"basis"`
	Recipients budget.Recipients `json:"recipients"`
}

// EncodeThresholds is the JSON form of a threshold list the store and the audit trail use.
func EncodeThresholds(ts []budget.Threshold) string {
	if ts == nil {
		return ""
	}
	out := make([]thresholdJSON, len(ts))
	for i, t := range ts {
		out[i] = thresholdJSON{Percent: t.Percent.String(), Basis: t.Basis, Recipients: t.Recipients}
		if out[i].Recipients.Emails == nil {
			out[i].Recipients.Emails = []string{}
		}
	}
	b, _ := json.Marshal(out) // plain strings and bools: cannot fail
	return string(b)
}

func decodeThresholds(s sql.NullString) ([]budget.Threshold, error) {
	if !s.Valid {
		return nil, nil
	}
	var in []thresholdJSON
	if err := json.Unmarshal([]byte(s.String), &in); err != nil {
		return nil, fmt.Errorf("decode thresholds: %w", err)
	}
	out := make([]budget.Threshold, len(in))
	for i, t := range in {
		p, err := decimal.NewFromString(t.Percent)
		if err != nil {
			return nil, fmt.Errorf("decode thresholds: percent %q: %w", t.Percent, err)
		}
		out[i] = budget.Threshold{Percent: p, Basis: t.Basis, Recipients: t.Recipients}
	}
	return out, nil
}

const budgetSettingsColumns = "team_id, project_id, thresholds, team_limit, daily_limit, time_zone, updated_at"

func scanBudgetSettings(sc interface{ Scan(...any) error }) (BudgetSettings, error) {
	var b BudgetSettings
	var th sql.NullString
	var tl, dl decimal.NullDecimal
	if err := sc.Scan(&b.TeamID, &b.ProjectID, &th, &tl, &dl, &b.TimeZone, &b.UpdatedAt); err != nil {
		return BudgetSettings{}, err
	}
	var err error
	if b.Thresholds, err = decodeThresholds(th); err != nil {
		return BudgetSettings{}, err
	}
	if tl.Valid {
		b.TeamLimit = &tl.Decimal
	}
	if dl.Valid {
		b.DailyLimit = &dl.Decimal
	}
	b.UpdatedAt = b.UpdatedAt.UTC()
	return b, nil
}

// GetBudgetSettings returns the settings of a team (projectID "") or of one of its projects;
// nothing set is the zero settings, not an error. Another team's project is ErrNotFound.
func (s *Store) GetBudgetSettings(ctx context.Context, teamID, projectID string) (BudgetSettings, error) {
	if projectID != "" {
		if _, err := s.GetProject(ctx, teamID, projectID); err != nil {
			return BudgetSettings{}, err
		}
	} else if _, err := s.GetTeam(ctx, teamID); err != nil {
		return BudgetSettings{}, err
	}
	b, err := scanBudgetSettings(s.db.QueryRowContext(ctx, s.rebind("SELECT "+budgetSettingsColumns+" FROM budget_settings WHERE team_id = ? AND project_id = ?"), teamID, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return BudgetSettings{TeamID: teamID, ProjectID: projectID}, nil
	}
	if err != nil {
		return BudgetSettings{}, fmt.Errorf("read the budget settings of %s %s: %w", teamID, projectID, err)
	}
	return b, nil
}

// AllBudgetSettings returns every row of settings (the Deriver and the notifier read them once
// per run).
func (s *Store) AllBudgetSettings(ctx context.Context) ([]BudgetSettings, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+budgetSettingsColumns+" FROM budget_settings ORDER BY team_id, project_id")
	if err != nil {
		return nil, fmt.Errorf("list budget settings: %w", err)
	}
	defer rows.Close()
	var out []BudgetSettings
	for rows.Next() {
		b, err := scanBudgetSettings(rows)
		if err != nil {
			return nil, fmt.Errorf("list budget settings: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SettingsIndex answers the effective settings of projects from one read of AllBudgetSettings.
type SettingsIndex map[[2]string]BudgetSettings

// IndexBudgetSettings indexes settings by team and project.
func IndexBudgetSettings(all []BudgetSettings) SettingsIndex {
	ix := make(SettingsIndex, len(all))
	for _, b := range all {
		ix[[2]string{b.TeamID, b.ProjectID}] = b
	}
	return ix
}

// Thresholds is a project's effective threshold list (its own, else its team's, else the seed's).
func (ix SettingsIndex) Thresholds(teamID, projectID string) []budget.Threshold {
	return budget.EffectiveThresholds(ix[[2]string{teamID, projectID}].Thresholds, ix[[2]string{teamID, ""}].Thresholds)
}

// Team returns a team's own settings row.
func (ix SettingsIndex) Team(teamID string) BudgetSettings { return ix[[2]string{teamID, ""}] }

// Project returns a project's own settings row.
func (ix SettingsIndex) Project(teamID, projectID string) BudgetSettings {
	return ix[[2]string{teamID, projectID}]
}

// Audit actions.
const (
	AuditBudgetLimit      = "budget_limit"       // a project's monthly limit
	AuditTeamDefaultLimit = "team_default_limit" // a team's default monthly limit
	AuditTeamBudget       = "team_budget"        // the team budget over all projects
	AuditDailyBudget      = "daily_budget"       // a project's daily budget
	AuditTimeZone         = "time_zone"          // the team's time zone of daily budgets
	AuditThresholds       = "thresholds"         // a threshold list and its recipients
	AuditBillingEmail     = "billing_email"      // the team's billing contact
	AuditPriceOverride    = "price_override"
	AuditStripeCustomer   = "stripe_customer"
	AuditSubscriptionItem = "subscription_item"
	AuditTokenCreated     = "token_created"
	AuditTokenRevoked     = "token_revoked"
	AuditMemberAdded      = "member_added" // also a changed role or name
	AuditMemberRemoved    = "member_removed"
	AuditMute             = "notification_mute"
)

// AuditEvent is one change: who (the token and its member, or the operator CLI), when, what,
// old → new (text: a decimal, a JSON list, an id; "" for none).
type AuditEvent struct {
	ID          int64
	TeamID      string
	At          time.Time
	ActorToken  string // the API token that made the change; "" from the CLI
	ActorMember string // the token's member; "" for a team token
	Actor       string // "api", "operator-api" or "cli:<os user>"
	Action      string
	Target      string // e.g. proj_001, team_acme, tok_…, a member's e-mail
	Old, New    string
}

func (s *Store) insertAuditTx(ctx context.Context, tx *sql.Tx, e AuditEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := tx.ExecContext(ctx, s.rebind("INSERT INTO audit_events (team_id, at, actor_token, actor_member, actor, action, target, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		e.TeamID, e.At.UTC(), e.ActorToken, e.ActorMember, e.Actor, e.Action, e.Target, e.Old, e.New)
	if err != nil {
		return fmt.Errorf("record the audit event %s of %s: %w", e.Action, e.TeamID, err)
	}
	return nil
}

// RecordAudit appends an audit event (for changes made by other store methods).
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.insertAuditTx(ctx, tx, e) })
}

// AuditQuery pages a team's audit trail, newest first.
type AuditQuery struct {
	Before int64 // only events with a smaller id; 0: from the newest
	Limit  int   // 1..1000; 0: 100
	Action string
}

// ListAudit returns a team's audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, teamID string, q AuditQuery) ([]AuditEvent, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	where := []string{"team_id = ?"}
	args := []any{teamID}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	if q.Action != "" {
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT id, team_id, at, actor_token, actor_member, actor, action, target, old_value, new_value FROM audit_events WHERE "+
		strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT ?"), args...)
	if err != nil {
		return nil, fmt.Errorf("list the audit trail of %s: %w", teamID, err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		if err := rows.Scan(&e.ID, &e.TeamID, &e.At, &e.ActorToken, &e.ActorMember, &e.Actor, &e.Action, &e.Target, &e.Old, &e.New); err != nil {
			return nil, fmt.Errorf("list the audit trail of %s: %w", teamID, err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func decimalText(d *decimal.Decimal) string {
	if d == nil {
		return ""
	}
	return d.String()
}

// updateSetting changes one column of a settings row (creating the row) and records the audit
// event in the same transaction; it returns the previous settings.
func (s *Store) updateSetting(ctx context.Context, teamID, projectID string, e AuditEvent, apply func(*BudgetSettings) (old, new string)) (BudgetSettings, error) {
	prev, err := s.GetBudgetSettings(ctx, teamID, projectID)
	if err != nil {
		return BudgetSettings{}, err
	}
	next := prev
	var th any
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Re-read inside the transaction, so that the audit's old value is the replaced one.
		cur, err := scanBudgetSettings(tx.QueryRowContext(ctx, s.rebind("SELECT "+budgetSettingsColumns+" FROM budget_settings WHERE team_id = ? AND project_id = ?"), teamID, projectID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = BudgetSettings{TeamID: teamID, ProjectID: projectID}
		case err != nil:
			return fmt.Errorf("read the budget settings: %w", err)
		}
		prev, next = cur, cur
		e.Old, e.New = apply(&next)
		th = nil
		if next.Thresholds != nil {
			th = EncodeThresholds(next.Thresholds)
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM budget_settings WHERE team_id = ? AND project_id = ?"), teamID, projectID); err != nil {
			return fmt.Errorf("write the budget settings: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO budget_settings ("+budgetSettingsColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)"),
			teamID, projectID, th, nullDecimal(next.TeamLimit), nullDecimal(next.DailyLimit), next.TimeZone, now); err != nil {
			return fmt.Errorf("write the budget settings: %w", err)
		}
		e.TeamID, e.At = teamID, now
		return s.insertAuditTx(ctx, tx, e)
	})
	if err != nil {
		return BudgetSettings{}, err
	}
	return prev, nil
}

// SetThresholds sets (nil: clears, so the project inherits its team's) the threshold list of a
// team (projectID "") or a project, and records e (Action, Target and Old/New are filled in).
// The list must be budget.NormalizeThresholds' result.
func (s *Store) SetThresholds(ctx context.Context, teamID, projectID string, list []budget.Threshold, e AuditEvent) error {
	e.Action, e.Target = AuditThresholds, targetOf(teamID, projectID)
	_, err := s.updateSetting(ctx, teamID, projectID, e, func(b *BudgetSettings) (string, string) {
		old := EncodeThresholds(b.Thresholds)
		b.Thresholds = list
		return old, EncodeThresholds(list)
	})
	return err
}

// SetTeamBudget sets (nil: clears) a team's budget over all its projects, with its audit event.
func (s *Store) SetTeamBudget(ctx context.Context, teamID string, limit *decimal.Decimal, e AuditEvent) error {
	if err := checkLimit(limit); err != nil {
		return fmt.Errorf("set the team budget of %s: %w", teamID, err)
	}
	e.Action, e.Target = AuditTeamBudget, teamID
	_, err := s.updateSetting(ctx, teamID, "", e, func(b *BudgetSettings) (string, string) {
		old := decimalText(b.TeamLimit)
		b.TeamLimit = limit
		return old, decimalText(limit)
	})
	return err
}

// SetDailyBudget sets (nil: clears) a project's daily budget, with its audit event.
func (s *Store) SetDailyBudget(ctx context.Context, teamID, projectID string, limit *decimal.Decimal, e AuditEvent) error {
	if err := checkLimit(limit); err != nil {
		return fmt.Errorf("set the daily budget of %s: %w", projectID, err)
	}
	if projectID == "" {
		return fmt.Errorf("set a daily budget: no project: %w", ErrNotFound)
	}
	e.Action, e.Target = AuditDailyBudget, projectID
	_, err := s.updateSetting(ctx, teamID, projectID, e, func(b *BudgetSettings) (string, string) {
		old := decimalText(b.DailyLimit)
		b.DailyLimit = limit
		return old, decimalText(limit)
	})
	return err
}

// SetTeamTimeZone sets the IANA time zone in which a team's daily budgets reset ("" = UTC); the
// caller checks the name (budget.LoadTimeZone).
func (s *Store) SetTeamTimeZone(ctx context.Context, teamID, zone string, e AuditEvent) error {
	e.Action, e.Target = AuditTimeZone, teamID
	_, err := s.updateSetting(ctx, teamID, "", e, func(b *BudgetSettings) (string, string) {
		old := b.TimeZone
		b.TimeZone = zone
		return old, zone
	})
	return err
}

func targetOf(teamID, projectID string) string {
	if projectID == "" {
		return teamID
	}
	return projectID
}

// SetMute mutes (or unmutes) a project's warnings for one member, recorded in the audit trail.
// The member must be one of the team's; another team's project is ErrNotFound.
func (s *Store) SetMute(ctx context.Context, teamID, projectID, email string, muted bool, e AuditEvent) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if _, err := s.GetProject(ctx, teamID, projectID); err != nil {
		return err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM members WHERE team_id = ? AND email = ?"), teamID, email).Scan(&n); err != nil {
		return fmt.Errorf("find member %s: %w", email, err)
	}
	if n == 0 {
		return fmt.Errorf("member %s of team %s: %w", email, teamID, ErrNotFound)
	}
	e.TeamID, e.Action, e.Target = teamID, AuditMute, projectID+" "+email
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var was int
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM notification_mutes WHERE team_id = ? AND project_id = ? AND email = ?"), teamID, projectID, email).Scan(&was); err != nil {
			return fmt.Errorf("read mute: %w", err)
		}
		if (was > 0) == muted {
			return nil // no change, nothing to audit
		}
		var err error
		if muted {
			_, err = tx.ExecContext(ctx, s.rebind("INSERT INTO notification_mutes (team_id, project_id, email, created_at) VALUES (?, ?, ?, ?)"), teamID, projectID, email, s.now())
			e.Old, e.New = "unmuted", "muted"
		} else {
			_, err = tx.ExecContext(ctx, s.rebind("DELETE FROM notification_mutes WHERE team_id = ? AND project_id = ? AND email = ?"), teamID, projectID, email)
			e.Old, e.New = "muted", "unmuted"
		}
		if err != nil {
			return fmt.Errorf("write mute: %w", err)
		}
		return s.insertAuditTx(ctx, tx, e)
	})
}

// Mutes returns, per project of a team, the members (e-mails) who muted its warnings.
func (s *Store) Mutes(ctx context.Context, teamID string) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT project_id, email FROM notification_mutes WHERE team_id = ? ORDER BY project_id, email"), teamID)
	if err != nil {
		return nil, fmt.Errorf("list mutes of %s: %w", teamID, err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var p, e string
		if err := rows.Scan(&p, &e); err != nil {
			return nil, fmt.Errorf("list mutes of %s: %w", teamID, err)
		}
		out[p] = append(out[p], e)
	}
	return out, rows.Err()
}

// SetTokenMember ties a team's token to one of its members (or, with "", unties it).
func (s *Store) SetTokenMember(ctx context.Context, teamID, tokenID, email string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if email != "" {
		var n int
		if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM members WHERE team_id = ? AND email = ?"), teamID, email).Scan(&n); err != nil {
			return fmt.Errorf("find member %s: %w", email, err)
		}
		if n == 0 {
			return fmt.Errorf("member %s of team %s: %w", email, teamID, ErrNotFound)
		}
	}
	return s.updateOne(ctx, "set the member of token "+tokenID, "UPDATE tokens SET member_email = ? WHERE id = ? AND team_id = ?", email, tokenID, teamID)
}
