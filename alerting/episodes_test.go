package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"

	"github.com/cygni/usage/internal/clock/clocktest"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// minutes evaluates every minute in (from, from+n min], writing the gauges first.
func minutes(t testing.TB, r *rig, db tsdb.Storage, st *recordingState, from time.Time, n int, budget, mtd, forecast float64) time.Time {
	t.Helper()
	ts := from
	for range n {
		ts = ts.Add(time.Minute)
		writeDerived(t, db, st.Store, ts, budget, mtd, forecast)
		r.mgr.EvalAt(context.Background(), ts)
	}
	return ts
}

// The scenario: a project over its $100 budget; the budget is raised above the usage,
// then lowered again in the same period. Each change of the limit in force is a new episode:
// the raise resolves both alerts (with the amounts and limit of that time), the lowering
// notifies again, and the newest notification never says "Resolved" while the project is over
// budget. A raise that is undone within the resolve hold is no episode at all.
func TestBudgetRaisedThenLowered(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})
	t0 := clocktest.Now(t).Truncate(time.Minute)

	ts := minutes(t, r, db, st, t0, 3, 100, 120, 130)   // over budget: warning and exceeded
	ts = minutes(t, r, db, st, ts, 10, 200, 120, 130)   // raised to $200 for 10 minutes: both resolve
	ts = minutes(t, r, db, st, ts, 3, 100, 120.5, 130)  // lowered to $100 again: both fire again
	ts = minutes(t, r, db, st, ts, 2, 200, 121, 130)    // raised for 2 minutes only (within the hold)
	ts = minutes(t, r, db, st, ts, 10, 100, 121, 130)   // back at $100: the episodes go on
	ts = minutes(t, r, db, st, ts, 3, 110, 121.25, 130) // $110, still exceeded: a new episode of both
	_ = ts

	var got []string
	for _, n := range st.created() {
		got = append(got, fmt.Sprintf("%s %s: %s", n.CreatedAt.Sub(t0), n.Type, n.Message))
	}
	equalLines(t, "notifications", got, []string{
		"1m0s budget_warning: proj_001 has used $120.00 of its $100.00 budget (120.0 %) this billing period",
		"1m0s budget_exceeded: proj_001 has exceeded its budget: $120.00 of $100.00 (120.0 %) used this billing period. Services keep running; reduce usage or raise the limit",
		// The raise at 4m clears both; after the 5-minute hold (at 9m) they resolve.
		"9m0s alert_resolved: Resolved: Budget warning for proj_001 is no longer active (the cost of the billing period is below the threshold: the budget was raised or the cost corrected); $120.00 of its $200.00 budget (60.0 %) used this billing period",
		"9m0s alert_resolved: Resolved: Budget exceeded for proj_001 is no longer active (the cost of the billing period is below the threshold: the budget was raised or the cost corrected); $120.00 of its $200.00 budget (60.0 %) used this billing period",
		"14m0s budget_warning: proj_001 has used $120.50 of its $100.00 budget (120.5 %) this billing period",
		"14m0s budget_exceeded: proj_001 has exceeded its budget: $120.50 of $100.00 (120.5 %) used this billing period. Services keep running; reduce usage or raise the limit",
		"29m0s budget_warning: proj_001 has used $121.25 of its $110.00 budget (110.2 %) this billing period",
		"29m0s budget_exceeded: proj_001 has exceeded its budget: $121.25 of $110.00 (110.2 %) used this billing period. Services keep running; reduce usage or raise the limit",
	})
	last := st.created()[len(st.created())-1]
	if last.Type != TypeBudgetExceeded || last.Payload["limit"] != "110.00" || last.Payload["used"] != "121.25" || last.Payload["percentUsed"] != "110.2" {
		t.Fatalf("newest notification = %+v", last)
	}
	resolved := st.created()[3]
	if resolved.Payload["limit"] != "200.00" || resolved.Payload["used"] != "120.00" || resolved.Payload["percentUsed"] != "60.0" || resolved.Payload["resolvedType"] != TypeBudgetExceeded {
		t.Fatalf("resolution payload = %+v", resolved.Payload)
	}
	eps, err := st.AlertEpisodes(ctx, "proj_001")
	if err != nil {
		t.Fatal(err)
	}
	var ends []string
	for _, e := range eps {
		ends = append(ends, e.AlertName+" "+e.Limit+" "+e.EndReason)
	}
	equalLines(t, "episodes", ends, []string{
		"ProjectBudgetWarning 100 resolved", "ProjectBudgetExceeded 100 resolved",
		"ProjectBudgetWarning 100 limit_changed", "ProjectBudgetExceeded 100 limit_changed",
		"ProjectBudgetWarning 110 ", "ProjectBudgetExceeded 110 ",
	})

	// The e-mails: every firing, no resolution (resolved e-mails are off by default).
	if _, err := r.mail.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mails []string
	for _, m := range smtpSrv.messages() {
		mails = append(mails, strings.Join(m.To, ",")+": "+m.Subject)
	}
	equalLines(t, "e-mails", mails, []string{
		"billing@acme.test: [Cygni] Budget warning: Web shop (120.0 % of its budget)",
		"ana@acme.test,bob@acme.test: [Cygni] Budget exceeded: Web shop (120.0 % of its budget)",
		"billing@acme.test: [Cygni] Budget warning: Web shop (120.5 % of its budget)",
		"ana@acme.test,bob@acme.test: [Cygni] Budget exceeded: Web shop (120.5 % of its budget)",
		"billing@acme.test: [Cygni] Budget warning: Web shop (110.2 % of its budget)",
		"ana@acme.test,bob@acme.test: [Cygni] Budget exceeded: Web shop (110.2 % of its budget)",
	})
}

