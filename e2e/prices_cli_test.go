package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/store"
)

// The operator's CLI for negotiated prices: set by flags and by JSON, show the sheets in force
// over time (a project's beating its team's), clear from an instant, refuse bad input naming
// the flag, and every change in `audit list` by the CLI's operator, old → new.
func TestPricesCLI(t *testing.T) {
	dataDir := t.TempDir()
	cli := func(args ...string) (string, error) {
		return Run(t, 60*time.Second, nil, append([]string{"--data-dir", dataDir}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	must("team", "create", "Acme", "--id", "team_acme")
	must("project", "create", "team_acme", "--id", "proj_web")
	must("team", "create", "Other", "--id", "team_other")
	must("project", "create", "team_other", "--id", "proj_other")

	if out := must("prices", "set", "team_acme", "--from", "2026-12-15T00:00:00Z", "--vcpu-hour", "0.04", "--egress-gb", "0.07"); strings.TrimSpace(out) != `team_acme: from 2026-12-15T00:00:00Z {"vcpuHour":"0.04","egressGb":"0.07"}` {
		t.Errorf("prices set printed %q", out)
	}
	must("prices", "set", "team_acme", "--project", "proj_web", "--from", "2026-12-20T00:00:00Z", "--prices", `{"vcpuHour":"0.03","millionRequests":0.25}`)
	must("prices", "clear", "team_acme", "--from", "2027-01-01T00:00:00Z")

	want := strings.Join([]string{
		"FROM                  VCPU_HOUR  MEMORY_GB_HOUR  EGRESS_GB  STORAGE_GB_HOUR  MILLION_REQUESTS",
		"always                0.05       0.005           0.09       0.0001           0.4",
		"2026-12-15T00:00:00Z  0.04       0.005           0.07       0.0001           0.4",
		"2026-12-20T00:00:00Z  0.03       0.005           0.07       0.0001           0.25",
		"2027-01-01T00:00:00Z  0.03       0.005           0.09       0.0001           0.25",
		"",
		"Stripe unit_amount_decimal (US cents per reported unit) the subscription's prices need:",
		"FROM                  cygni_vcpu_hours (per 0.001 vCPU-hour)  cygni_memory_gb_hours (per 0.001 GB-hour)  cygni_egress_gb (per 0.001 GB)  cygni_requests (per 1 request)",
		"always                0.005                                   0.0005                                     0.009                           0.00004",
		"2026-12-15T00:00:00Z  0.004                                   0.0005                                     0.007                           0.00004",
		"2026-12-20T00:00:00Z  0.003                                   0.0005                                     0.007                           0.000025",
		"2027-01-01T00:00:00Z  0.003                                   0.0005                                     0.009                           0.000025",
		"",
		"OVERRIDE   FROM                  PRICES",
		`team_acme  2026-12-15T00:00:00Z  {"vcpuHour":"0.04","egressGb":"0.07"}`,
		"team_acme  2027-01-01T00:00:00Z  reset",
		`proj_web   2026-12-20T00:00:00Z  {"vcpuHour":"0.03","millionRequests":"0.25"}`,
		"",
		`warning: proj_web has prices of its own, but with billing.mode meter_events Stripe prices all of a customer's projects at the customer's one price per meter: the invoice follows the team's prices, not these (docs/billing.md "Negotiated prices")`,
	}, "\n")
	if got := trimLines(must("prices", "show", "team_acme", "--project", "proj_web")); got != want {
		t.Errorf("prices show --project proj_web:\n%s\nwant\n%s", got, want)
	}
	if got := must("prices", "show", "team_other"); !strings.Contains(got, "no overrides") || strings.Contains(got, "0.04") {
		t.Errorf("another team's prices show team_acme's:\n%s", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"prices", "set", "team_acme", "--from", "2026-12-15", "--vcpu-hour", "0.04"}, `--from: "2026-12-15" is not an RFC 3339 instant`},
		{[]string{"prices", "set", "team_acme", "--from", "2026-12-15T00:00:00Z", "--vcpu-hour=-1"}, "vcpuHour: -1 is not a price"},
		{[]string{"prices", "set", "team_acme", "--from", "2026-12-15T00:00:00Z", "--prices", `{"gpuHour":"1"}`}, `"gpuHour" is not a price`},
		{[]string{"prices", "set", "team_acme", "--from", "2026-12-15T00:00:00Z"}, "no price given"},
		{[]string{"prices", "set", "team_other", "--project", "proj_web", "--from", "2026-12-15T00:00:00Z", "--vcpu-hour", "1"}, "not found"},
	} {
		out, err := cli(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v, output %q; want a failure saying %q", c.args, err, out, c.want)
		}
	}

	out := must("audit", "list", "team_acme", "--action", "price_override", "--json")
	var evs []store.AuditEvent
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e store.AuditEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	wantEv := []struct{ target, old, new string }{
		{"team_acme from 2027-01-01T00:00:00Z", `{"vcpuHour":"0.04","egressGb":"0.07"}`, `{}`},
		{"proj_web from 2026-12-20T00:00:00Z", ``, `{"vcpuHour":"0.03","millionRequests":"0.25"}`},
		{"team_acme from 2026-12-15T00:00:00Z", ``, `{"vcpuHour":"0.04","egressGb":"0.07"}`},
	}
	if len(evs) != len(wantEv) {
		t.Fatalf("%d audit events, want %d:\n%s", len(evs), len(wantEv), out)
	}
	for i, w := range wantEv {
		e := evs[i]
		if e.Target != w.target || e.Old != w.old || e.New != w.new || !strings.HasPrefix(e.Actor, "cli") {
			t.Errorf("audit[%d] = %+v, want %+v by cli", i, e, w)
		}
	}
}

// trimLines drops trailing spaces of each line (tabwriter pads the last column).
func trimLines(s string) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(ls, "\n")
}

// `prices check-stripe` compares the team's prices in force with what Stripe will invoice (the
// customer's subscription items on each meter): a price left at the default, or a meter without
// an item, fails the check and says so; matching prices pass.
func TestPricesCheckStripe(t *testing.T) {
	stripe := stripetest.New(t)
	stripe.AddCustomer("cus_acme")
	stripe.AddMeter("cygni_vcpu_hours", "cygni_memory_gb_hours", "cygni_egress_gb", "cygni_requests")
	dataDir := t.TempDir()
	env := []string{"CYGNI_STRIPE_API_KEY=" + stripe.Key, "CYGNI_STRIPE_URL=" + stripe.URL}
	cli := func(args ...string) (string, error) {
		return Run(t, 60*time.Second, env, append([]string{"--data-dir", dataDir}, args...)...)
	}
	for _, args := range [][]string{
		{"team", "create", "Acme", "--id", "team_acme"},
		{"team", "set-stripe-customer", "team_acme", "cus_acme"},
		{"prices", "set", "team_acme", "--from", "2000-01-01T00:00:00Z", "--vcpu-hour", "0.04"},
	} {
		if out, err := cli(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	// The vCPU price still at the default ($0.05 per vCPU-hour = 0.005 cents per 0.001), no
	// requests item.
	stripe.AddSubscriptionPrice("cus_acme", "si_cpu", "cygni_vcpu_hours", "0.005")
	stripe.AddSubscriptionPrice("cus_acme", "si_mem", "cygni_memory_gb_hours", "0.0005")
	stripe.AddSubscriptionPrice("cus_acme", "si_egress", "cygni_egress_gb", "0.009")
	out, err := cli("prices", "check-stripe", "team_acme")
	if err == nil || !strings.Contains(out, "2 Stripe price(s) differ") {
		t.Fatalf("check-stripe with a default price and a missing item: %v\n%s", err, out)
	}
	for _, want := range []string{
		"cygni_vcpu_hours       0.004       0.005         si_cpu     DIFFERS: Stripe invoices 0.005 cents per unit",
		"cygni_memory_gb_hours  0.0005      0.0005        si_mem     ok",
		"cygni_requests         0.00004     -             -          MISSING: no subscription item on this meter",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check-stripe output lacks %q:\n%s", want, out)
		}
	}
	// A Stripe with the negotiated price on its own item, and a requests item: the check passes.
	stripe2 := stripetest.New(t)
	stripe2.AddCustomer("cus_acme")
	stripe2.AddMeter("cygni_vcpu_hours", "cygni_memory_gb_hours", "cygni_egress_gb", "cygni_requests")
	stripe2.AddSubscriptionPrice("cus_acme", "si_cpu", "cygni_vcpu_hours", "0.004")
	stripe2.AddSubscriptionPrice("cus_acme", "si_mem", "cygni_memory_gb_hours", "0.0005")
	stripe2.AddSubscriptionPrice("cus_acme", "si_egress", "cygni_egress_gb", "0.009")
	stripe2.AddSubscriptionPrice("cus_acme", "si_req", "cygni_requests", "0.00004")
	out, err = Run(t, 60*time.Second, []string{"CYGNI_STRIPE_API_KEY=" + stripe2.Key, "CYGNI_STRIPE_URL=" + stripe2.URL}, "--data-dir", dataDir, "prices", "check-stripe", "team_acme")
	if err != nil || strings.Contains(out, "DIFFERS") || strings.Contains(out, "MISSING") {
		t.Fatalf("check-stripe with matching prices: %v\n%s", err, out)
	}
}
