package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/internal/storetest"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// rig is one cygni-usage process's alerting: rule manager, notifier and e-mail sender.
// Evaluations are driven by EvalAt with the test's own times.
type rig struct {
	mgr  *Manager
	ntf  *Notifier
	mail *Sender
	reg  *prometheus.Registry
}

type rigOptions struct {
	ruleFiles      []string
	smtpPort       int
	webhookURL     string
	resolvedEmails bool
}

func startRig(t testing.TB, db tsdb.Storage, st *recordingState, o rigOptions) *rig {
	t.Helper()
	r := &rig{reg: prometheus.NewRegistry()}
	var err error
	r.ntf, err = NewNotifier(nil, NotifierOptions{Directory: st, State: st, Costs: gaugeCosts(db), DayCosts: dayGaugeCosts(db), Webhook: o.webhookURL != "", ResolvedEmails: o.resolvedEmails})
	if err != nil {
		t.Fatal(err)
	}
	r.mgr, err = New(nil, r.reg, Options{
		Storage: db, RuleFiles: o.ruleFiles, ShippedDir: filepath.Join(t.TempDir(), "rules"),
		Evaluated: r.ntf.Reconcile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	smtpD, err := NewSMTPDeliverer(SMTPOptions{Host: "127.0.0.1", Port: max(o.smtpPort, 1), TLS: "none", From: "Cygni Billing <billing@cygni.test>"})
	if err != nil {
		t.Fatal(err)
	}
	r.mail, err = NewSender(nil, SenderOptions{Channel: store.ChannelEmail, Outbox: st, Deliver: smtpD.Deliver, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func noon(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

func summarize(notes []store.Notification) []string {
	var out []string
	for _, n := range notes {
		out = append(out, fmt.Sprintf("%s %s %s %s", n.CreatedAt.Format("01-02"), n.Type, n.Severity, n.Message))
	}
	return out
}

func equalLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// A project's month-to-date cost grows $5.50 a day against a $100 budget: 80 % is crossed on
// the 15th ($82.50), 100 % on the 19th ($104.50). The process restarts on the 16th. April's
// cost starts from zero again: both alerts resolve, and the warning fires anew on April 15th.
//
// It runs on every series store (storage.mode embedded, and remote on VictoriaMetrics and
// Prometheus): the rule outputs (the recording rule, ALERTS, ALERTS_FOR_STATE) go to the store
// and the restart restores the alerts' `for` clocks from it, with the same notifications.
func TestBudgetAlertsThroughTwoMonths(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { budgetAlertsThroughTwoMonths(t, openTSDB(t)) })
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := storetest.Start(t, kind)
			db, err := tsdb.OpenStorage(nil, nil, tsdb.StorageOptions{Mode: tsdb.ModeRemote, Remote: tsdb.RemoteOptions{
				Kind: s.Kind, WriteURL: s.WriteURL, ReadURL: s.ReadURL, QueueDir: t.TempDir(),
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			budgetAlertsThroughTwoMonths(t, db)
		})
	}
}

func budgetAlertsThroughTwoMonths(t *testing.T, db tsdb.Storage) {
	ctx := context.Background()
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})

	day := func(ts time.Time) {
		t.Helper()
		mtd := 5.5 * float64(ts.Day())
		writeDerived(t, db, st.Store, ts, 100, mtd, min(mtd, 99))
		r.mgr.EvalAt(ctx, ts)
	}
	for d := 1; d <= 15; d++ {
		day(noon(2025, 3, d))
	}
	// Re-evaluating the same day again is not a second notification.
	r.mgr.EvalAt(ctx, noon(2025, 3, 15).Add(time.Minute))
	if got := len(st.created()); got != 1 {
		t.Fatalf("after the 15th: %d notifications, want 1", got)
	}

	// Restart mid-month: a new rule manager and notifier, no in-memory state.
	r = startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})
	for d := 16; d <= 31; d++ {
		day(noon(2025, 3, d))
	}
	for d := 1; d <= 15; d++ {
		day(noon(2025, 4, d))
	}

	equalLines(t, "notifications", summarize(st.created()), []string{
		"03-15 budget_warning warning proj_001 has used $82.50 of its $100.00 budget (82.5 %) this billing period",
		"03-19 budget_exceeded critical proj_001 has exceeded its budget: $104.50 of $100.00 (104.5 %) used this billing period. Services keep running; reduce usage or raise the limit",
		// April 1st shows the alerts cleared; a day later (more than the 5 minutes of the resolve
		// hold) the resolutions are recorded, with the amounts of that time.
		"04-02 alert_resolved info Resolved: Budget warning for proj_001 is no longer active (a new billing period began); $11.00 of its $100.00 budget (11.0 %) used this billing period",
		"04-02 alert_resolved info Resolved: Budget exceeded for proj_001 is no longer active (a new billing period began); $11.00 of its $100.00 budget (11.0 %) used this billing period",
		"04-15 budget_warning warning proj_001 has used $82.50 of its $100.00 budget (82.5 %) this billing period",
	})
	n := st.created()[0]
	if n.TeamID != "team_acme" || n.ProjectID != "proj_001" || n.Payload["used"] != "82.50" || n.Payload["limit"] != "100.00" ||
		n.Payload["percentUsed"] != "82.5" || n.Payload["periodStart"] != "2025-03-01" || n.Payload["periodEnd"] != "2025-04-01" {
		t.Errorf("warning notification = %+v", n)
	}

	// The API's read path sees the same notifications, all unread.
	page, err := st.ListNotifications(ctx, "team_acme", store.NotificationQuery{Limit: 100})
	if err != nil || len(page.Items) != 5 || page.UnreadCount != 5 {
		t.Fatalf("ListNotifications: %d items, %d unread, %v", len(page.Items), page.UnreadCount, err)
	}
	// The recording rule was written back to the TSDB.
	if got := recorded(t, db, "cygni:project_budget_used:ratio", noon(2025, 3, 15)); got != 0.825 {
		t.Fatalf("cygni:project_budget_used:ratio on March 15th = %v, want 0.825", got)
	}

	// The e-mails, read back from the SMTP server.
	if _, err := r.mail.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range smtpSrv.messages() {
		got = append(got, fmt.Sprintf("%s → %s: %s", m.From, strings.Join(m.To, ","), m.Subject))
	}
	equalLines(t, "e-mails", got, []string{
		"billing@cygni.test → billing@acme.test: [Cygni] Budget warning: Web shop (82.5 % of its budget)",
		"billing@cygni.test → ana@acme.test,bob@acme.test: [Cygni] Budget exceeded: Web shop (104.5 % of its budget)",
		"billing@cygni.test → billing@acme.test: [Cygni] Budget warning: Web shop (82.5 % of its budget)",
	})
	msgs := smtpSrv.messages()
	for _, want := range []string{
		"proj_001 has used $82.50 of its $100.00 budget (82.5 %) this billing period.",
		"Billing period: 2025-03-01 to 2025-04-01",
		"Cost so far:    $82.50",
		"Budget:         $100.00",
	} {
		if !strings.Contains(msgs[0].Text, want) {
			t.Errorf("warning text lacks %q:\n%s", want, msgs[0].Text)
		}
	}
	if !strings.Contains(msgs[1].Text, "Your services keep running") || !strings.Contains(msgs[1].HTML, "<td>$104.50</td>") {
		t.Errorf("exceeded e-mail:\n%s\n%s", msgs[1].Text, msgs[1].HTML)
	}
	if !strings.Contains(msgs[2].Text, "Billing period: 2025-04-01 to 2025-05-01") {
		t.Errorf("April warning:\n%s", msgs[2].Text)
	}
	// Flushing again sends nothing more.
	if n, err := r.mail.Flush(ctx); err != nil || n != 0 {
		t.Fatalf("second flush sent %d (%v)", n, err)
	}
}

// With a billing anchor on the 10th, the period of an alert on March 5th began on February
// 10th and one on March 12th is a new period.
func TestBillingPeriodAnchor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		t      time.Time
		anchor int
		start  string
		end    string
	}{
		{"calendar month", noon(2025, 3, 5), 1, "2025-03-01", "2025-04-01"},
		{"first instant of a month", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 1, "2025-03-01", "2025-04-01"},
		{"before the anchor", noon(2025, 3, 5), 10, "2025-02-10", "2025-03-10"},
		{"after the anchor", noon(2025, 3, 12), 10, "2025-03-10", "2025-04-10"},
		{"across a year", noon(2025, 1, 3), 28, "2024-12-28", "2025-01-28"},
		{"other time zone is UTC", time.Date(2025, 3, 31, 23, 0, 0, 0, time.FixedZone("x", -3*3600)), 1, "2025-04-01", "2025-05-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e := BillingPeriod(tc.t, tc.anchor)
			if s.Format(time.DateOnly) != tc.start || e.Format(time.DateOnly) != tc.end {
				t.Fatalf("BillingPeriod = %s..%s, want %s..%s", s.Format(time.DateOnly), e.Format(time.DateOnly), tc.start, tc.end)
			}
		})
	}
}