// Resolved e-mails, when enabled, go to the recipients of the firing e-mail with the amounts of
// the resolution; a forecast e-mail's subject shows the forecast.
func TestResolvedEmailsAndForecastSubject(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t), resolvedEmails: true})
	t0 := clocktest.Now(t).Truncate(time.Minute)

	ts := minutes(t, r, db, st, t0, 31, 100, 40, 130.456) // the forecast alert holds for 30 minutes
	minutes(t, r, db, st, ts, 6, 100, 40, 90)
	if _, err := r.mail.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mails []string
	for _, m := range smtpSrv.messages() {
		mails = append(mails, strings.Join(m.To, ",")+": "+m.Subject)
	}
	equalLines(t, "e-mails", mails, []string{
		"billing@acme.test: [Cygni] Forecast over budget: Web shop (forecast $130.46 of its $100.00 budget)",
		"billing@acme.test: [Cygni] Resolved: Forecast over budget: Web shop (40.0 % of its budget)",
	})
	msgs := smtpSrv.messages()
	if !strings.Contains(msgs[0].Text, "proj_001 is forecast to spend $130.46 this billing period, over its $100.00 budget ($40.00 so far).") {
		t.Fatalf("forecast e-mail:\n%s", msgs[0].Text)
	}
	if !strings.Contains(msgs[1].Text, "Forecast:       $90.00 by the end of the period") || !strings.Contains(msgs[1].Text, "The alert is no longer active") {
		t.Fatalf("resolution e-mail:\n%s", msgs[1].Text)
	}
}

// A threshold alert evaluated on gauges that lag the store (the budget was just raised) is not
// a notification: the exact amounts say the threshold is not reached.
func TestStaleGaugesDoNotNotify(t *testing.T) {
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	r := startRig(t, db, st, rigOptions{})
	t0 := clocktest.Now(t).Truncate(time.Minute)
	setLimit(t, st.Store, 200)
	writeGauges(t, db, t0, 100, 120, 130) // the Deriver has not seen the raise yet
	r.mgr.EvalAt(context.Background(), t0)
	if got := summarize(st.created()); len(got) != 0 {
		t.Fatalf("notifications on stale gauges: %v", got)
	}
	// The next gauges carry the new limit: 60 %, nothing to say.
	minutes(t, r, db, st, t0, 2, 200, 120, 130)
	if got := summarize(st.created()); len(got) != 0 {
		t.Fatalf("notifications: %v", got)
	}
}

