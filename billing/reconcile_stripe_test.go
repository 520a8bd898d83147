package billing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/series"
)

func findDiff(ds []ReconcileDiff, kind, project string, hour time.Time) *ReconcileDiff {
	for i := range ds {
		if ds[i].Kind == kind && ds[i].ProjectID == project && ds[i].Hour.Equal(hour) {
			return &ds[i]
		}
	}
	return nil
}

func totalOf(t *testing.T, rec *Reconciliation, project, metric string) ReconcileTotal {
	t.Helper()
	for _, x := range rec.Totals {
		if x.ProjectID == project && x.Metric == metric {
			return x
		}
	}
	t.Fatalf("no total for %s/%s in %+v", project, metric, rec.Totals)
	return ReconcileTotal{}
}

// Reconciliation reads Stripe's hourly meter event summaries: when they differ from what the
// outbox sent by one unit, that unit is shown, at its hour, with its cause.
func TestReconcileShowsStripesOwnRecords(t *testing.T) {
	e := newEnv(t)
	total := hourly(t, e.db, series.Requests, "proj_a", 4, 2, func(h, i int) float64 { return float64(50 + 10*h + i) })
	e.clock.Set(t0.Add(4*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 4 * time.Hour })
	cycle(t, b)
	ctx := context.Background()

	rec, err := b.Reconcile(ctx, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.StripeChecked || len(rec.Differences) != 0 {
		t.Fatalf("checked %v (%s), differences %+v; want checked, none", rec.StripeChecked, rec.StripeError, rec.Differences)
	}
	if tot := totalOf(t, rec, "proj_a", "requests"); tot.Stripe == nil || *tot.Stripe != total.IntPart() || tot.Reported != total.IntPart() {
		t.Fatalf("total %+v, want reported = stripe = %d", tot, total.IntPart())
	}

	// Stripe's records differ by one unit, up in hour 1 and down in hour 3.
	e.stripe.AdjustSummary("cygni_requests", "cus_a", t0.Add(time.Hour), +1)
	e.stripe.AdjustSummary("cygni_requests", "cus_a", t0.Add(3*time.Hour), -1)
	rec, err = b.Reconcile(ctx, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hour     time.Time
		quantity int64
		cause    string
	}{
		{t0.Add(time.Hour), 1, "1 units more than the outbox sent"},
		{t0.Add(3 * time.Hour), -1, "1 units less than the outbox sent"},
	} {
		d := findDiff(rec.Differences, DiffStripe, "proj_a", tc.hour)
		if d == nil {
			t.Fatalf("no %s difference at %s: %+v", DiffStripe, tc.hour, rec.Differences)
		}
		if d.Quantity != tc.quantity || d.Stripe == nil || *d.Stripe != d.Sent+tc.quantity || !strings.Contains(d.Detail, tc.cause) || d.Customer != "cus_a" {
			t.Errorf("difference at %s: %+v, want quantity %d, cause %q", tc.hour, *d, tc.quantity, tc.cause)
		}
	}
	if len(rec.Differences) != 2 {
		t.Errorf("%d differences, want 2: %+v", len(rec.Differences), rec.Differences)
	}
	if tot := totalOf(t, rec, "proj_a", "requests"); *tot.Stripe != total.IntPart() {
		t.Errorf("stripe total %d, want %d (+1 −1)", *tot.Stripe, total.IntPart())
	}
}

// A row whose event Stripe stored while its answer was lost is shown as held by Stripe, not as
// a loss; a customer shared by two projects is compared at the customer.
func TestReconcileExplainsUnrecordedAndSharedCustomers(t *testing.T) {
	e := newEnv(t)
	e.team(t, "team_s", "cus_s", "proj_s1", "proj_s2")
	hourly(t, e.db, series.Requests, "proj_s1", 1, 1, func(int, int) float64 { return 5 })
	hourly(t, e.db, series.Requests, "proj_s2", 1, 1, func(int, int) float64 { return 7 })
	hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 3 })
	e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
	// The first event (proj_a, the first in order) is stored and answered 500.
	e.stripe.FailAfterRecord(http.StatusInternalServerError)
	b := e.biller(t, func(o *Options) { o.Backfill = time.Hour; o.BaseBackoff = time.Hour; o.MaxBackoff = time.Hour })
	cycle(t, b)
	e.stripe.AdjustSummary("cygni_requests", "cus_s", t0, 2)
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := findDiff(rec.Differences, DiffStripe, "proj_a", t0)
	if d == nil || d.Quantity != 3 || !strings.Contains(d.Detail, "not yet recorded as sent") {
		t.Errorf("proj_a: %+v, want Stripe holding the unrecorded row (3)", d)
	}
	if tot := totalOf(t, rec, "proj_a", "requests"); tot.Lost != 0 || *tot.Stripe != 3 {
		t.Errorf("proj_a total %+v, want lost 0, stripe 3", tot)
	}
	d = findDiff(rec.Differences, DiffStripe, "", t0)
	if d == nil || d.Quantity != 2 || d.Customer != "cus_s" || !strings.Contains(d.Detail, "proj_s1, proj_s2") {
		t.Errorf("shared customer: %+v, want +2 at cus_s naming both projects", d)
	}
}

