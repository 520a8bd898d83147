package alerting

import (
	"context"
	"github.com/cygni/usage/budget"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/internal/clock/clocktest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// A team budget of $150 over two projects (each under its own $100 budget): the team warning
// when the sum reaches $120, exceeded at $150, each notified once however long it keeps firing,
// e-mailed to the billing contact and to every admin.
func TestTeamBudgetCrossingNotifiesOnce(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_002", TeamID: "team_acme", Name: "Batch"}); err != nil {
		t.Fatal(err)
	}
	limit := decimal.NewFromInt(150)
	if err := st.SetTeamBudget(ctx, "team_acme", &limit, store.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})
	t0 := clocktest.Now(t).Truncate(time.Minute)
	ts := t0
	step := func(n int, a, b float64) {
		for range n {
			ts = ts.Add(time.Minute)
			app := db.Appender(ctx)
			add := func(l labels.Labels, v float64) {
				if _, err := app.Append(0, l, ts.UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
			}
			for p, v := range map[string]float64{"proj_001": a, "proj_002": b} {
				add(labels.FromStrings("__name__", series.ProjectBudgetUSD, "project", p), 100)
				add(labels.FromStrings("__name__", series.ProjectCostMonthToDateUSD, "project", p), v)
				add(labels.FromStrings("__name__", series.ProjectCostForecastUSD, "project", p), v)
			}
			add(labels.FromStrings("__name__", series.TeamBudgetUSD, "team", "team_acme"), 150)
			add(labels.FromStrings("__name__", series.TeamCostMonthToDateUSD, "team", "team_acme"), a+b)
			// As the Deriver writes it: budget.PercentUsed of the exact sum and the team budget.
			add(labels.FromStrings("__name__", series.TeamBudgetUsedPercent, "team", "team_acme"),
				budget.PercentUsed(decimal.NewFromFloat(a).Add(decimal.NewFromFloat(b)), decimal.NewFromInt(150)).InexactFloat64())
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			r.mgr.EvalAt(ctx, ts)
		}
	}
	step(3, 50, 60)    // $110: 73 %
	step(10, 60, 61.5) // $121.50: the team warning, once
	step(10, 70, 79.9) // $149.90 still a warning
	step(10, 75, 75)   // $150: exceeded, once

	var got []string
	for _, n := range st.created() {
		got = append(got, n.CreatedAt.Sub(t0).String()+" "+n.Type+" "+n.ProjectID+": "+n.Message)
	}
	equalLines(t, "notifications", got, []string{
		"4m0s team_budget_warning : Team Acme has used $121.50 of its $150.00 team budget (81.0 %) this billing period over all its projects",
		"24m0s team_budget_exceeded : Team Acme has exceeded its team budget: $150.00 of $150.00 (100.0 %) used this billing period over all its projects. Services keep running; reduce usage or raise the team budget",
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
		"billing@acme.test: [Cygni] Team budget warning: Acme (all projects) (81.0 % of its budget)",
		"ana@acme.test,bob@acme.test: [Cygni] Team budget exceeded: Acme (all projects) (100.0 % of its budget)",
	})
	start, end := BillingPeriod(t0, 1)
	want := `Hello Acme,

Team Acme has used $121.50 of its $150.00 team budget (81.0 %) this billing period over all its projects.

Team:           Acme (all projects)
Billing period: ` + start.Format(time.DateOnly) + ` to ` + end.Format(time.DateOnly) + ` (UTC, end exclusive)
Cost so far:    $121.50
Budget:         $150.00
Used:           81.0 %
Forecast:       $121.50 by the end of the period

No action is needed yet; nothing changes for your services. Review the project's usage
(GET /api/usage/analytics) if this is unexpected.

Alert: TeamBudgetWarning (warning)
Notification: ` + st.created()[0].ID + `
-- 
Cygni Usage
`
	if got := strings.ReplaceAll(msgs[0].Text, "\r\n", "\n"); got != want {
		t.Fatalf("team warning e-mail:\n%s\nwant:\n%s", got, want)
	}
}