// Missing data is not a resolution: while the derived gauges are absent (the Deriver is down)
// the alerts do not fire, but their episodes stay open; when the data is back the same
// episodes go on without a second notification.
func TestMissingDataDoesNotResolve(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	r := startRig(t, db, st, rigOptions{})
	t0 := clocktest.Now(t).Truncate(time.Minute)
	ts := minutes(t, r, db, st, t0, 2, 100, 120, 130)
	for range 30 { // half an hour without gauges
		ts = ts.Add(time.Minute)
		r.mgr.EvalAt(ctx, ts)
	}
	if got := len(r.mgr.AlertingRules()[0].ActiveAlerts()) + len(r.mgr.AlertingRules()[1].ActiveAlerts()); got != 0 {
		t.Fatalf("%d alerts still active without data", got)
	}
	minutes(t, r, db, st, ts, 2, 100, 121, 130)
	if got := summarize(st.created()); len(got) != 2 {
		t.Fatalf("notifications = %v; want the two of the start only", got)
	}
	eps, _ := st.OpenAlertEpisodes(ctx)
	if len(eps) != 2 || eps[0].ClearSince != nil {
		t.Fatalf("open episodes = %+v", eps)
	}
}

// An alert's `for` clock survives a restart (a new Manager on the same TSDB) and a reload that
// drops its rule file and adds it back: the time before counts, the outage does not
// (Prometheus' ALERTS_FOR_STATE rules, OutageTolerance 1h, ForGracePeriod 10m).
func TestForStateSurvivesRestartAndReload(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	dir := t.TempDir()
	for _, f := range []string{"budget.yml"} {
		b, err := shippedRules.ReadFile("rules/" + f)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(dir, f), string(b))
	}
	// A custom rule with a 40-minute hold in its own file.
	custom := filepath.Join(dir, "custom.yml")
	customRule := "groups:\n  - name: custom\n    rules:\n      - alert: SlowBurn\n        expr: cygni_project_cost_forecast_month_usd > 100\n        for: 40m\n        labels: {severity: warning}\n"
	writeTestFile(t, custom, customRule)
	opts := rigOptions{ruleFiles: []string{filepath.Join(dir, "*.yml")}}
	r := startRig(t, db, st, opts)
	t0 := clocktest.Now(t).Truncate(time.Minute)
	firedAt := func(r *rig, name string) time.Time {
		for _, ar := range r.mgr.AlertingRules() {
			if ar.Name() == name {
				for _, a := range ar.ActiveAlerts() {
					if a.State == rules.StateFiring {
						return a.FiredAt
					}
				}
			}
		}
		return time.Time{}
	}

	// 15 minutes pending, then a restart after a 5-minute outage: 25 minutes remain.
	ts := minutes(t, r, db, st, t0.Add(-time.Minute), 16, 100, 40, 130)
	r = startRig(t, db, st, opts)
	ts = ts.Add(5 * time.Minute)
	// 10 more minutes, then a reload without the file and, 3 minutes later, with it again.
	ts = minutes(t, r, db, st, ts, 10, 100, 40, 130)
	if err := os.Rename(custom, custom+".off"); err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	ts = minutes(t, r, db, st, ts, 3, 100, 40, 130)
	if err := os.Rename(custom+".off", custom); err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if !firedAt(r, "SlowBurn").IsZero() {
			break
		}
		ts = minutes(t, r, db, st, ts, 1, 100, 40, 130)
	}
	// Active from t0 with a 40-minute hold. What counts is the time evaluated: the gaps between
	// the last evaluation before and the first after (t0+15m → t0+21m across the restart,
	// t0+30m → t0+34m while the file was not loaded) do not. So it fires at t0 + 40m + 6m + 4m;
	// a clock that started over at the re-add would fire at t0+74m.
	if got, want := firedAt(r, "SlowBurn"), t0.Add(50*time.Minute); !got.Equal(want) {
		t.Fatalf("SlowBurn fired at t0+%s, want t0+%s", got.Sub(t0), want.Sub(t0))
	}
	// The shipped forecast alert (30 minutes) went through the restart (its group stayed loaded
	// across the reloads): t0 + 30m + 6m.
	if got, want := firedAt(r, "ProjectBudgetForecastExceeded"), t0.Add(36*time.Minute); !got.Equal(want) {
		t.Fatalf("forecast fired at t0+%s, want t0+%s", got.Sub(t0), want.Sub(t0))
	}
}

