package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/internal/pgtest"
	"github.com/cygni/usage/internal/smtptest"
	"github.com/cygni/usage/internal/storetest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// The product past one machine, every kind of process on its own: PostgreSQL and
// VictoriaMetrics shared by two collector shards, two API replicas (one of them the Deriver),
// two rule-evaluation processes (one leads) and two billing processes (one leads), against the
// simulated AWS, a recording Stripe server and a real SMTP server. Each kind is SIGKILLed in turn
// while it works and then started again:
//   - collector shard 1 mid-backfill: a new process of that shard resumes from its watermark;
//   - the Deriver's API replica: the other replica answers throughout and takes the Deriver;
//   - the billing leader after Stripe accepted its first events: the other one takes billing;
//   - the rule leader once every alert is e-mailed: the other process takes the rules and
//     notifies nothing again.
//
// Then: the 1-minute series and the hourly tier equal the simulator's truth (nothing lost or
// doubled), Stripe's totals per meter and customer equal the truth floored to the unit with no
// identifier accepted twice, and every budget alert was e-mailed once in its period. Each
// leadership's move is logged (t.Logf) and bounded by a minute. The test runs for about two
// minutes on the shared 2-core machine (the collectors' backfill of 4 hours is the most of it).
func TestRemoteMultiProcess(t *testing.T) {
	clk := Clock(t)
	startedAt := clk()
	vm := storetest.Start(t, storetest.VictoriaMetrics)
	dsn := pgtest.DSN(t, "e2e_multi")
	sim := simaws.New(simaws.Options{Projects: 4, ServicesPerProject: 2, Untagged: -1, Now: clk})
	// 300 ms per GetMetricData call: a shard's 4-hour backfill in 1-hour chunks is still running
	// when its first chunk is committed.
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/GetMetricData") {
			time.Sleep(300 * time.Millisecond)
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(aws.Close)
	mail := smtptest.Start(t, "127.0.0.1:0")
	stripe := stripetest.New(t)
	stripe.AddCustomer("cus_acme", "cus_globex")
	// 150 ms per meter event: the billing leader is still sending when it is killed.
	target, _ := url.Parse(stripe.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// A killed billing leader's request in flight ends here: answer it without a log line.
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	slowStripe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			time.Sleep(150 * time.Millisecond)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(slowStripe.Close)

	// Teams, members, projects, Stripe customers and tokens in PostgreSQL, with the CLI.
	admin := storeBackend{name: "postgres", config: "store:\n  driver: postgres\n",
		env: []string{"CYGNI_STORE_DSN=" + dsn, "CYGNI_STRIPE_API_KEY=" + stripe.Key, "CYGNI_STRIPE_URL=" + stripe.URL}}
	cliDir := t.TempDir()
	teams := []struct{ id, name, billing, adminEmail, customer string }{
		{"team_acme", "Acme", "billing@acme.example", "ada@acme.example", "cus_acme"},
		{"team_globex", "Globex", "billing@globex.example", "gus@globex.example", "cus_globex"},
	}
	teamOf := map[string]int{"proj_001": 0, "proj_002": 0, "proj_003": 1, "proj_004": 1}
	projects := []string{"proj_001", "proj_002", "proj_003", "proj_004"}
	token := map[string]string{}
	for _, tm := range teams {
		// A $1 default budget: every project is over it within minutes.
		cli(t, admin, cliDir, "team", "create", tm.name, "--id", tm.id, "--billing-email", tm.billing, "--default-limit", "1")
		cli(t, admin, cliDir, "member", "add", tm.id, tm.adminEmail, "--role", "admin")
		cli(t, admin, cliDir, "team", "set-stripe-customer", tm.id, tm.customer)
		token[tm.id] = lastLineOf(cli(t, admin, cliDir, "token", "create", tm.id, "--role", "admin", "--name", "e2e"))
	}
	for _, p := range projects {
		cli(t, admin, cliDir, "project", "create", teams[teamOf[p]].id, "--id", p)
	}

	config := func(shard string) string {
		return fmt.Sprintf(`store:
  driver: postgres
  dsn: %q
storage:
  mode: remote
  remote:
    kind: victoriametrics
    write_url: %s
    read_url: %s
collector:
  backfill: 4h
  chunk: 1h
  interval: 10s
  shard: %q
pricing:
  sheets:
    - effective_from: 0001-01-01T00:00:00Z
      vcpu_hour: "50"
      memory_gb_hour: "5"
      egress_gb: "90"
      storage_gb_hour: "0.1"
      million_requests: "400"
billing:
  settle_delay: 1m
  interval: 200ms
  recheck_interval: 1s
  stripe:
    url: %s
alerting:
  evaluation_interval: 5s
  smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Cygni Billing <billing@cygni.example>"}
`, dsn, vm.WriteURL, vm.ReadURL, shard, slowStripe.URL, mail.Port())
	}
	env := append(AWSEnv(t, aws.URL), "CYGNI_STRIPE_API_KEY="+stripe.Key)
	start := func(only, shard string) *Proc {
		return Start(t, ProcOptions{Args: []string{"serve", "--only", only}, Config: config(shard), Env: env})
	}
	const taken = `msg="leadership taken" name=`
	// takeover waits until p logs the leadership msg n times and returns how long that took
	// since killed; a minute at most.
	takeover := func(p *Proc, msg string, n int, killed time.Time, what string) time.Duration {
		t.Helper()
		for expired := timeout(time.Minute); strings.Count(p.Stderr(), msg) < n; time.Sleep(20 * time.Millisecond) {
			if expired() {
				t.Fatalf("%s: not moved within a minute of the kill\n%s", what, tail(p.Stderr(), 3000))
			}
		}
		d := time.Since(killed)
		t.Logf("%s moved %s after the kill", what, d.Round(10*time.Millisecond))
		return d
	}

	c0 := start("collector", "0/2")
	c1 := start("collector", "1/2")
	a, b := start("api", ""), start("api", "")
	r1, r2 := start("alerting", ""), start("alerting", "")
	p1, p2 := start("billing", ""), start("billing", "")

	// 1. Collector shard 1, killed after its first committed chunk; a new process for the shard
	// (another machine: a fresh data dir) resumes from the watermark in PostgreSQL.
	waitLog(t, c1, taken+"collector/", 1)
	waitLog(t, c1, "collecting ", 1)
	c1.Kill()
	killed := time.Now()
	if strings.Contains(c1.Stderr(), "backfill done") {
		t.Fatal("shard 1 finished its backfill before the kill")
	}
	c1b := start("collector", "1/2")
	takeover(c1b, taken+"collector/", 1, killed, "collector shard 1")
	// The backfills are done (shard 1's rest of it: at least two of its four hours).
	waitLog(t, c0, "backfill done", 1)
	waitLog(t, c1b, "backfill done", 1)
	if strings.Contains(c1b.Stderr(), "no watermark") {
		t.Errorf("the restarted shard 1 started over instead of resuming from its watermark:\n%s", tail(c1b.Stderr(), 2000))
	}
	// Where each shard's backfill started: a service's truth counts from its shard's start.
	fromOf := map[int]time.Time{}
	for shard, p := range map[int]*Proc{0: c0, 1: c1} {
		from, err := time.Parse(time.RFC3339, LogValue(p.Stderr(), "no watermark; backfilling", "from"))
		if err != nil {
			t.Fatalf("shard %d: backfill start not logged: %v", shard, err)
		}
		fromOf[shard] = from.Truncate(time.Minute)
	}
	serviceFrom := func(s simaws.Service) time.Time { return fromOf[collector.ShardOf(s.Cluster, s.Name, 2)] }

	// 2. The API replica that runs the Deriver, killed; the other answers throughout and takes
	// the Deriver over.
	a.WaitReady(90 * time.Second)
	b.WaitReady(90 * time.Second)
	answers := func(p *Proc) {
		t.Helper()
		for _, pr := range projects {
			if status, body := get(t, p.URL()+"/api/projects/"+pr+"/budget", token[teams[teamOf[pr]].id]); status != http.StatusOK {
				t.Fatalf("%s budget from %s: %d %s", pr, p.Addr, status, body)
			}
		}
	}
	waitUntil(t, 30*time.Second, "a Deriver leader", func() bool {
		return strings.Contains(a.Stderr(), taken+"deriver") || strings.Contains(b.Stderr(), taken+"deriver")
	})
	leader, follower := a, b
	if strings.Contains(b.Stderr(), taken+"deriver") {
		leader, follower = b, a
	}
	answers(follower)
	leader.Kill()
	killed = time.Now()
	answers(follower)
	takeover(follower, taken+"deriver", 1, killed, "the Deriver")
	answers(follower)
	restartedAPI := start("api", "")
	restartedAPI.WaitReady(90 * time.Second)
	answers(restartedAPI)

	// 3. The billing leader, killed once Stripe has accepted some of its events.
	waitUntil(t, 90*time.Second, "the first meter events", func() bool { return len(stripe.Events()) >= 3 })
	bl, bf := p1, p2
	if strings.Contains(p2.Stderr(), `msg="billing leadership taken"`) {
		bl, bf = p2, p1
	}
	bl.Kill()
	killed = time.Now()
	sentBefore := len(stripe.Events())
	takeover(bf, `msg="billing leadership taken"`, 1, killed, "billing")
	restartedBilling := start("billing", "")

	// 4. The rule leader, killed once every budget alert is e-mailed, while it keeps evaluating
	// them: the one that takes over restores the alerts from the store and notifies nothing
	// again. (Killed mid-delivery instead, the messages it had claimed wait for their 5-minute
	// lease in the outbox before another process sends them: late, not lost, not doubled.)
	// E-mails: every project's warning (to the billing contact) and exceeded alert (to the
	// admin) once per billing period the test ran in (the suite's pinned instant may sit just
	// before a month's end).
	type mailKey struct{ to, subject string }
	wantMails := []mailKey{}
	for _, p := range projects {
		tm := teams[teamOf[p]]
		wantMails = append(wantMails, mailKey{tm.billing, "[Cygni] Budget warning: " + p}, mailKey{tm.adminEmail, "[Cygni] Budget exceeded: " + p})
	}
	count := func() map[mailKey]int {
		n := map[mailKey]int{}
		for _, m := range mail.Messages() {
			subject, _, _ := strings.Cut(m.Subject, " (")
			n[mailKey{strings.Join(m.To, ","), subject}]++
		}
		return n
	}
	waitUntil(t, 90*time.Second, "every budget e-mail", func() bool {
		n := count()
		for _, k := range wantMails {
			if n[k] == 0 {
				return false
			}
		}
		return true
	})
	rl, rf := r1, r2
	if strings.Contains(r2.Stderr(), taken+"rules") {
		rl, rf = r2, r1
	}
	rl.Kill()
	killed = time.Now()
	takeover(rf, taken+"rules", 1, killed, "the rule evaluation")
	restartedRules := start("alerting", "")

	// The series: the 1-minute cpu series and its hourly tier, per project, equal the truth.
	reader, err := tsdb.OpenReader(nil, tsdb.StorageOptions{Mode: tsdb.ModeRemote, Remote: tsdb.RemoteOptions{Kind: vm.Kind, ReadURL: vm.ReadURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	sum := func(name string, from, to time.Time) map[string]float64 {
		if resp, err := http.Get(vm.BaseURL + "/internal/force_flush"); err == nil {
			resp.Body.Close()
		}
		q, err := reader.Querier(from.UnixMilli()+1, to.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		got := map[string]float64{}
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
		var it chunkenc.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				_, v := it.At()
				got[ss.At().Labels().Get("project")] += v
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// The whole hours both shards backfilled, up to the first hour after the backfill.
	h0 := fromOf[0]
	if fromOf[1].After(h0) {
		h0 = fromOf[1]
	}
	h0 = h0.Truncate(time.Hour).Add(time.Hour)
	h1 := h0.Add(3 * time.Hour)
	var diff []string
	for expired := timeout(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		diff = diff[:0]
		raw, hourly := sum(simaws.SeriesCPUSeconds, h0, h1), sum(simaws.SeriesCPUSeconds+":sum1h", h0, h1)
		for _, p := range projects {
			want := decimal.Zero
			for _, s := range sim.Services() {
				if s.Project == p {
					want = want.Add(decimal.NewFromInt(sim.RawTruth(s, simaws.SeriesCPUSeconds, h0, h1) * 60).Div(decimal.NewFromInt(1024)))
				}
			}
			for what, got := range map[string]float64{"1-minute": raw[p], "hourly": hourly[p]} {
				if !decimal.NewFromFloat(got).Sub(want).Abs().LessThanOrEqual(want.Shift(-9)) {
					diff = append(diff, fmt.Sprintf("%s %s: %v, truth %s", p, what, got, want))
				}
			}
		}
		if len(diff) == 0 {
			break
		}
		if expired() {
			t.Fatalf("cpu over [%s, %s) is not the truth: %s", h0, h1, strings.Join(diff, "; "))
		}
	}

	// Stripe: per meter and customer, floor(exact truth over the closed hours / unit), summed
	// over the projects of the customer's team; the expectation follows the clock across an hour.
	meters := []struct {
		event, series string
		perUnit       decimal.Decimal // stored units per reported unit
		scale         func(raw int64) decimal.Decimal
	}{
		{"cygni_vcpu_hours", series.CPUSeconds, decimal.RequireFromString("3.6"),
			func(raw int64) decimal.Decimal { return decimal.NewFromInt(raw * 60).Div(decimal.NewFromInt(1024)) }},
		{"cygni_memory_gb_hours", series.MemoryGBHours, decimal.RequireFromString("0.001"),
			func(raw int64) decimal.Decimal {
				return decimal.NewFromInt(raw).DivRound(decimal.NewFromInt(61440), 30)
			}},
		{"cygni_egress_gb", series.EgressBytes, decimal.RequireFromString("0.001").Mul(decimal.NewFromInt(series.GiB)),
			func(raw int64) decimal.Decimal { return decimal.NewFromInt(raw * 60) }},
		{"cygni_requests", series.Requests, decimal.NewFromInt(1), decimal.NewFromInt},
	}
	expected := func(wm time.Time) map[string]int64 {
		want := map[string]int64{}
		for _, p := range projects {
			for _, m := range meters {
				total := decimal.Zero
				for _, s := range sim.Services() {
					if s.Project == p {
						total = total.Add(m.scale(sim.RawTruth(s, m.series, serviceFrom(s), wm)))
					}
				}
				want[m.event+"/"+teams[teamOf[p]].customer] += total.Div(m.perUnit).Floor().IntPart()
			}
		}
		return want
	}
	var got, want map[string]int64
	for expired := timeout(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		want = expected(clk().UTC().Add(-time.Minute).Truncate(time.Hour))
		got = map[string]int64{}
		for key := range want {
			ev, cus, _ := strings.Cut(key, "/")
			got[key] = stripe.Total(ev, cus)
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if expired() {
			t.Fatalf("Stripe totals %v, want %v\n%s", got, want, tail(bf.Stderr(), 3000))
		}
	}
	seen := map[string]bool{}
	for _, e := range stripe.Events() {
		if seen[e.Identifier] {
			t.Errorf("identifier %s accepted twice", e.Identifier)
		}
		seen[e.Identifier] = true
	}
	if len(stripe.Events()) <= sentBefore {
		t.Errorf("billing sent nothing after the leader's kill (%d events before it)", sentBefore)
	}

	time.Sleep(6 * time.Second) // another evaluation and send cycle: nothing is repeated
	periods := 1
	if end := clk(); end.UTC().Month() != startedAt.UTC().Month() {
		periods = 2
	}
	var dup []string
	for k, n := range count() {
		if n > periods {
			dup = append(dup, fmt.Sprintf("%s %q ×%d", k.to, k.subject, n))
		}
	}
	slices.Sort(dup)
	if len(dup) > 0 {
		t.Errorf("e-mailed more than once per period: %s", strings.Join(dup, "; "))
	}

	// Every survivor and restarted process is still running; the API answers from both replicas.
	answers(follower)
	answers(restartedAPI)
	for _, p := range []*Proc{c0, c1b, follower, restartedAPI, rf, restartedRules, bf, restartedBilling} {
		select {
		case <-p.done:
			t.Errorf("a process exited: %v\n%s", p.err, tail(p.Stderr(), 2000))
		default:
		}
	}
	// The processes without the api part serve their probes and metrics: the collectors are
	// ready (caught up) and show their remote-write queue, the leaders their leadership.
	for _, c := range []struct {
		p      *Proc
		metric string
	}{
		{c0, "cygni_remote_write_samples_sent_total "}, {c1b, `cygni_leader{name="collector/us-east-1/1of2"} 1`},
		{rf, `cygni_leader{name="rules"} 1`}, {bf, "cygni_billing_leader 1"},
	} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if status, body := get(t, c.p.URL()+path, ""); status != http.StatusOK {
				t.Errorf("%s%s: %d %s", c.p.Addr, path, status, body)
			}
		}
		if status, body := get(t, c.p.URL()+"/metrics", ""); status != http.StatusOK || !strings.Contains(body, c.metric) {
			t.Errorf("%s/metrics: %d, lacks %q", c.p.Addr, status, c.metric)
		}
		if status, _ := get(t, c.p.URL()+"/api/usage/notifications", token["team_acme"]); status != http.StatusNotFound {
			t.Errorf("%s serves the API without the api part: %d", c.p.Addr, status)
		}
	}
}
