package alerting

// go test -run '^$' -bench . -benchmem ./alerting/

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// BenchmarkEvalShippedRules evaluates the shipped rules over 1,000 projects, 100 of them over
// 80 % of their budget (their episodes already open: the steady state of every evaluation),
// against the real TSDB and SQLite store.
func BenchmarkEvalShippedRules(b *testing.B) {
	const projects = 1000
	ctx := context.Background()
	db := openTSDB(b)
	st := openStore(b, b.TempDir())
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_b", Name: "B", BillingEmail: "b@b.test"}); err != nil {
		b.Fatal(err)
	}
	ts := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	app := db.Appender(ctx)
	for i := range projects {
		id := fmt.Sprintf("proj_%04d", i)
		if _, err := st.CreateProject(ctx, store.Project{ID: id, TeamID: "team_b"}); err != nil {
			b.Fatal(err)
		}
		mtd := 50.0
		if i%10 == 0 {
			mtd = 85
		}
		for name, v := range map[string]float64{series.ProjectBudgetUSD: 100, series.ProjectCostMonthToDateUSD: mtd, series.ProjectCostForecastUSD: 90, series.ProjectBudgetUsedPercent: mtd} {
			for m := range 5 {
				if _, err := app.Append(0, labels.FromStrings("__name__", name, "project", id), ts.Add(time.Duration(m-4)*time.Minute).UnixMilli(), v); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	ntf, err := NewNotifier(nil, NotifierOptions{Directory: st, State: st, Costs: gaugeCosts(db)})
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := New(nil, prometheus.NewRegistry(), Options{Storage: db, ShippedDir: filepath.Join(b.TempDir(), "rules"), Evaluated: ntf.Reconcile})
	if err != nil {
		b.Fatal(err)
	}
	if err := mgr.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	mgr.EvalAt(ctx, ts) // the first evaluation creates the 100 notifications
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		mgr.EvalAt(ctx, ts.Add(time.Duration(n%4)*time.Second))
		n++
	}
	b.ReportMetric(float64(projects)*float64(b.N)/b.Elapsed().Seconds(), "projects/s")
}