// A new Manager on the same store (a restart, or another process taking the rules leadership)
// restores the `for` clocks in its first evaluation and decides pending or firing on them in
// that same evaluation: an alert that was firing is firing again at once, with its old active
// time, no ALERTS{alertstate="pending"} sample of it is written, and it is not notified again;
// one that was pending stays pending with its clock shifted by the gap.
func TestFiringAlertStaysFiringAcrossRestart(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	dir := t.TempDir()
	b, err := shippedRules.ReadFile("rules/budget.yml")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "budget.yml"), string(b))
	writeTestFile(t, filepath.Join(dir, "custom.yml"), "groups:\n  - name: custom\n    rules:\n"+
		"      - alert: FastBurn\n        expr: cygni_project_cost_forecast_month_usd > 100\n        for: 15m\n        labels: {severity: warning}\n"+
		"      - alert: SlowBurn\n        expr: cygni_project_cost_forecast_month_usd > 100\n        for: 40m\n        labels: {severity: warning}\n")
	opts := rigOptions{ruleFiles: []string{filepath.Join(dir, "*.yml")}}
	r := startRig(t, db, st, opts)
	t0 := clocktest.Now(t).Truncate(time.Minute)
	state := func(r *rig, name string) (rules.AlertState, time.Time) {
		for _, ar := range r.mgr.AlertingRules() {
			if ar.Name() == name {
				for _, a := range ar.ActiveAlerts() {
					return a.State, a.ActiveAt
				}
			}
		}
		return rules.StateInactive, time.Time{}
	}

	// Active from t0+1m; FastBurn fires at t0+16m. Down from t0+20m to t0+23m.
	ts := minutes(t, r, db, st, t0, 20, 100, 40, 130)
	if s, _ := state(r, "FastBurn"); s != rules.StateFiring {
		t.Fatalf("FastBurn is %s before the restart", s)
	}
	notified := len(st.created())
	r = startRig(t, db, st, opts)
	ts = minutes(t, r, db, st, ts.Add(2*time.Minute), 1, 100, 40, 130)
	if s, at := state(r, "FastBurn"); s != rules.StateFiring || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("FastBurn after the restart's first evaluation: %s, active since t0+%s; want firing since t0+1m", s, at.Sub(t0))
	}
	// SlowBurn: 19 minutes evaluated, the 3-minute gap does not count.
	if s, at := state(r, "SlowBurn"); s != rules.StatePending || !at.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("SlowBurn after the restart's first evaluation: %s, active since t0+%s; want pending since t0+4m", s, at.Sub(t0))
	}
	q, err := db.Querier(ts.Add(-time.Minute).UnixMilli(), ts.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "ALERTS"),
		labels.MustNewMatcher(labels.MatchEqual, "alertname", "FastBurn"))
	var written []string
	for ss.Next() {
		written = append(written, ss.At().Labels().Get("alertstate"))
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(written, ",") != "firing" {
		t.Fatalf("ALERTS{alertname=\"FastBurn\"} around the restart: %v, want only firing", written)
	}
	if got := len(st.created()); got != notified {
		t.Fatalf("%d notifications after the restart, %d before", got, notified)
	}
}

// A process that stops evaluating (its rules leadership lost, its Run ended) while another
// evaluates drops the alerts it held: when it evaluates again, their `for` clocks come from the
// store, as the other process left them, not from its own stale state.
func TestRunEndForgetsAlerts(t *testing.T) {
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	dir := t.TempDir()
	b, err := shippedRules.ReadFile("rules/budget.yml")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "budget.yml"), string(b))
	writeTestFile(t, filepath.Join(dir, "custom.yml"), "groups:\n  - name: custom\n    rules:\n"+
		"      - alert: SlowBurn\n        expr: cygni_project_cost_forecast_month_usd > 100\n        for: 40m\n        labels: {severity: warning}\n")
	opts := rigOptions{ruleFiles: []string{filepath.Join(dir, "*.yml")}}
	a, other := startRig(t, db, st, opts), startRig(t, db, st, opts)
	t0 := clocktest.Now(t).Truncate(time.Minute)
	activeAt := func(r *rig) time.Time {
		for _, ar := range r.mgr.AlertingRules() {
			if ar.Name() == "SlowBurn" {
				for _, al := range ar.ActiveAlerts() {
					return al.ActiveAt
				}
			}
		}
		return time.Time{}
	}

	// a leads for 10 minutes (SlowBurn active from t0+1m), then loses the lead.
	ts := minutes(t, a, db, st, t0, 10, 100, 40, 130)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.mgr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if at := activeAt(a); !at.IsZero() {
		t.Fatalf("SlowBurn still held (active since t0+%s) after Run ended", at.Sub(t0))
	}
	// The other process: 5 minutes with the forecast under the limit, then 5 over it again
	// (SlowBurn active from t0+16m).
	ts = minutes(t, other, db, st, ts, 5, 100, 40, 90)
	ts = minutes(t, other, db, st, ts, 5, 100, 40, 130)
	// a leads again, first evaluating at t0+22m: the other's clock, shifted by the 2-minute gap.
	minutes(t, a, db, st, ts.Add(time.Minute), 1, 100, 40, 130)
	if got, want := activeAt(a), t0.Add(18*time.Minute); !got.Equal(want) {
		t.Fatalf("SlowBurn active since t0+%s when a evaluates again, want t0+%s (its own stale clock: t0+1m)", got.Sub(t0), want.Sub(t0))
	}
}

func writeTestFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A rule set that would silently switch alerting off is refused at start and reload, naming
// the problem, and the running rules go on; the metric and Status show what is loaded.
func TestReloadRefusesSetsThatDisableAlerting(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	dir := t.TempDir()
	budget, err := shippedRules.ReadFile("rules/budget.yml")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "budget.yml"), string(budget))

	// At start: a pattern that matches nothing stops it.
	if _, err := newRigErr(t, db, st, []string{filepath.Join(dir, "nope", "*.yml")}); !errors.Is(err, ErrRuleSet) || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("start with a pattern matching nothing: %v", err)
	}

	r := startRig(t, db, st, rigOptions{ruleFiles: []string{filepath.Join(dir, "*.yml")}})
	t0, evals := clocktest.Now(t).Truncate(time.Minute), 0
	groups := func() float64 { return float64(testutil.CollectAndCount(r.mgr.loadedGroups)) }
	if got := groups(); got != 1 {
		t.Fatalf("cygni_alerting_rule_group_loaded has %v series, want 1", got)
	}
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"no file", func() { _ = os.Rename(filepath.Join(dir, "budget.yml"), filepath.Join(dir, "budget.off")) }, "matches no file"},
		{"empty file", func() { writeTestFile(t, filepath.Join(dir, "budget.yml"), "groups: []\n") }, "define no rule group"},
		{"no budget alerts", func() {
			writeTestFile(t, filepath.Join(dir, "budget.yml"), "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: vector(1)\n")
		}, "no rule file defines the alert ProjectBudgetWarning, ProjectBudgetExceeded"},
		{"only the warning", func() {
			writeTestFile(t, filepath.Join(dir, "budget.yml"), strings.Replace(string(budget), "alert: ProjectBudgetExceeded", "alert: Renamed", 1))
		}, "no rule file defines the alert ProjectBudgetExceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			err := r.mgr.Reload(ctx)
			if !errors.Is(err, ErrRuleSet) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload = %v; want %q", err, tc.want)
			}
			s := r.mgr.Status()
			if len(s.Files) != 1 || len(s.Groups) != 1 || !strings.HasSuffix(s.Groups[0], ";cygni-budget") || !strings.Contains(s.LastReloadError, tc.want) {
				t.Fatalf("status after the refusal = %+v", s)
			}
			if got := testutil.ToFloat64(r.mgr.lastReloadOK); got != 0 {
				t.Fatalf("cygni_alerting_last_reload_successful = %v", got)
			}
			// The old rules still evaluate.
			evals++
			ts := t0.Add(time.Duration(evals) * time.Minute)
			writeDerived(t, db, st.Store, ts, 100, 90, 95)
			r.mgr.EvalAt(ctx, ts)
			if got := recorded(t, db, "cygni:project_budget_used:ratio", ts); got != 0.9 {
				t.Fatalf("cygni:project_budget_used:ratio = %v after the refused reload", got)
			}
			_ = os.Remove(filepath.Join(dir, "budget.yml"))
			_ = os.Rename(filepath.Join(dir, "budget.off"), filepath.Join(dir, "budget.yml"))
			writeTestFile(t, filepath.Join(dir, "budget.yml"), string(budget))
		})
	}
	if err := r.mgr.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.mgr.Status(); s.LastReloadError != "" || testutil.ToFloat64(r.mgr.lastReloadOK) != 1 {
		t.Fatalf("status after a good reload = %+v", s)
	}
}

