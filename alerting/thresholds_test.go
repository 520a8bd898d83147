package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/internal/clock/clocktest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// writeThresholdSeries writes what the Deriver exports for proj_001's custom thresholds at ts.
func writeThresholdSeries(t testing.TB, db tsdb.Storage, ts time.Time, list []budget.Threshold) {
	t.Helper()
	app := db.Appender(context.Background())
	for _, th := range list {
		if th.Fixed() {
			continue
		}
		l := labels.FromStrings("__name__", series.ProjectAlertThresholdRatio, series.LabelProject, "proj_001", "threshold", th.Percent.String(), "basis", th.Basis)
		if _, err := app.Append(0, l, ts.UnixMilli(), th.Ratio().InexactFloat64()); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A customer's own thresholds: 50 % on the forecast to an extra address, the seed's 80 % to the
// admins instead of the billing contact. The forecast threshold fires once per billing period
// and episode (a forecast that dips under it and comes back is no second notification); a
// member who muted the project's warnings does not get them, but an admin still gets the
// exceeded alert.
func TestCustomThresholdsRecipientsAndMutes(t *testing.T) {
	ctx := context.Background()
	db := openTSDB(t)
	st := &recordingState{Store: openStore(t, t.TempDir())}
	seedTeam(t, st.Store, 1)
	list, err := budget.NormalizeThresholds([]budget.Threshold{
		{Percent: decimal.NewFromInt(50), Basis: budget.BasisForecast, Recipients: budget.Recipients{Emails: []string{"cfo@acme.test"}}},
		{Percent: decimal.NewFromInt(80), Basis: budget.BasisActual, Recipients: budget.Recipients{Admins: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetThresholds(ctx, "team_acme", "proj_001", list, store.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMute(ctx, "team_acme", "proj_001", "ana@acme.test", true, store.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	smtpSrv := startSMTP(t, "127.0.0.1:0")
	r := startRig(t, db, st, rigOptions{smtpPort: smtpSrv.port(t)})
	t0 := clocktest.Now(t).Truncate(time.Minute)
	ts := t0
	step := func(n int, mtd, forecast float64) {
		for range n {
			ts = ts.Add(time.Minute)
			writeDerived(t, db, st.Store, ts, 100, mtd, forecast)
			writeThresholdSeries(t, db, ts, list)
			r.mgr.EvalAt(ctx, ts)
		}
	}
	step(3, 30, 49.99) // under every threshold
	step(3, 31, 60)    // the forecast crosses 50 %
	step(10, 32, 45)   // it dips under 50 % for longer than the resolve hold: the episode stays
	step(3, 33, 70)    // and comes back: no second notification
	step(3, 85, 120)   // the seed's 80 % (to the admins, ana muted it)
	step(3, 101, 120)  // exceeded: every admin, muted or not

	var got []string
	for _, n := range st.created() {
		got = append(got, n.CreatedAt.Sub(t0).String()+" "+n.Type+": "+n.Message)
	}
	equalLines(t, "notifications", got, []string{
		"4m0s budget_threshold: proj_001 is forecast to spend $60.00 this billing period, 60.0 % of its $100.00 budget, reaching its 50 % forecast threshold ($31.00 so far)",
		"20m0s budget_warning: proj_001 has used $85.00 of its $100.00 budget (85.0 %) this billing period",
		"23m0s budget_exceeded: proj_001 has exceeded its budget: $101.00 of $100.00 (101.0 %) used this billing period. Services keep running; reduce usage or raise the limit",
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
		"cfo@acme.test: [Cygni] Budget threshold: Web shop (forecast $60.00, 60.0 % of its $100.00 budget)",
		"bob@acme.test: [Cygni] Budget warning: Web shop (85.0 % of its budget)",
		"ana@acme.test,bob@acme.test: [Cygni] Budget exceeded: Web shop (101.0 % of its budget)",
	})
	start, end := BillingPeriod(t0.Add(4*time.Minute), 1)
	want := `Hello Acme,

proj_001 is forecast to spend $60.00 this billing period, 60.0 % of its $100.00 budget, reaching its 50 % forecast threshold ($31.00 so far).

Project:        Web shop (proj_001)
Billing period: ` + start.Format(time.DateOnly) + ` to ` + end.Format(time.DateOnly) + ` (UTC, end exclusive)
Cost so far:    $31.00
Budget:         $100.00
Used:           31.0 %
Forecast:       $60.00 by the end of the period

No action is needed yet; nothing changes for your services. Review the project's usage
(GET /api/usage/analytics) if this is unexpected.

Alert: ProjectBudgetThreshold (warning)
Notification: ` + st.created()[0].ID + `
-- 
Cygni Usage
`
	if got := strings.ReplaceAll(msgs[0].Text, "\r\n", "\n"); got != want {
		t.Fatalf("forecast threshold e-mail:\n%s\nwant:\n%s", got, want)
	}
}
