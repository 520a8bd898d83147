package alerting

import (
	"context"
	"fmt"
	"github.com/cygni/usage/budget"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// dayGaugeCosts reads the day's cost back from the Deriver's day-to-date gauge at `to` (the
// Deriver computes it with the query layer from the usage samples; rollup tests check that).
func dayGaugeCosts(db tsdb.Storage) DayCostFunc {
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q := rules.EngineQueryFunc(eng, db)
	return func(ctx context.Context, projects []string, _, to time.Time) (map[string]decimal.Decimal, error) {
		out := map[string]decimal.Decimal{}
		for _, p := range projects {
			v, err := q(ctx, fmt.Sprintf("%s{project=%q}", series.ProjectCostDayToDateUSD, p), to)
			if err != nil {
				return nil, err
			}
			if len(v) == 1 {
				out[p] = decimal.NewFromFloat(v[0].F)
			}
		}
		return out, nil
	}
}

// A $2 daily budget in Europe/Berlin on the day the clocks go forward (2025-03-30, 23 hours:
// local midnight is 22:00 UTC). It is notified once that day however long it stays over, the
// episode ends when the day's cost resets at local midnight, and the next day's crossing is a
// new notification.
func TestDailyBudgetResetsAtLocalMidnight(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	daily := decimal.NewFromInt(2)
	if err := st.SetDailyBudget(ctx, "team_acme", "proj_001", &daily, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTeamTimeZone(ctx, "team_acme", "Europe/Berlin", store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})
	at := func(hm string, n int, cost float64) {
		ts, err := time.Parse(time.RFC3339, "2025-03-30T"+hm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			now := ts.Add(time.Duration(i) * time.Minute)
			app := db.Appender(ctx)
			for name, v := range map[string]float64{series.ProjectBudgetDailyUSD: 2, series.ProjectCostDayToDateUSD: cost,
				// As the Deriver writes it: budget.PercentUsed of the exact cost and the budget.
				series.ProjectBudgetDailyUsedPercent: budget.PercentUsed(decimal.NewFromFloat(cost), decimal.NewFromInt(2)).InexactFloat64()} {
				if _, err := app.Append(0, labels.FromStrings("__name__", name, "project", "proj_001"), now.UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			r.mgr.EvalAt(ctx, now)
		}
	}
	at("20:00", 3, 1.5)  // 22:00 CEST: under
	at("20:03", 5, 2.5)  // over: notified once
	at("21:55", 5, 2.9)  // still the 30th (until 22:00 UTC): nothing new
	at("22:00", 7, 0.1)  // 00:00 CEST on the 31st: reset; resolved after the 5-minute hold
	at("22:10", 3, 2.25) // the 31st's crossing: a new notification

	var got []string
	for _, n := range st.created() {
		got = append(got, n.CreatedAt.Format("15:04")+" "+n.Type+": "+n.Message)
	}
	equalLines(t, "notifications", got, []string{
		"20:03 daily_budget_exceeded: proj_001 has spent $2.50 today (2025-03-30, Europe/Berlin), reaching its daily budget of $2.00 (125.0 %)",
		"22:05 alert_resolved: Resolved: Daily budget exceeded for proj_001 is no longer active (a new day began); $0.10 of its $2.00 daily budget spent today (2025-03-31, Europe/Berlin)",
		"22:10 daily_budget_exceeded: proj_001 has spent $2.25 today (2025-03-31, Europe/Berlin), reaching its daily budget of $2.00 (112.5 %)",
	})
	if _, err := r.mail.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := smtpSrv.messages()
	var mails []string
	for _, m := range msgs {
		mails = append(mails, strings.Join(m.To, ",")+": "+m.Subject)
	}
	equalLines(t, "e-mails", mails, []string{
		"billing@acme.test: [Cygni] Daily budget exceeded: Web shop (125.0 % of its budget)",
		"billing@acme.test: [Cygni] Daily budget exceeded: Web shop (112.5 % of its budget)",
	})
	want := `Hello Acme,

proj_001 has spent $2.25 today (2025-03-31, Europe/Berlin), reaching its daily budget of $2.00 (112.5 %).

Project:        Web shop (proj_001)
Day:            2025-03-31 (Europe/Berlin, from midnight)
Cost so far:    $2.25
Budget:         $2.00
Used:           112.5 %

No action is needed yet; nothing changes for your services. Review the project's usage
(GET /api/usage/analytics) if this is unexpected.

Alert: ProjectDailyBudgetExceeded (warning)
Notification: ` + st.created()[2].ID + `
-- 
Cygni Usage
`
	if got := strings.ReplaceAll(msgs[1].Text, "\r\n", "\n"); got != want {
		t.Fatalf("daily e-mail:\n%s\nwant:\n%s", got, want)
	}
}
