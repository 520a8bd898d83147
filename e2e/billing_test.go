package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
)

// A real process is SIGKILLed right after Stripe accepted its first meter event and before the
// outbox recorded it; the restarted process resends it under the same idempotency key, and what
// Stripe holds per customer and meter equals the simulator's ground truth, floored to the unit,
// with nothing counted twice.
func TestBillingKilledBetweenSendAndRecord(t *testing.T) {
	sim := simaws.New(simaws.Options{Projects: 2, ServicesPerProject: 1, Untagged: -1, Now: Clock(t)})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	stripe := stripetest.New(t)
	dataDir := t.TempDir()

	// Teams and their Stripe customers, in the store the process will open.
	ctx := context.Background()
	st, err := store.Open(ctx, nil, store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range []string{"proj_001", "proj_002"} {
		team := "team_" + pr[5:]
		if _, err := st.CreateTeam(ctx, store.Team{ID: team, Name: team, StripeCustomerID: "cus_" + pr[5:]}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateProject(ctx, store.Project{ID: pr, TeamID: team}); err != nil {
			t.Fatalf("project %d: %v", i, err)
		}
	}

	cfg := `collector:
  backfill: 3h
  interval: 5s
billing:
  settle_delay: 1m
  interval: 200ms
  recheck_interval: 1s
  stripe:
    url: ` + stripe.URL + "\n"
	env := append(AWSEnv(t, srv.URL), "CYGNI_STRIPE_API_KEY="+stripe.Key)

	p1 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,billing,api"}, DataDir: dataDir, Config: cfg,
		Env: append(env, "CYGNI_BILLING_TEST_CRASH_AFTER_SEND=1")})
	if err := p1.Wait(90 * time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the first process did not kill itself after a send: %v\n%s", err, tail(p1.Stderr(), 4000))
	}
	if n := len(stripe.Events()); n != 1 {
		t.Fatalf("Stripe holds %d events after the crash, want 1", n)
	}
	crashed := stripe.Events()[0].Identifier
	rows, err := st.ListBillingReports(ctx, store.BillingReportFilter{State: store.BillingSending})
	if err != nil || len(rows) != 1 || rows[0].Identifier != crashed {
		t.Fatalf("after the crash the outbox has sending rows %+v (err %v), want %s", rows, err, crashed)
	}
	from, err := time.Parse(time.RFC3339, LogValue(p1.Stderr(), "no watermark; backfilling", "from"))
	if err != nil {
		t.Fatalf("the collector's backfill start is not logged: %v", err)
	}

	p2 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,billing,api"}, DataDir: dataDir, Config: cfg, Env: env})
	p2.WaitReady(90 * time.Second)

	// Expected: per project and metric, floor(exact truth over the hours closed by now / unit).
	// An hour closes once it is settle_delay (1m) old; the clock may pass an hour boundary while
	// the test waits, so the expectation follows it.
	meters := []struct {
		metric, event, series string
		unit                  decimal.Decimal // stored units per reported unit
	}{
		{"cpu", "cygni_vcpu_hours", series.CPUSeconds, decimal.RequireFromString("3.6")},
		{"memory", "cygni_memory_gb_hours", series.MemoryGBHours, decimal.RequireFromString("0.001")},
		{"egress", "cygni_egress_gb", series.EgressBytes, decimal.RequireFromString("0.001").Mul(decimal.NewFromInt(series.GiB))},
		{"requests", "cygni_requests", series.Requests, decimal.NewFromInt(1)},
	}
	wants := map[time.Time]map[string]int64{}
	expected := func(wm time.Time) map[string]int64 {
		if w, ok := wants[wm]; ok {
			return w
		}
		want := map[string]int64{}
		for _, s := range sim.Services() {
			for _, m := range meters {
				total := decimal.Zero
				if m.series == series.MemoryGBHours {
					// Exactly: MiB-minutes / 61,440 (a float per minute is not exact, and its
					// sum can land a unit short of a boundary the exact total reaches).
					raw := sim.RawTruth(s, m.series, from.Truncate(time.Minute), wm)
					total = decimal.NewFromInt(raw).DivRound(decimal.NewFromInt(61440), 30)
				} else {
					for minute := from.Truncate(time.Minute); minute.Before(wm); minute = minute.Add(time.Minute) {
						total = total.Add(decimal.NewFromFloat(sim.Truth(s, m.series, minute, minute.Add(time.Minute))))
					}
				}
				q, r := total.QuoRem(m.unit, 0)
				if r.IsNegative() {
					q = q.Sub(decimal.NewFromInt(1))
				}
				want[m.event+"/cus_"+s.Project[5:]] += q.IntPart()
			}
		}
		wants[wm] = want
		return want
	}
	var wm time.Time
	expired := timeout(60 * time.Second)
	for {
		wm = Clock(t)().UTC().Add(-time.Minute).Truncate(time.Hour)
		want := expected(wm)
		got := map[string]int64{}
		for key := range want {
			ev, cus, _ := strings.Cut(key, "/")
			got[key] = stripe.Total(ev, cus)
		}
		equal := true
		for k, v := range want {
			if got[k] != v {
				equal = false
			}
		}
		if equal {
			break
		}
		if expired() {
			t.Fatalf("Stripe totals %v, want %v (from %s to %s)\n%s", got, want, from, wm, tail(p2.Stderr(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, replays, _ := stripe.Stats(); replays < 1 {
		t.Errorf("the crashed report was not resent under its idempotency key (replays = %d)", replays)
	}
	seen := map[string]bool{}
	for _, e := range stripe.Events() {
		if seen[e.Identifier] {
			t.Errorf("identifier %s accepted twice", e.Identifier)
		}
		seen[e.Identifier] = true
	}
	resp, err := http.Get(p2.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"cygni_billing_leader 1", `cygni_billing_reports{state="sent"} `, `cygni_billing_reports{state="failed"} 0`} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	p2.Stop(20 * time.Second)

	// The reconcile command reads the same data dir and agrees: no lost or unsent report.
	month := wm.Add(-time.Hour).Format("2006-01")
	out, err := Run(t, 60*time.Second, nil, "--data-dir", dataDir, "billing", "reconcile", "--month", month, "--json")
	var rec struct {
		Totals []struct {
			ProjectID string `json:"projectId"`
			Metric    string `json:"metric"`
			Reported  int64  `json:"reported"`
			Unsent    int64  `json:"unsent"`
			Lost      int64  `json:"lost"`
		} `json:"totals"`
		Differences []struct {
			Kind string `json:"kind"`
		} `json:"differences"`
	}
	if jerr := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rec); jerr != nil {
		t.Fatalf("reconcile output (err %v): %v\n%s", err, jerr, out)
	}
	for _, tot := range rec.Totals {
		if tot.Unsent != 0 || tot.Lost != 0 {
			t.Errorf("reconcile: %+v", tot)
		}
	}
	for _, d := range rec.Differences {
		if d.Kind != "not_closed" {
			t.Errorf("reconcile lists a %s difference: %s", d.Kind, out)
		}
	}
}
