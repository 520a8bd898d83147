package billing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// A team without a Stripe customer has its hours held; linking it to a customer that Stripe
// knows sends them in the next cycle, without waiting for the hold recheck. An unknown or
// malformed customer changes nothing and says why.
func TestLinkTeamCustomerSendsHeldHours(t *testing.T) {
	e := newEnv(t)
	e.team(t, "team_c", "", "proj_c")
	e.stripe.AddCustomer("cus_c")
	hourly(t, e.db, series.Requests, "proj_c", 3, 1, func(h, _ int) float64 { return float64(10 + h) })
	e.clock.Set(t0.Add(3*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 3 * time.Hour; o.HoldRecheck = time.Hour })
	cycle(t, b)
	for _, r := range reports(t, e.st, store.BillingReportFilter{ProjectID: "proj_c"}) {
		if r.State != store.BillingHeld {
			t.Fatalf("row %s is %s before the link, want held", r.Identifier, r.State)
		}
	}
	l := NewLinker(e.st, e.stripe.URL, e.stripe.Key, nil, e.clock.Now)
	ctx := context.Background()
	for _, tc := range []struct {
		team, customer string
		want           error
	}{
		{"team_c", "cus_nobody", ErrNotInStripe},
		{"team_c", "acct_123", ErrMalformedStripeID},
		{"team_c", "cus_c; DROP", ErrMalformedStripeID},
		{"team_zz", "cus_c", store.ErrNotFound},
	} {
		if err := l.LinkTeamCustomer(ctx, tc.team, tc.customer); !errors.Is(err, tc.want) {
			t.Errorf("link %s → %s: %v, want %v", tc.team, tc.customer, err, tc.want)
		}
	}
	if cus, _ := e.st.ProjectStripeCustomer(ctx, "proj_c"); cus != "" {
		t.Fatalf("a refused link changed the customer to %q", cus)
	}
	if err := NewLinker(e.st, e.stripe.URL, "", nil, e.clock.Now).LinkTeamCustomer(ctx, "team_c", "cus_c"); !errors.Is(err, ErrStripeNotConfigured) {
		t.Errorf("without a key: %v", err)
	}
	if err := l.LinkTeamCustomer(ctx, "team_c", "cus_c"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute) // one billing interval, well inside the hour of the hold recheck
	cycle(t, b)
	if got := e.stripe.Total("cygni_requests", "cus_c"); got != 10+11+12 {
		t.Errorf("after the link Stripe counts %d for cus_c, want 33", got)
	}
}

// Legacy usage records: the subscription item is checked against Stripe, and the hours held
// for the missing item are set once it is mapped.
func TestLinkSubscriptionItemSendsHeldHours(t *testing.T) {
	e := newEnv(t)
	e.stripe.AddSubscriptionItem("si_req", "cus_a")
	hourly(t, e.db, series.Requests, "proj_a", 2, 1, func(h, _ int) float64 { return float64(5 + h) })
	e.clock.Set(t0.Add(2*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Mode = ModeUsageRecords; o.Backfill = 2 * time.Hour; o.HoldRecheck = time.Hour })
	cycle(t, b)
	l := NewLinker(e.st, e.stripe.URL, e.stripe.Key, nil, e.clock.Now)
	ctx := context.Background()
	if err := l.LinkSubscriptionItem(ctx, "proj_a", "requests", "si_gone"); !errors.Is(err, ErrNotInStripe) {
		t.Errorf("unknown item: %v", err)
	}
	if err := l.LinkSubscriptionItem(ctx, "proj_nope", "requests", "si_req"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown project: %v", err)
	}
	if err := l.LinkSubscriptionItem(ctx, "proj_a", "requests", "si_req"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	cycle(t, b)
	if got := e.stripe.UsageTotal("si_req"); got != 5+6 {
		t.Errorf("usage total %d, want 11", got)
	}
}

// stripe-mock serves the customer and subscription item routes the link checks use.
func TestLinkAgainstStripeMock(t *testing.T) {
	url := startStripeMock(t)
	e := newEnv(t)
	l := NewLinker(e.st, url, "sk_test_123", nil, e.clock.Now)
	ctx := context.Background()
	if err := l.LinkTeamCustomer(ctx, "team_a", "cus_mock1"); err != nil {
		t.Fatalf("link against stripe-mock: %v", err)
	}
	if err := l.LinkSubscriptionItem(ctx, "proj_a", "cpu", "si_mock1"); err != nil {
		t.Fatalf("subscription item against stripe-mock: %v", err)
	}
	if cus, _ := e.st.ProjectStripeCustomer(ctx, "proj_a"); cus != "cus_mock1" {
		t.Errorf("customer %q", cus)
	}
	if err := l.LinkTeamCustomer(ctx, "team_a", "cus_x"); err != nil && !strings.Contains(err.Error(), "cus_x") {
		t.Errorf("error does not name the customer: %v", err)
	}
}