func newRigErr(t testing.TB, db tsdb.Storage, st *recordingState, files []string) (*Manager, error) {
	t.Helper()
	ntf, err := NewNotifier(nil, NotifierOptions{Directory: st, State: st, Costs: gaugeCosts(db)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(nil, nil, Options{Storage: db, RuleFiles: files, Evaluated: ntf.Reconcile})
	if err != nil {
		t.Fatal(err)
	}
	return m, m.Reload(context.Background())
}

// A broken e-mail template names its file and line.
func TestTemplateErrorsNameFileAndLine(t *testing.T) {
	good, err := templateFS.ReadFile("templates/email.html.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseTemplates(fstest.MapFS{
		"templates/email.txt.tmpl":  {Data: []byte("{{ define \"subject\" }}x{{ end }}\n{{ define \"text\" }}\n{{ .Title \n{{ end }}")},
		"templates/email.html.tmpl": {Data: good},
	})
	if err == nil || !strings.Contains(err.Error(), "alerting/templates/email.txt.tmpl:4:") {
		t.Fatalf("parse error = %v; want alerting/templates/email.txt.tmpl:4:", err)
	}
	tm, err := parseTemplates(fstest.MapFS{
		"templates/email.txt.tmpl":  {Data: []byte("{{ define \"subject\" }}x{{ end }}\n{{ define \"text\" }}\n\n{{ .NoSuchField }}{{ end }}")},
		"templates/email.html.tmpl": {Data: good},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.render(store.Notification{ID: "ntf_1"}, content{}, store.Team{}, []string{"a@b.test"})
	if err == nil || !strings.Contains(err.Error(), "alerting/templates/email.txt.tmpl:4:") {
		t.Fatalf("render error = %v; want alerting/templates/email.txt.tmpl:4:", err)
	}
}

// The anomaly alert fires, resolves and fires again later in the period: two notifications.
func TestAnomalyFiresAgainAfterResolve(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	ntf, err := NewNotifier(nil, NotifierOptions{Directory: st, State: st, Costs: gaugeCosts(db)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := clocktest.Now(t).Truncate(time.Minute)
	q := rules.EngineQueryFunc(promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute}), db)
	spike := &rules.Alert{State: rules.StateFiring, ActiveAt: t0,
		Labels:      labels.FromStrings("alertname", "ProjectUsageAnomaly", "project", "proj_001", "severity", "warning"),
		Annotations: labels.FromStrings("type", "usage_anomaly", "hour_usd", "10.5", "baseline_usd", "2.5", "factor", "3")}
	eval := func(at time.Time, firing bool) {
		writeGauges(t, db, at, 100, 40, 60)
		ra := RuleAlerts{Name: "ProjectUsageAnomaly", Healthy: true}
		if firing {
			ra.Firing = []*rules.Alert{spike}
		}
		ntf.Reconcile(ctx, Evaluation{At: at, Rules: []RuleAlerts{ra}, Query: q})
	}
	for m := range 60 {
		eval(t0.Add(time.Duration(m)*time.Minute), true)
	}
	for m := 60; m < 120; m++ {
		eval(t0.Add(time.Duration(m)*time.Minute), false)
	}
	for m := 180; m < 185; m++ {
		eval(t0.Add(time.Duration(m)*time.Minute), true)
	}
	var got []string
	for _, n := range st.created() {
		got = append(got, fmt.Sprintf("%s %s: %s", n.CreatedAt.Sub(t0), n.Type, n.Message))
	}
	equalLines(t, "notifications", got, []string{
		"0s usage_anomaly: proj_001 cost $10.50 in the last hour, more than 3 times its usual $2.50 an hour",
		"1h5m0s alert_resolved: Resolved: Unusual usage for proj_001 is no longer active (the hourly cost is back near its usual level); $40.00 of its $100.00 budget (40.0 %) used this billing period",
		"3h0m0s usage_anomaly: proj_001 cost $10.50 in the last hour, more than 3 times its usual $2.50 an hour",
	})
	var p map[string]any
	b, _ := json.Marshal(st.created()[0].Payload)
	_ = json.Unmarshal(b, &p)
	if p["hourCost"] != "10.50" || p["baseline"] != "2.50" || p["limit"] != "100.00" {
		t.Fatalf("anomaly payload = %v", p)
	}
}