// A broken rule file at reload is rejected with file:line, and the old rules keep running.
func TestReloadRejectsBrokenRuleFile(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	dir := t.TempDir()
	budget, err := shippedRules.ReadFile("rules/budget.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "budget.yml"), budget, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRig(t, db, st, rigOptions{ruleFiles: []string{filepath.Join(dir, "*.yml")}})
	if got := len(r.mgr.RuleGroups()); got != 1 {
		t.Fatalf("%d groups, want 1", got)
	}

	broken := filepath.Join(dir, "zz_broken.yml")
	if err := os.WriteFile(broken, []byte("groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]) >\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.mgr.Reload(ctx)
	var ce *CheckError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), broken+":5:") {
		t.Fatalf("Reload = %v; want a CheckError naming %s:5:", err, broken)
	}
	if got := r.mgr.Files(); len(got) != 1 || got[0] != filepath.Join(dir, "budget.yml") {
		t.Fatalf("running files = %v", got)
	}
	// The old rules still evaluate.
	writeDerived(t, db, st.Store, noon(2025, 5, 20), 100, 90, 95)
	r.mgr.EvalAt(ctx, noon(2025, 5, 20))
	if got := summarize(st.created()); len(got) != 1 || !strings.Contains(got[0], "budget_warning") {
		t.Fatalf("notifications after the rejected reload = %v", got)
	}

	// Fixed: the reload is accepted and both files run.
	if err := os.WriteFile(broken, []byte("groups:\n  - name: fixed\n    rules:\n      - record: x:sum\n        expr: sum(cygni_project_budget_usd)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.mgr.RuleGroups()); got != 2 {
		t.Fatalf("%d groups after the fixed reload, want 2", got)
	}
}

func TestCheckFilesPositions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad expr", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n", ":5:15: group \"g\", rule 1, \"A\": could not parse expression"},
		{"unknown key", "groups:\n  - name: g\n    rulez: []\n", ":3: field rulez not found in type rulefmt.RuleGroup"},
		{"bad yaml", "groups:\n  - name: g\n   rules: [\n", ":1: did not find expected '-' indicator"},
		{"bad template", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n          s: '{{ $value '\n", "template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yml")
			if err := os.WriteFile(f, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			err := CheckFiles(f)
			if err == nil || !strings.Contains(err.Error(), f+tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckFiles = %v; want %q", err, f+tc.want)
			}
			if !strings.Contains(err.Error(), f+":") {
				t.Fatalf("CheckFiles = %v; want it to start with %s:", err, f)
			}
		})
	}
	shipped, err := WriteShippedRules(filepath.Join(dir, "shipped"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckFiles(shipped...); err != nil {
		t.Fatalf("shipped rules: %v", err)
	}
}

// SMTP is down when the alert fires: evaluation goes on, the e-mail waits in the outbox and is
// delivered exactly once when the server comes up.
func TestSMTPDownThenUp(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, p, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(p, &port)

	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	r := startRig(t, db, st, rigOptions{smtpPort: port})
	sctx, cancel := context.WithCancel(ctx)
	senderDone := make(chan struct{})
	go func() { _ = r.mail.Run(sctx); close(senderDone) }()
	t.Cleanup(func() { cancel(); <-senderDone })
	r.ntf.opts.Queued = r.mail.Kick

	expired := time.After(2 * time.Second)
	writeDerived(t, db, st.Store, noon(2025, 6, 20), 100, 120, 150)
	r.mgr.EvalAt(ctx, noon(2025, 6, 20))
	select {
	case <-expired:
		t.Fatal("evaluation took more than 2 s with SMTP down")
	default:
	}
	if got := len(st.created()); got != 2 { // warning and exceeded
		t.Fatalf("%d notifications, want 2", got)
	}
	waitFor(t, "two failed attempts per e-mail", func() bool {
		out, err := st.OutboxMessages(ctx, store.ChannelEmail)
		if err != nil || len(out) != 2 {
			return false
		}
		for _, m := range out {
			if m.Attempts < 2 || m.SentAt != nil || m.LastError == "" {
				return false
			}
		}
		return true
	})

	srv := startSMTP(t, addr)
	waitFor(t, "delivery", func() bool { return len(srv.messages()) == 2 })
	time.Sleep(300 * time.Millisecond) // several more sender polls
	if got := len(srv.messages()); got != 2 {
		t.Fatalf("%d e-mails delivered, want 2", got)
	}
	out, err := st.OutboxMessages(ctx, store.ChannelEmail)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out {
		if m.SentAt == nil {
			t.Fatalf("outbox message %d not marked sent", m.ID)
		}
	}
}

// The webhook is signed, retried after a 500 and delivered once.
func TestWebhookSignedAndRetried(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var calls int
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		if !VerifySignature([]byte("s3cret"), b, r.Header.Get(SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		bodies = append(bodies, b)
	}))
	t.Cleanup(srv.Close)

	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	r := startRig(t, db, st, rigOptions{webhookURL: srv.URL})
	wd, err := NewWebhookDeliverer(srv.URL, "s3cret", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := NewSender(nil, SenderOptions{Channel: store.ChannelWebhook, Outbox: st, Deliver: wd.Deliver, MinBackoff: 10 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writeDerived(t, db, st.Store, noon(2025, 7, 10), 200, 170, 180)
	r.mgr.EvalAt(ctx, noon(2025, 7, 10))
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = hook.Run(sctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "webhook delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(bodies) == 1 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || len(bodies) != 1 {
		t.Fatalf("calls=%d delivered=%d; want 2 calls, 1 delivery", calls, len(bodies))
	}
	var ev WebhookEvent
	if err := json.Unmarshal(bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "budget_warning" || ev.Status != "firing" || ev.Severity != "warning" || ev.ProjectID != "proj_001" || ev.TeamID != "team_acme" ||
		ev.Amounts["used"] != "170.00" || ev.Amounts["limit"] != "200.00" || ev.Amounts["percentUsed"] != "85.0" || ev.PeriodStart != "2025-07-01" ||
		!strings.HasPrefix(ev.ID, "ntf_") || ev.Message != "proj_001 has used $170.00 of its $200.00 budget (85.0 %) this billing period" {
		t.Fatalf("webhook event = %+v", ev)
	}
}

// recorded returns the sample of a recorded series at ts.
func recorded(t testing.TB, db tsdb.Storage, name string, ts time.Time) float64 {
	t.Helper()
	q, err := db.Querier(ts.UnixMilli(), ts.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			_, v := it.At()
			return v
		}
	}
	t.Fatalf("no sample of %s at %s (%v)", name, ts, ss.Err())
	return 0
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	expired := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-expired:
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// An alert that keeps firing across the start of a billing period belongs to the old period
// for PeriodSettle (late data), then to the new one: a new episode; an unknown project is
// skipped.
func TestNotifierPeriodAcrossBoundary(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	ntf, err := NewNotifier(nil, NotifierOptions{Directory: st, State: st, Costs: gaugeCosts(db)})
	if err != nil {
		t.Fatal(err)
	}
	alert := func(project string, active time.Time) *rules.Alert {
		return &rules.Alert{
			State:       rules.StateFiring,
			Labels:      labels.FromStrings("alertname", "ProjectBudgetExceeded", "project", project, "severity", "critical", "threshold", "100"),
			Annotations: labels.FromStrings("type", "budget_exceeded", "used_usd", "120.00", "budget_usd", "100.00"),
			ActiveAt:    active, FiredAt: active,
		}
	}
	active := noon(2025, 3, 20)
	for _, tc := range []struct {
		name    string
		project string
		eval    time.Time
		want    int // notifications so far
	}{
		{"first firing", "proj_001", active, 1},
		{"still firing at month end", "proj_001", time.Date(2025, 3, 31, 23, 59, 0, 0, time.UTC), 1},
		{"30 minutes into April: still March's", "proj_001", time.Date(2025, 4, 1, 0, 30, 0, 0, time.UTC), 1},
		{"an hour and a half into April: April's", "proj_001", time.Date(2025, 4, 1, 1, 30, 0, 0, time.UTC), 2},
		{"April again", "proj_001", time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC), 2},
		{"unknown project", "proj_nope", time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeGauges(t, db, tc.eval, 100, 120, 130) // the exact amounts agree: over 100 %
			ntf.Reconcile(ctx, Evaluation{At: tc.eval, Rules: []RuleAlerts{{Name: "ProjectBudgetExceeded", Healthy: true, Firing: []*rules.Alert{alert(tc.project, active)}}}})
			if got := len(st.created()); got != tc.want {
				t.Fatalf("%d notifications, want %d", got, tc.want)
			}
		})
	}
	notes := st.created()
	if notes[1].Payload["periodStart"] != "2025-04-01" || !notes[1].CreatedAt.Equal(time.Date(2025, 4, 1, 1, 30, 0, 0, time.UTC)) {
		t.Fatalf("April notification = %+v", notes[1])
	}
	eps, err := st.AlertEpisodes(ctx, "proj_001")
	if err != nil || len(eps) != 2 || eps[0].EndReason != store.EndNewPeriod || eps[1].EndedAt != nil || eps[1].Period != "2025-04-01" {
		t.Fatalf("episodes = %+v, %v", eps, err)
	}
	// Critical: the e-mail goes to every admin, not to the billing contact.
	out, err := st.OutboxMessages(ctx, store.ChannelEmail)
	if err != nil || len(out) != 2 {
		t.Fatalf("outbox: %d, %v", len(out), err)
	}
	var e Email
	if err := json.Unmarshal(out[0].Payload, &e); err != nil {
		t.Fatal(err)
	}
	if strings.Join(e.To, ",") != "ana@acme.test,bob@acme.test" || e.MessageID != notes[0].ID+"@cygni-usage" {
		t.Fatalf("e-mail = %+v", e)
	}
}
