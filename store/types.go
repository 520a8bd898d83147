// Package store is the metadata store: teams, members, projects, deployments, API tokens,
// notifications, alert state and the billing outbox. SQLite (modernc.org/sqlite, no cgo) is the
// embedded default; PostgreSQL (pgx) serves several replicas. Both run the same versioned
// migrations and the same test suite. Money is decimal.Decimal, stored as exact text/NUMERIC.
package store

import (
	"errors"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
)

// Sentinel errors; callers use errors.Is.
var (
	// ErrNotFound: no such row, or it belongs to another team (callers must not tell the two apart).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key already exists.
	ErrConflict = errors.New("already exists")
	// ErrInvalidToken: the token is unknown, malformed or revoked.
	ErrInvalidToken = errors.New("invalid, revoked or expired token")
)

// DefaultBudgetLimit is the seed's global default budget, in USD (budget.DefaultLimit).
var DefaultBudgetLimit = budget.DefaultLimit

// Team is a customer account.
type Team struct {
	ID               string // "team_…"
	Name             string
	BillingEmail     string           // the billing contact (warning e-mails)
	BillingAnchorDay int              // 1..28: the day of month the billing period starts (UTC); 1 = calendar month
	DefaultLimit     *decimal.Decimal // nil: the global default
	StripeCustomerID string           // "" until mapped
	CreatedAt        time.Time
}

// Member is a person of a team.
type Member struct {
	TeamID string
	Email  string
	Name   string
	Role   string // admin | billing | member
}

// Project is a customer's application; its usage series carry project="<ID>".
type Project struct {
	ID          string // "proj_…"
	TeamID      string
	Name        string
	BudgetLimit *decimal.Decimal // nil: the team's default, then DefaultBudgetLimit
	Suspended   bool             // set only by an operator, never by the system
	Deployments int              // number of known deployments
	CreatedAt   time.Time
}

// Token is an API token; only its hash is stored.
type Token struct {
	ID         string
	TeamID     string
	Role       string // admin | billing | member
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	ExpiresAt  *time.Time // nil: never
	// MemberEmail is the member the token belongs to ("": a team token, e.g. a service's); the
	// audit trail names them and their notification preferences apply.
	MemberEmail string
}

// Notification is an in-app notification (budget warning, exceeded, anomaly, …).
type Notification struct {
	ID        string
	TeamID    string
	ProjectID string
	Type      string // e.g. budget_warning, budget_exceeded, forecast_exceeded, usage_anomaly, alert_resolved
	Severity  string // info | warning | critical
	Message   string
	Payload   map[string]any
	CreatedAt time.Time
	ReadAt    *time.Time
}
