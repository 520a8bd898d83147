package rollup

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// TestOneCostEverywhere holds the derived series to the query layer the API renders: two hours
// of memory and CPU as the collector stores them (memory not representable in a float), a
// budget limit set so that the month-to-date cost is exactly 80 % of it. The hourly cost series
// per resource, the month-to-date gauge and the budget percent gauge carry exactly the rollup's
// exact cost (the API's figure) and the budget package's percent and status: a second pricing
// or budget path in the Deriver would differ in some digit.
func TestOneCostEverywhere(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(2*time.Hour + 30*time.Minute)
	lab := func(name string) labels.Labels {
		return labels.FromStrings(labels.MetricName, name, series.LabelProject, "proj_a", series.LabelDeployment, "web")
	}
	app := db.Appender(ctx)
	for m := range 120 {
		ts := start.Add(time.Duration(m+1) * time.Minute).UnixMilli()
		if _, err := app.Append(0, lab(series.MemoryGBHours), ts, memSample(int64(1000+(m*37)%500))); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Append(0, lab(series.CPUSeconds), ts, cpuSample(int64(256+(m*13)%1024))); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, db, nil)
	hours := []time.Time{start, start.Add(time.Hour), start.Add(2 * time.Hour)}
	ru, err := e.Rollup(ctx, []string{"proj_a"}, hours, query.ByProject)
	if err != nil {
		t.Fatal(err)
	}
	row := ru.Rows[query.Key{Project: "proj_a"}]
	if len(row) != 2 {
		t.Fatalf("%d hourly buckets, want 2", len(row))
	}
	total := row[0].Cost.Total().Add(row[1].Cost.Total())
	limit := total.Mul(decimal.RequireFromString("1.25")) // the cost is exactly 80 % of it
	if budget.Status(total, limit) != budget.StatusWarning || !budget.PercentUsed(total, limit).Equal(decimal.NewFromInt(80)) {
		t.Fatalf("budget of %s against %s: %s, %s %%; want warning at 80", total, limit, budget.Status(total, limit), budget.PercentUsed(total, limit))
	}
	src := memProjects{
		projects: []store.Project{{ID: "proj_a", TeamID: "team_a", BudgetLimit: &limit}},
		teams:    map[string]store.Team{"team_a": {ID: "team_a", BillingAnchorDay: 1}},
	}
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: src, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for i, b := range row {
		for _, r := range []query.Resource{query.Compute, query.Memory} {
			l := labels.FromStrings(labels.MetricName, series.ProjectCostUSD, series.LabelProject, "proj_a", series.LabelResource, string(r))
			got := samplesIn(t, db, l, hours[i], hours[i+1])
			if want := b.Cost.Of(r).InexactFloat64(); len(got) != 1 || got[0] != want {
				t.Errorf("%s cost series in hour %d = %v, want [%v] (the rollup's %s)", r, i, got, want, b.Cost.Of(r))
			}
		}
	}
	at := func(name string) float64 {
		v := samplesIn(t, db, labels.FromStrings(labels.MetricName, name, series.LabelProject, "proj_a"), now.Add(-time.Millisecond), now)
		if len(v) != 1 {
			t.Fatalf("%s at now: %v", name, v)
		}
		return v[0]
	}
	if got, want := at(series.ProjectCostMonthToDateUSD), total.InexactFloat64(); got != want {
		t.Errorf("month-to-date gauge %v, want %v (the rollup's %s)", got, want, total)
	}
	if got := at(series.ProjectBudgetUsedPercent); got != 80 {
		t.Errorf("budget percent gauge %v, want 80 (budget.PercentUsed, the API's status warning)", got)
	}
	if got := at(series.ProjectBudgetUSD); got != limit.InexactFloat64() {
		t.Errorf("budget gauge %v, want %v", got, limit.InexactFloat64())
	}
	t.Logf("ratio of the dollar gauges: %v (the percent gauge decides, not this)", total.InexactFloat64()/limit.InexactFloat64())
}
