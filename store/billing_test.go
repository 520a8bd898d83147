package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestBillingOutbox(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		s := open(t)
		ctx := context.Background()
		for _, team := range []string{"team_a", "team_b"} {
			if _, err := s.CreateTeam(ctx, Team{ID: team, Name: team, StripeCustomerID: "cus_" + team[5:]}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateProject(ctx, Project{ID: "proj_" + team[5:], TeamID: team}); err != nil {
				t.Fatal(err)
			}
		}
		h := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
		if wm, err := s.BillingWatermark(ctx); err != nil || !wm.IsZero() {
			t.Fatalf("initial watermark %s %v", wm, err)
		}
		rows := []BillingReport{
			{ProjectID: "proj_a", Metric: "cpu", Hour: h, Amount: decimal.RequireFromString("7.25"), Quantity: 2, Identifier: "id-a", State: BillingPending, NextAttemptAt: h},
			{ProjectID: "proj_b", Metric: "cpu", Hour: h, Amount: decimal.RequireFromString("1.5"), Quantity: 0, Identifier: "id-b", State: BillingCarried, NextAttemptAt: h},
			{ProjectID: "proj_gone", Metric: "cpu", Hour: h.Add(time.Hour), Amount: decimal.NewFromInt(36), Quantity: 10, Identifier: "id-x", State: BillingPending, NextAttemptAt: h},
		}
		carries := []BillingCarry{{ProjectID: "proj_a", Metric: "cpu", Amount: decimal.RequireFromString("7.25"), Quantity: 2}}
		if err := s.AppendBillingReports(ctx, rows, carries, h.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendBillingReports(ctx, rows[:1], nil, time.Time{}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate row: %v, want ErrConflict", err)
		}
		if wm, _ := s.BillingWatermark(ctx); !wm.Equal(h.Add(2 * time.Hour)) {
			t.Errorf("watermark %s", wm)
		}
		cs, err := s.BillingCarries(ctx)
		if err != nil || len(cs) != 1 || !cs[0].Amount.Equal(decimal.RequireFromString("7.25")) || cs[0].Quantity != 2 {
			t.Fatalf("carries %+v %v", cs, err)
		}
		due, err := s.DueBillingReports(ctx, h, 10)
		if err != nil || len(due) != 2 || due[0].Identifier != "id-a" || due[0].TeamID != "team_a" || due[1].TeamID != "" {
			t.Fatalf("due %+v %v", due, err)
		}
		r := due[0]
		sent := h.Add(time.Minute)
		r.State, r.Attempts, r.KeyGeneration, r.StripeRef, r.SentAt = BillingSent, 2, 1, "cus_a", &sent
		if err := s.UpdateBillingReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListBillingReports(ctx, BillingReportFilter{TeamID: "team_a"})
		if err != nil || len(got) != 1 || got[0].State != BillingSent || got[0].KeyGeneration != 1 || got[0].SentAt == nil || !got[0].SentAt.Equal(sent) {
			t.Fatalf("team_a rows %+v %v", got, err)
		}
		if got, _ := s.ListBillingReports(ctx, BillingReportFilter{From: h.Add(time.Hour), To: h.Add(2 * time.Hour)}); len(got) != 1 || got[0].Identifier != "id-x" {
			t.Errorf("hour filter: %+v", got)
		}
		counts, err := s.BillingReportCounts(ctx)
		if err != nil || counts[BillingSent] != 1 || counts[BillingCarried] != 1 || counts[BillingPending] != 1 || counts[BillingFailed] != 0 {
			t.Errorf("counts %v %v", counts, err)
		}
		// Retry: only failed/held/expired rows of the caller's team.
		if err := s.RetryBillingReport(ctx, "team_a", r.ID); !errors.Is(err, ErrConflict) {
			t.Errorf("retry of a sent row: %v", err)
		}
		if err := s.RetryBillingReport(ctx, "team_b", r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("retry of another team's row: %v", err)
		}
		r.State = BillingFailed
		if err := s.UpdateBillingReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryBillingReport(ctx, "team_a", r.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListBillingReports(ctx, BillingReportFilter{TeamID: "team_a"}); got[0].State != BillingPending || got[0].KeyGeneration != 2 {
			t.Errorf("after retry %+v", got[0])
		}
		if c, err := s.ProjectStripeCustomer(ctx, "proj_b"); err != nil || c != "cus_b" {
			t.Errorf("customer %q %v", c, err)
		}
		if _, err := s.ProjectStripeCustomer(ctx, "proj_gone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown project: %v", err)
		}
		if _, err := s.BillingSubscriptionItem(ctx, "proj_a", "cpu"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unmapped item: %v", err)
		}
		for _, item := range []string{"si_1", "si_2"} {
			if err := s.SetBillingSubscriptionItem(ctx, "proj_a", "cpu", item); err != nil {
				t.Fatal(err)
			}
		}
		if it, err := s.BillingSubscriptionItem(ctx, "proj_a", "cpu"); err != nil || it != "si_2" {
			t.Errorf("item %q %v", it, err)
		}
		lease, ok, err := s.TryBillingLeader(ctx)
		if err != nil || !ok || lease.Check(ctx) != nil {
			t.Fatalf("leader: %v %v", ok, err)
		}
		lease.Release()
	})
}

