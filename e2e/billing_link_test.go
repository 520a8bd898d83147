package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
)

// A new customer as docs/billing.md walks it through: the team and project are created with
// the CLI and not linked yet, so the running service holds every closed hour; `team
// set-stripe-customer` refuses a customer Stripe does not know and links the one it knows; the
// service then sends the held hours, and reconciliation over the API shows Stripe's own
// records equal to what was sent. (proj_002 of the simulator is in no team: held throughout.)
func TestBillingNewCustomerLinkedByCLI(t *testing.T) {
	sim := simaws.New(simaws.Options{Projects: 2, ServicesPerProject: 1, Untagged: -1, Now: Clock(t)})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	stripe := stripetest.New(t)
	stripe.AddCustomer("cus_new")
	stripe.AddMeter("cygni_vcpu_hours", "cygni_memory_gb_hours", "cygni_egress_gb", "cygni_requests")
	dataDir := t.TempDir()
	stripeEnv := []string{"CYGNI_STRIPE_API_KEY=" + stripe.Key, "CYGNI_STRIPE_URL=" + stripe.URL}
	cli := func(args ...string) (string, error) {
		return Run(t, 60*time.Second, stripeEnv, append([]string{"--data-dir", dataDir}, args...)...)
	}
	for _, args := range [][]string{
		{"team", "create", "New Co", "--id", "team_new"},
		{"project", "create", "team_new", "--id", "proj_001"},
	} {
		if out, err := cli(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	token, err := cli("token", "create", "team_new", "--role", "admin")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, token)
	}
	token = strings.TrimSpace(token[strings.LastIndex(strings.TrimSpace(token), "\n")+1:])

	cfg := `collector:
  backfill: 3h
  interval: 5s
billing:
  settle_delay: 1m
  interval: 200ms
  recheck_interval: 1s
`
	p := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,billing,api"}, DataDir: dataDir, Config: cfg,
		Env: append(AWSEnv(t, srv.URL), stripeEnv...)})
	p.WaitReady(90 * time.Second)

	ctx := context.Background()
	st, err := store.Open(ctx, nil, store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rows := func(state string) []store.BillingReport {
		rs, err := st.ListBillingReports(ctx, store.BillingReportFilter{ProjectID: "proj_001", State: state})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	for expired := timeout(90 * time.Second); len(rows(store.BillingHeld)) < 8; {
		if expired() {
			all := rows("")
			t.Fatalf("%d held rows of %d (%+v), want the closed hours held for the missing customer\n%s", len(rows(store.BillingHeld)), len(all), all, tail(p.Stderr(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := rows(store.BillingHeld)[0]; !strings.Contains(r.LastError, "no Stripe customer") {
		t.Errorf("held because %q", r.LastError)
	}
	if n := len(stripe.Events()); n != 0 {
		t.Fatalf("Stripe got %d events before the team was linked", n)
	}

	out, err := cli("team", "set-stripe-customer", "team_new", "cus_nobody")
	if err == nil || !strings.Contains(out, "not found in Stripe") || !strings.Contains(out, "nothing changed") {
		t.Errorf("unknown customer: err %v, output %q", err, out)
	}
	if out, err := cli("team", "set-stripe-customer", "team_new", "cus_new"); err != nil || !strings.Contains(out, "held hours are sent") {
		t.Fatalf("link: %v\n%s", err, out)
	}
	// Sent in the next cycles, not after the 5-minute hold recheck.
	for expired := timeout(30 * time.Second); len(rows(store.BillingHeld))+len(rows(store.BillingPending))+len(rows(store.BillingSending)) > 0; {
		if expired() {
			t.Fatalf("rows still held or pending after the link: %+v", append(rows(store.BillingHeld), rows(store.BillingPending)...))
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]int64{}
	for _, r := range rows(store.BillingSent) {
		if r.StripeRef != "cus_new" {
			t.Errorf("row %s sent to %q", r.Identifier, r.StripeRef)
		}
		want[r.Metric] += r.Quantity
	}
	events := map[string]string{"cpu": "cygni_vcpu_hours", "memory": "cygni_memory_gb_hours", "egress": "cygni_egress_gb", "requests": "cygni_requests"}
	for metric, q := range want {
		if got := stripe.Total(events[metric], "cus_new"); got != q {
			t.Errorf("%s: Stripe holds %d, the outbox sent %d", metric, got, q)
		}
	}

	// Reconciliation asks Stripe itself.
	month := Clock(t)().UTC().Add(-2 * time.Hour).Format("2006-01")
	out, err = Run(t, 60*time.Second, nil, "billing", "reconcile", "--month", month, "--json", "--server", p.URL(), "--token", token)
	var rec struct {
		StripeChecked bool   `json:"stripeChecked"`
		StripeError   string `json:"stripeError"`
		Totals        []struct {
			Metric   string `json:"metric"`
			Reported int64  `json:"reported"`
			Stripe   *int64 `json:"stripe"`
		} `json:"totals"`
		Differences []struct {
			Kind string `json:"kind"`
		} `json:"differences"`
	}
	if jerr := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rec); jerr != nil {
		t.Fatalf("reconcile output (err %v): %v\n%s", err, jerr, out)
	}
	if !rec.StripeChecked {
		t.Fatalf("reconcile did not read Stripe: %s", rec.StripeError)
	}
	for _, tot := range rec.Totals {
		if tot.Stripe == nil || *tot.Stripe != tot.Reported {
			t.Errorf("reconcile %s: stripe %v, reported %d", tot.Metric, tot.Stripe, tot.Reported)
		}
	}
	for _, d := range rec.Differences {
		if d.Kind == "stripe_differs" {
			t.Errorf("reconcile lists a Stripe difference: %s", out)
		}
	}
}
