package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Billing report states: the outbox's state machine. A row is written pending (or carried when
// its integer quantity is zero), moves to sending right before the request to Stripe, and ends
// sent, failed (a permanent error, with the reason) or expired (older than Stripe's window).
// held rows wait for something outside billing (a Stripe key, a customer or subscription item
// mapping) and go back to sending once it exists.
const (
	BillingPending = "pending"
	BillingSending = "sending"
	BillingSent    = "sent"
	BillingCarried = "carried"
	BillingHeld    = "held"
	BillingFailed  = "failed"
	BillingExpired = "expired"
)

// BillingStates lists every state, in the order of the state machine.
var BillingStates = []string{BillingPending, BillingSending, BillingSent, BillingCarried, BillingHeld, BillingFailed, BillingExpired}

// BillingReport is one outbox row: the usage of one project and billed metric in one hour, or a
// correction (Revision > 0) of it.
type BillingReport struct {
	ID        int64
	ProjectID string
	TeamID    string // the project's team, "" when the project is not in the store (read only)
	Metric    string // cpu, memory, egress, requests
	Hour      time.Time
	Revision  int
	// Amount is the exact usage in the series' stored unit; for a revision, the difference to
	// the revisions before it.
	Amount decimal.Decimal
	// Quantity is the whole number of configured units this row reports (after carrying).
	Quantity   int64
	Identifier string // deterministic; Stripe's identifier and idempotency key
	// KeyGeneration advances only when Stripe may have saved a failed result under the current
	// idempotency key (a 5xx, an operator's retry), never on a crash.
	KeyGeneration int
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	StripeRef     string // the customer or subscription item it was sent to
	CreatedAt     time.Time
	SentAt        *time.Time
	// FirstAttemptAt is when the row was first sent (nil: never). Stripe deduplicates an
	// identifier for at least 24 hours after it.
	FirstAttemptAt *time.Time
}

// BillingCarry is the running total of one project and metric: the exact amount closed into the
// outbox and the whole quantity reported for it. Their difference is the carried remainder.
type BillingCarry struct {
	ProjectID string
	Metric    string
	Amount    decimal.Decimal
	Quantity  int64
}

// BillingReportFilter selects outbox rows. Zero fields do not filter.
type BillingReportFilter struct {
	TeamID    string
	ProjectID string
	Metric    string
	State     string
	From, To  time.Time // hours in [From, To)
	Limit     int       // 0: no limit
}

const billingReportColumns = `r.id, r.project_id, COALESCE(p.team_id, ''), r.metric, r.hour, r.revision, r.amount, r.quantity,
	r.identifier, r.key_generation, r.state, r.attempts, r.next_attempt_at, r.last_error, r.stripe_ref, r.created_at, r.sent_at,
	r.first_attempt_at`

func scanBillingReport(sc interface{ Scan(...any) error }) (BillingReport, error) {
	var r BillingReport
	var sent, first sql.NullTime
	if err := sc.Scan(&r.ID, &r.ProjectID, &r.TeamID, &r.Metric, &r.Hour, &r.Revision, &r.Amount, &r.Quantity,
		&r.Identifier, &r.KeyGeneration, &r.State, &r.Attempts, &r.NextAttemptAt, &r.LastError, &r.StripeRef, &r.CreatedAt, &sent,
		&first); err != nil {
		return r, err
	}
	if first.Valid {
		t := first.Time.UTC()
		r.FirstAttemptAt = &t
	}
	r.Hour = r.Hour.UTC()
	r.NextAttemptAt = r.NextAttemptAt.UTC()
	r.CreatedAt = r.CreatedAt.UTC()
	if sent.Valid {
		t := sent.Time.UTC()
		r.SentAt = &t
	}
	return r, nil
}

// BillingWatermark returns the start of the first hour not yet closed into the outbox, or the
// zero time when no hour was ever closed.
func (s *Store) BillingWatermark(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.db.QueryRowContext(ctx, "SELECT hour FROM billing_watermark WHERE id = 1").Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the billing watermark: %w", err)
	}
	return t.UTC(), nil
}