// Migration 0110 marks sent the rows an older release parked as failed on Stripe's answer that
// it already holds an event with the row's own identifier, and only those.
func TestMigration0110ReclassifiesAlreadyExists(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	rows := []BillingReport{
		{ProjectID: "proj_a", Metric: "cpu", Hour: h, Quantity: 2, Identifier: "cygni-proj_a-cpu-2026110310-r1", State: BillingPending, NextAttemptAt: h},
		{ProjectID: "proj_a", Metric: "egress", Hour: h, Quantity: 3, Identifier: "cygni-proj_a-egress-2026110310-r1", State: BillingPending, NextAttemptAt: h},
		{ProjectID: "proj_a", Metric: "memory", Hour: h, Quantity: 4, Identifier: "cygni-proj_a-memory-2026110310-r0", State: BillingPending, NextAttemptAt: h},
	}
	if err := s.AppendBillingReports(ctx, rows, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The state of an older release: the column did not exist and three rows were parked.
	for _, q := range []string{
		"ALTER TABLE billing_reports DROP COLUMN first_attempt_at",
		"DELETE FROM schema_migrations WHERE version = 110",
		"UPDATE billing_reports SET state = 'failed', attempts = 2, last_error = 'Stripe answered 400 invalid_request_error: An event already exists with identifier cygni-proj_a-cpu-2026110310-r1.' WHERE metric = 'cpu'",
		// Another row's identifier (r10 is not r1): not ours, stays failed.
		"UPDATE billing_reports SET state = 'failed', attempts = 1, last_error = 'Stripe answered 400 invalid_request_error: An event already exists with identifier cygni-proj_a-egress-2026110310-r10.' WHERE metric = 'egress'",
		"UPDATE billing_reports SET state = 'failed', attempts = 1, last_error = 'Stripe answered 400 invalid_request_error: No such customer' WHERE metric = 'memory'",
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = s.Close()
	s, err = Open(ctx, nil, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListBillingReports(ctx, BillingReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": BillingSent, "egress": BillingFailed, "memory": BillingFailed}
	for _, r := range got {
		if r.State != want[r.Metric] {
			t.Errorf("%s: %s (%s), want %s", r.Identifier, r.State, r.LastError, want[r.Metric])
		}
		if r.FirstAttemptAt == nil || !r.FirstAttemptAt.Equal(r.CreatedAt) {
			t.Errorf("%s: first attempt %v, want its creation %s (attempted before 0110)", r.Identifier, r.FirstAttemptAt, r.CreatedAt)
		}
	}
}
