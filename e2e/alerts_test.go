package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/alerting"
	"github.com/cygni/usage/internal/smtptest"
	"github.com/cygni/usage/simaws"
)

// collectionLog records when the simulated CloudWatch answered each GetMetricData call (wall
// clock): a collection commits right after its last answer.
type collectionLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *collectionLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/GetMetricData") {
			c.mu.Lock()
			c.times = append(c.times, time.Now())
			c.mu.Unlock()
		}
	})
}

// lastBefore is the last answer before t.
func (c *collectionLog) lastBefore(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, x := range c.times {
		if x.Before(t) {
			last = x
		}
	}
	return last
}

func (c *collectionLog) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

type notificationJSON struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Severity  string         `json:"severity"`
	ProjectID string         `json:"projectId"`
	Message   string         `json:"message"`
	Payload   map[string]any `json:"payload"`
}

func notifications(t testing.TB, base, token string) []notificationJSON {
	t.Helper()
	status, body := get(t, base+"/api/usage/notifications?limit=100", token)
	if status != 200 {
		t.Fatalf("notifications: %d %s", status, body)
	}
	var page struct{ Notifications []notificationJSON }
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	return page.Notifications // newest first
}

func postJSON(t testing.TB, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func setLimit(t testing.TB, base, token, project string, limit decimal.Decimal) {
	t.Helper()
	if status, body := postJSON(t, base+"/api/usage/limits", token, fmt.Sprintf(`{"projectId":%q,"budgetLimit":%s}`, project, limit.StringFixed(2))); status != 200 {
		t.Fatalf("set the limit of %s to %s: %d %s", project, limit, status, body)
	}
}

// usedOf is the budget endpoint's "used" of a project.
func usedOf(t testing.TB, base, token, project string) decimal.Decimal {
	t.Helper()
	status, body := get(t, base+"/api/projects/"+project+"/budget", token)
	if status != 200 {
		t.Fatalf("budget of %s: %d %s", project, status, body)
	}
	var b struct {
		Used json.Number `json:"used"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	return decimal.RequireFromString(b.Used.String())
}

// heldAlert is E2EHeldAlert as /api/v1/alerts shows it ("" state when absent).
func heldAlert(t testing.TB, base, token string) (state string, activeAt time.Time) {
	t.Helper()
	status, body := get(t, base+"/api/v1/alerts", token)
	if status != 200 {
		t.Fatalf("/api/v1/alerts: %d %s", status, body)
	}
	var r struct {
		Data struct {
			Alerts []struct {
				Labels   map[string]string `json:"labels"`
				State    string            `json:"state"`
				ActiveAt time.Time         `json:"activeAt"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == "E2EHeldAlert" {
			return a.State, a.ActiveAt
		}
	}
	return "", time.Time{}
}

func waitUntil(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	expired := timeout(limit)
	for !cond() {
		if expired() {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latencyRounds is how many rounds of threshold crossings TestBudgetAlertsEndToEnd measures
// (each crossing of each of the 4 projects is one sample; a round takes about a minute).
// CYGNI_E2E_LATENCY_ROUNDS raises it for the figures in docs/benchmarks.md.
func latencyRounds(t testing.TB) int {
	if v := os.Getenv("CYGNI_E2E_LATENCY_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CYGNI_E2E_LATENCY_ROUNDS=%q is not a positive integer", v)
		}
		return n
	}
	return 1
}

// The budget alerts of a real process against the simulated AWS, a real SMTP server and the
// REST API, at the suite's pinned instant (the latencies are wall-clock durations: this part is
// about real time):
//   - every project is over its team's $1 default budget (prices are 1,000 times the defaults):
//     warnings to the billing contact only, exceeded alerts to every admin and nobody else,
//     once each;
//   - a usage spike injected in the simulated AWS (×8 for proj_002) is an anomaly
//     notification and e-mail, and nobody else's;
//   - a budget raised above the usage resolves both alerts with the new limit; lowered again,
//     both notify again: the newest notification is never "Resolved" while over budget;
//   - a SIGKILL keeps the `for` clock of a pending alert and repeats no notification;
//   - from the collection commit that crosses a threshold to the e-mail: under 30 s.
func TestBudgetAlertsEndToEnd(t *testing.T) {
	simNow := Clock(t)
	sim := simaws.New(simaws.Options{Now: simNow})
	start := simNow().Truncate(time.Hour)
	if err := sim.AddSpike(simaws.Spike{Project: "proj_002", Factor: 8, From: start.Add(-time.Hour), To: start.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cols := &collectionLog{}
	srv := httptest.NewServer(cols.wrap(sim.Handler()))
	t.Cleanup(srv.Close)
	mail := smtptest.Start(t, "127.0.0.1:0")

	dataDir := t.TempDir()
	b := storeBackend{name: "sqlite"}
	for _, team := range []struct{ id, name, billing string }{{"team_acme", "Acme", "billing@acme.example"}, {"team_globex", "Globex", "billing@globex.example"}} {
		// A $1 default budget: every project is over it from the first minutes of a period on.
		cli(t, b, dataDir, "team", "create", team.name, "--id", team.id, "--billing-email", team.billing, "--default-limit", "1")
	}
	cli(t, b, dataDir, "member", "add", "team_acme", "ada@acme.example", "--role", "admin")
	cli(t, b, dataDir, "member", "add", "team_acme", "bob@acme.example", "--role", "admin")
	cli(t, b, dataDir, "member", "add", "team_acme", "dev@acme.example", "--role", "member")
	cli(t, b, dataDir, "member", "add", "team_globex", "gus@globex.example", "--role", "admin")
	teamOf := map[string]string{"proj_001": "team_acme", "proj_002": "team_acme", "proj_003": "team_globex", "proj_004": "team_globex"}
	projects := []string{"proj_001", "proj_002", "proj_003", "proj_004"}
	for _, p := range projects {
		cli(t, b, dataDir, "project", "create", teamOf[p], "--id", p)
	}
	token := map[string]string{}
	for _, team := range []string{"team_acme", "team_globex"} {
		token[team] = lastLineOf(cli(t, b, dataDir, "token", "create", team, "--role", "admin", "--name", "e2e"))
	}

	rules := filepath.Join(t.TempDir(), "rules")
	if _, err := alerting.WriteShippedRules(rules); err != nil {
		t.Fatal(err)
	}
	// Pending until after the kill: 2 minutes, and 2 more for every extra latency round.
	hold := time.Duration(2*latencyRounds(t)) * time.Minute
	writeFile(t, filepath.Join(rules, "held.yml"), "groups:\n  - name: e2e-held\n    rules:\n      - alert: E2EHeldAlert\n"+
		"        expr: cygni_project_cost_month_to_date_usd{project=\"proj_003\"} > 0\n        for: "+hold.String()+"\n        labels: {severity: info}\n")
	cfg := fmt.Sprintf(`collector:
  backfill: 26h
  chunk: 6h
  interval: 15s
pricing:
  sheets:
    - effective_from: 0001-01-01T00:00:00Z
      vcpu_hour: "50"
      memory_gb_hour: "5"
      egress_gb: "90"
      storage_gb_hour: "0.1"
      million_requests: "400"
alerting:
  rule_files: [%q]
  evaluation_interval: 5s
  resolve_after: 5s
  for_grace_period: 10s
  smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Cygni Billing <billing@cygni.example>"}
`, filepath.Join(rules, "*.yml"), mail.Port())
	// Start pins the process to the test's clock (the simulator's), here and after the restart.
	env := AWSEnv(t, srv.URL)
	p1 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,api,alerting"}, DataDir: dataDir, Config: cfg, Env: env})
	p1.WaitReady(90 * time.Second)
	base := p1.URL()

	// At start: every project warned and exceeded, proj_002 unusual.
	expect := []string{}
	for _, p := range projects {
		expect = append(expect, p+" budget_warning", p+" budget_exceeded")
	}
	expect = append(expect, "proj_002 usage_anomaly")
	slices.Sort(expect)
	summary := func() []string {
		var got []string
		for _, team := range []string{"team_acme", "team_globex"} {
			for _, n := range notifications(t, base, token[team]) {
				if n.Type != "alert" { // E2EHeldAlert fires later
					got = append(got, n.ProjectID+" "+n.Type)
				}
			}
		}
		slices.Sort(got)
		return got
	}
	waitUntil(t, 60*time.Second, "the first notifications", func() bool { return len(summary()) >= len(expect) })
	time.Sleep(3 * time.Second) // more evaluations: nothing is repeated
	if got := summary(); strings.Join(got, "\n") != strings.Join(expect, "\n") {
		t.Fatalf("notifications at start:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(expect, "\n"))
	}
	waitUntil(t, 30*time.Second, "9 e-mails", func() bool { return len(mail.Messages()) >= 9 })
	var mails []string
	for _, m := range mail.Messages() {
		subject := m.Subject
		if i := strings.Index(subject, " ("); i > 0 {
			subject = subject[:i] // the amounts differ by the simulated fleet
		}
		mails = append(mails, strings.Join(m.To, ",")+": "+subject)
	}
	slices.Sort(mails)
	want := []string{
		"ada@acme.example,bob@acme.example: [Cygni] Budget exceeded: proj_001",
		"ada@acme.example,bob@acme.example: [Cygni] Budget exceeded: proj_002",
		"billing@acme.example: [Cygni] Budget warning: proj_001",
		"billing@acme.example: [Cygni] Budget warning: proj_002",
		"billing@acme.example: [Cygni] Unusual usage: proj_002",
		"billing@globex.example: [Cygni] Budget warning: proj_003",
		"billing@globex.example: [Cygni] Budget warning: proj_004",
		"gus@globex.example: [Cygni] Budget exceeded: proj_003",
		"gus@globex.example: [Cygni] Budget exceeded: proj_004",
	}
	if strings.Join(mails, "\n") != strings.Join(want, "\n") {
		t.Fatalf("e-mails:\n%s\nwant:\n%s", strings.Join(mails, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range notifications(t, base, token["team_acme"]) {
		if n.Type == "usage_anomaly" && (!strings.HasPrefix(n.Message, "proj_002 cost $") || !strings.Contains(n.Message, "more than 3 times its usual")) {
			t.Fatalf("anomaly notification: %+v", n)
		}
	}
	_, heldActive := heldAlert(t, base, token["team_globex"])
	if heldActive.IsZero() {
		t.Fatalf("E2EHeldAlert is not pending")
	}

	// Latency: set every project's budget so that 80 % lies just above its cost; the next
	// collection with new data crosses it.
	var latencies []time.Duration
	for round := range latencyRounds(t) {
		n0 := cols.count()
		waitUntil(t, 30*time.Second, "a collection", func() bool { return cols.count() > n0 })
		time.Sleep(time.Second) // committed and derived
		sent := time.Now()
		got0 := len(mail.Messages())
		for _, p := range projects {
			tok := token[teamOf[p]]
			used := usedOf(t, base, tok, p)
			limit := used.Add(decimal.RequireFromString("0.005")).Div(decimal.RequireFromString("0.8")).RoundUp(2)
			setLimit(t, base, tok, p, limit)
		}
		waitUntil(t, 120*time.Second, fmt.Sprintf("round %d: 4 warnings", round), func() bool {
			n := 0
			for _, m := range mail.Messages()[got0:] {
				if strings.Contains(m.Subject, "Budget warning") {
					n++
				}
			}
			return n == 4
		})
		for _, m := range mail.Messages()[got0:] {
			if !strings.Contains(m.Subject, "Budget warning") {
				continue
			}
			commit := cols.lastBefore(m.Received)
			if !commit.After(sent) {
				t.Fatalf("round %d: %q arrived without a collection since the budget change", round, m.Subject)
			}
			latencies = append(latencies, m.Received.Sub(commit))
		}
	}
	slices.Sort(latencies)
	var total time.Duration
	for _, l := range latencies {
		total += l
	}
	pct := func(q float64) time.Duration { return latencies[int(math.Ceil(q*float64(len(latencies))))-1] }
	t.Logf("collection commit → e-mail over %d crossings: min %s, p50 %s, p90 %s, max %s, mean %s", len(latencies),
		latencies[0].Round(time.Millisecond), pct(0.5).Round(time.Millisecond), pct(0.9).Round(time.Millisecond),
		latencies[len(latencies)-1].Round(time.Millisecond), (total / time.Duration(len(latencies))).Round(time.Millisecond))
	if worst := latencies[len(latencies)-1]; worst >= 30*time.Second {
		t.Fatalf("worst latency %s, want under 30s (all: %v)", worst, latencies)
	}

	// Raise proj_001's budget above its usage (its warning is open since the latency round),
	// then lower it again.
	acme := token["team_acme"]
	of001 := func() []notificationJSON {
		var out []notificationJSON
		for _, x := range notifications(t, base, acme) {
			if x.ProjectID == "proj_001" {
				out = append(out, x)
			}
		}
		return out
	}
	setLimit(t, base, acme, "proj_001", decimal.NewFromInt(1_000_000))
	waitUntil(t, 60*time.Second, "the resolution of proj_001's warning", func() bool { return of001()[0].Type == "alert_resolved" })
	if x := of001()[0]; x.Payload["limit"] != "1000000.00" || x.Payload["resolvedType"] != "budget_warning" || !strings.Contains(x.Message, "below the threshold") {
		t.Fatalf("resolution: %+v", x)
	}
	setLimit(t, base, acme, "proj_001", decimal.NewFromInt(1))
	waitUntil(t, 30*time.Second, "proj_001 notified again", func() bool {
		ns := of001()
		return ns[0].Type != "alert_resolved" && ns[1].Type != "alert_resolved"
	})
	for _, x := range of001()[:2] {
		if x.Payload["limit"] != "1.00" || (x.Type != "budget_warning" && x.Type != "budget_exceeded") {
			t.Fatalf("after lowering the budget: %+v", x)
		}
	}

	// SIGKILL with E2EHeldAlert pending (active for about a minute of its hold), then restart.
	if st, _ := heldAlert(t, base, token["team_globex"]); st != "pending" {
		t.Fatalf("E2EHeldAlert is %q before the kill, want pending", st)
	}
	before := len(summary())
	p1.Kill()
	killedAt := simNow()
	p2 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,api,alerting"}, DataDir: dataDir, Config: cfg, Env: env, Addr: p1.Addr})
	p2.WaitReady(90 * time.Second)
	var st string
	var restoredActive time.Time
	waitUntil(t, 30*time.Second, "E2EHeldAlert after the restart", func() bool {
		st, restoredActive = heldAlert(t, base, token["team_globex"])
		return st != ""
	})
	// Restored: only the outage is added to its active time; started over it would be active
	// from after the restart. ALERTS_FOR_STATE holds ActiveAt in whole seconds (Prometheus writes
	// ActiveAt.Unix()), so the restored time may be up to a second earlier than the one before a
	// restart shorter than a second.
	if shift := restoredActive.Sub(heldActive); shift <= -time.Second || shift > 30*time.Second || !restoredActive.Before(killedAt) {
		t.Fatalf("E2EHeldAlert active since %s before the kill at %s, since %s after the restart (%s)", heldActive, killedAt, restoredActive, st)
	}
	time.Sleep(3 * time.Second)
	if got := len(summary()); got != before {
		t.Fatalf("%d notifications after the restart, %d before", got, before)
	}

	// The held alert fires after its hold of evaluated time.
	if st, _ := heldAlert(t, base, token["team_globex"]); st != "firing" && simNow().Sub(restoredActive) > hold+20*time.Second {
		t.Fatalf("E2EHeldAlert is %q %s after its restored active time", st, simNow().Sub(restoredActive))
	}
	p2.Stop(20 * time.Second)
}