// BillingCarries returns the running totals of every project and metric.
func (s *Store) BillingCarries(ctx context.Context) ([]BillingCarry, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT project_id, metric, amount, quantity FROM billing_carry ORDER BY project_id, metric")
	if err != nil {
		return nil, fmt.Errorf("read billing carries: %w", err)
	}
	defer rows.Close()
	var cs []BillingCarry
	for rows.Next() {
		var c BillingCarry
		if err := rows.Scan(&c.ProjectID, &c.Metric, &c.Amount, &c.Quantity); err != nil {
			return nil, fmt.Errorf("read billing carries: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// AppendBillingReports writes new outbox rows, the carries they changed and (unless zero) the new
// watermark in one transaction: either all of it is durable or none. A row whose project,
// metric, hour and revision exist already is ErrConflict.
func (s *Store) AppendBillingReports(ctx context.Context, reports []BillingReport, carries []BillingCarry, watermark time.Time) error {
	now := s.now()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO billing_reports
			(project_id, metric, hour, revision, amount, quantity, identifier, state, attempts, next_attempt_at, last_error, stripe_ref, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', '', ?)`))
		if err != nil {
			return fmt.Errorf("prepare billing insert: %w", err)
		}
		defer ins.Close()
		for _, r := range reports {
			next := r.NextAttemptAt
			if next.IsZero() {
				next = now
			}
			if _, err := ins.ExecContext(ctx, r.ProjectID, r.Metric, r.Hour.UTC(), r.Revision, r.Amount, r.Quantity,
				r.Identifier, r.State, next.UTC(), now); err != nil {
				if isUniqueViolation(err) {
					return fmt.Errorf("billing report %s: %w", r.Identifier, ErrConflict)
				}
				return fmt.Errorf("insert billing report %s: %w", r.Identifier, err)
			}
		}
		for _, c := range carries {
			if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO billing_carry (project_id, metric, amount, quantity) VALUES (?, ?, ?, ?)
				ON CONFLICT (project_id, metric) DO UPDATE SET amount = excluded.amount, quantity = excluded.quantity`),
				c.ProjectID, c.Metric, c.Amount, c.Quantity); err != nil {
				return fmt.Errorf("write billing carry of %s/%s: %w", c.ProjectID, c.Metric, err)
			}
		}
		if !watermark.IsZero() {
			if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO billing_watermark (id, hour) VALUES (1, ?)
				ON CONFLICT (id) DO UPDATE SET hour = excluded.hour`), watermark.UTC()); err != nil {
				return fmt.Errorf("write the billing watermark: %w", err)
			}
		}
		return nil
	})
}

// ListBillingReports returns the rows that match f, ordered by hour, project, metric and
// revision.
func (s *Store) ListBillingReports(ctx context.Context, f BillingReportFilter) ([]BillingReport, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) { where = append(where, cond); args = append(args, arg) }
	if f.TeamID != "" {
		add("p.team_id = ?", f.TeamID)
	}
	if f.ProjectID != "" {
		add("r.project_id = ?", f.ProjectID)
	}
	if f.Metric != "" {
		add("r.metric = ?", f.Metric)
	}
	if f.State != "" {
		add("r.state = ?", f.State)
	}
	if !f.From.IsZero() {
		add("r.hour >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		add("r.hour < ?", f.To.UTC())
	}
	q := "SELECT " + billingReportColumns + " FROM billing_reports r LEFT JOIN projects p ON p.id = r.project_id"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY r.hour, r.project_id, r.metric, r.revision"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return s.queryBillingReports(ctx, q, args...)
}

func (s *Store) queryBillingReports(ctx context.Context, q string, args ...any) ([]BillingReport, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list billing reports: %w", err)
	}
	defer rows.Close()
	var rs []BillingReport
	for rows.Next() {
		r, err := scanBillingReport(rows)
		if err != nil {
			return nil, fmt.Errorf("list billing reports: %w", err)
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

// DueBillingReports returns up to limit rows that are pending, sending (a crash interrupted
// them) or held, whose next attempt is due at now, oldest hour first.
func (s *Store) DueBillingReports(ctx context.Context, now time.Time, limit int) ([]BillingReport, error) {
	q := "SELECT " + billingReportColumns + ` FROM billing_reports r LEFT JOIN projects p ON p.id = r.project_id
		WHERE r.state IN ('pending', 'sending', 'held') AND r.next_attempt_at <= ?
		ORDER BY r.hour, r.project_id, r.metric, r.revision`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return s.queryBillingReports(ctx, q, now.UTC())
}

// UpdateBillingReport writes a row's delivery state: State, Attempts, NextAttemptAt, LastError,
// StripeRef, SentAt and FirstAttemptAt (kept once set). Unknown ID is ErrNotFound.
func (s *Store) UpdateBillingReport(ctx context.Context, r BillingReport) error {
	var sent, first any
	if r.SentAt != nil {
		sent = r.SentAt.UTC()
	}
	if r.FirstAttemptAt != nil {
		first = r.FirstAttemptAt.UTC()
	}
	next := r.NextAttemptAt
	if next.IsZero() {
		next = s.now()
	}
	res, err := s.exec(ctx, `UPDATE billing_reports SET state = ?, key_generation = ?, attempts = ?, next_attempt_at = ?, last_error = ?, stripe_ref = ?, sent_at = ?,
		first_attempt_at = COALESCE(first_attempt_at, ?)
		WHERE id = ?`, r.State, r.KeyGeneration, r.Attempts, next.UTC(), r.LastError, r.StripeRef, sent, first, r.ID)
	if err != nil {
		return fmt.Errorf("update billing report %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("billing report %d: %w", r.ID, ErrNotFound)
	}
	return nil
}

// RetryBillingReport moves a failed, held or expired row of the team back to pending, due now,
// under a new idempotency key (Stripe keeps the failed result of the old one).
// Another team's or an unknown row is ErrNotFound; a row in another state is ErrConflict.
func (s *Store) RetryBillingReport(ctx context.Context, teamID string, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT r.state FROM billing_reports r JOIN projects p ON p.id = r.project_id
			WHERE r.id = ? AND p.team_id = ?`), id, teamID).Scan(&state)
		if err != nil {
			return fmt.Errorf("billing report %d: %w", id, notFound(err))
		}
		if state != BillingFailed && state != BillingHeld && state != BillingExpired {
			return fmt.Errorf("billing report %d is %s: %w", id, state, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE billing_reports SET state = 'pending', key_generation = key_generation + 1, next_attempt_at = ?, last_error = '' WHERE id = ?"), s.now(), id); err != nil {
			return fmt.Errorf("retry billing report %d: %w", id, err)
		}
		return nil
	})
}

// ReleaseHeldBillingReports makes every held row due at now (a new configuration may resolve
// what held them).
func (s *Store) ReleaseHeldBillingReports(ctx context.Context, now time.Time) error {
	if _, err := s.exec(ctx, "UPDATE billing_reports SET next_attempt_at = ? WHERE state = 'held'", now.UTC()); err != nil {
		return fmt.Errorf("release held billing reports: %w", err)
	}
	return nil
}

// BillingReportCounts returns the number of rows in each state (every state present, zero or not).
func (s *Store) BillingReportCounts(ctx context.Context) (map[string]int, error) {
	counts := make(map[string]int, len(BillingStates))
	for _, st := range BillingStates {
		counts[st] = 0
	}
	rows, err := s.db.QueryContext(ctx, "SELECT state, COUNT(*) FROM billing_reports GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("count billing reports: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count billing reports: %w", err)
		}
		counts[st] = n
	}
	return counts, rows.Err()
}

// ProjectStripeCustomer returns the Stripe customer of the project's team ("" while the team is
// not mapped). An unknown project is ErrNotFound.
func (s *Store) ProjectStripeCustomer(ctx context.Context, projectID string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT t.stripe_customer_id FROM projects p JOIN teams t ON t.id = p.team_id WHERE p.id = ?`), projectID).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("Stripe customer of project %s: %w", projectID, notFound(err))
	}
	return id, nil
}

// SetBillingSubscriptionItem maps a project's metric to a Stripe subscription item (legacy
// usage records). An empty item removes the mapping.
func (s *Store) SetBillingSubscriptionItem(ctx context.Context, projectID, metric, itemID string) error {
	var err error
	if itemID == "" {
		_, err = s.exec(ctx, "DELETE FROM billing_subscription_items WHERE project_id = ? AND metric = ?", projectID, metric)
	} else {
		_, err = s.exec(ctx, `INSERT INTO billing_subscription_items (project_id, metric, item_id) VALUES (?, ?, ?)
			ON CONFLICT (project_id, metric) DO UPDATE SET item_id = excluded.item_id`, projectID, metric, itemID)
	}
	if err != nil {
		return fmt.Errorf("map subscription item of %s/%s: %w", projectID, metric, err)
	}
	return nil
}

// BillingSubscriptionItem returns the subscription item of a project's metric, ErrNotFound when
// none is mapped.
func (s *Store) BillingSubscriptionItem(ctx context.Context, projectID, metric string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT item_id FROM billing_subscription_items WHERE project_id = ? AND metric = ?"), projectID, metric).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("subscription item of %s/%s: %w", projectID, metric, notFound(err))
	}
	return id, nil
}

// BillingLease is the billing leadership of this process (see TryBillingLeader).
type BillingLease struct {
	lease *Lease
}

// TryBillingLeader takes the billing leadership without waiting: TryLeader's lease named
// "billing". On PostgreSQL it is a session advisory lock held on one dedicated connection, keyed
// by the store's schema, so that replicas sharing the database elect one leader, a crashed
// leader's lock goes with its connection, and deployments in other schemas of the same database
// each have their own leader; ok is false while another process holds it. SQLite is
// single-process: the lease is always granted.
func (s *Store) TryBillingLeader(ctx context.Context) (lease *BillingLease, ok bool, err error) {
	l, ok, err := s.TryLeader(ctx, "billing")
	if err != nil || !ok {
		return nil, ok, err
	}
	return &BillingLease{lease: l}, true, nil
}

// Check reports whether the lease is still held (its connection answers).
func (l *BillingLease) Check(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.lease.Check(ctx)
}

// Release gives the leadership up.
func (l *BillingLease) Release() {
	if l == nil {
		return
	}
	l.lease.Release()
}