// Usage of an hour older than Stripe's 35-day window that was never closed is "not billable",
// never late data with a correction to follow.
func TestReconcileOldHoursAreNotBillable(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.Requests, "proj_a", 2, 1, func(int, int) float64 { return 4 })
	e.clock.Set(t0.Add(36 * 24 * time.Hour))
	b := e.biller(t, nil) // backfill = window: hour 0 and 1 were never closed
	cycle(t, b)
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []time.Time{t0, t0.Add(time.Hour)} {
		d := findDiff(rec.Differences, DiffNotBillable, "proj_a", h)
		if d == nil || !strings.Contains(d.Detail, "not billable (older than 35 days)") {
			t.Errorf("hour %s: %+v, want not billable", h, rec.Differences)
		}
		if findDiff(rec.Differences, DiffLateData, "proj_a", h) != nil {
			t.Errorf("hour %s is also late_data", h)
		}
	}
}

// Legacy usage records: Stripe's usage record summaries per subscription item against what the
// outbox set.
func TestReconcileUsageRecordSummaries(t *testing.T) {
	e := newEnv(t)
	e.stripe.AddSubscriptionItem("si_req", "cus_a")
	if err := e.st.SetBillingSubscriptionItem(context.Background(), "proj_a", "requests", "si_req"); err != nil {
		t.Fatal(err)
	}
	hourly(t, e.db, series.Requests, "proj_a", 3, 1, func(h, _ int) float64 { return float64(10 * (h + 1)) })
	e.clock.Set(t0.Add(3*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Mode = ModeUsageRecords; o.Backfill = 3 * time.Hour })
	cycle(t, b)
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tot := totalOf(t, rec, "proj_a", "requests"); !rec.StripeChecked || *tot.Stripe != 60 || len(rec.Differences) != 0 {
		t.Fatalf("total %+v, differences %+v (%s); want stripe 60, none", tot, rec.Differences, rec.StripeError)
	}
	e.stripe.SetUsageRecord("si_req", t0.Add(time.Hour), 21)
	rec, err = b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := findDiff(rec.Differences, DiffStripe, "proj_a", rec.From) // a month's difference, at its start
	if d == nil || d.Quantity != 1 || *d.Stripe != 61 || d.Sent != 60 {
		t.Errorf("difference %+v, want +1 (61 vs 60)", d)
	}
}

// Without a Stripe key reconciliation still compares usage and outbox, and says Stripe was not
// read.
func TestReconcileWithoutStripe(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 4 })
	e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.StripeKey = ""; o.Backfill = time.Hour })
	cycle(t, b)
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.StripeChecked || !strings.Contains(rec.StripeError, "not configured") || totalOf(t, rec, "proj_a", "requests").Stripe != nil {
		t.Errorf("checked %v, error %q", rec.StripeChecked, rec.StripeError)
	}
}

// stripe-mock serves the meter list and the event summaries with the parameters we send.
func TestStripeMockServesEventSummaries(t *testing.T) {
	url := startStripeMock(t)
	e := newEnv(t)
	b := e.biller(t, func(o *Options) {
		o.StripeURL, o.StripeKey = url, "sk_test_123"
		o.Meters = map[string]Meter{"requests": {EventName: "test-meter-event-name", Unit: decimal.NewFromInt(1)}}
	})
	got, err := b.hourlySummaries(context.Background(), "test-meter-event-name", "cus_123", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("event summaries from stripe-mock: %v", err)
	}
	var sum int64
	for _, v := range got {
		sum += v
	}
	if sum != 25 { // stripe-mock's fixture
		t.Errorf("stripe-mock's summaries add up to %d, want its fixture's 25", sum)
	}
}
