package api

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// The operators' gauges show the estimated cost of the usage nobody is billed for over the last
// 24 hours (what the CygniUnattributedCost rule watches), and follow the store: once the
// unknown project is created, only the untagged service's cost is left. The usage: two hours of
// one-minute samples per service, $0.13 each at the default prices (TestFindUnmappedAmounts).
func TestUnmappedMetrics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, nil, store.Options{Driver: store.DriverSQLite, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "team_a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_001", TeamID: "team_a"}); err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: dir + "/tsdb"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := time.Date(2026, 11, 18, 6, 0, 0, 0, time.UTC)
	now := from.Add(3 * time.Hour)
	app := db.Appender(ctx)
	for _, svc := range []struct{ project, deployment string }{{"", "legacy"}, {"proj_404", "api"}, {"proj_001", "web"}} {
		for m := 1; m <= 120; m++ {
			ts := from.Add(time.Duration(m) * time.Minute).UnixMilli()
			for name, v := range map[string]float64{
				series.CPUSeconds: 1024 * 60.0 / 1024, series.MemoryGBHours: 2048.0 / 1024 / 60,
				series.Requests: 100, series.EgressBytes: 1e6,
			} {
				b := labels.NewBuilder(labels.FromStrings(labels.MetricName, name, series.LabelCluster, "prod",
					series.LabelDeployment, svc.deployment, series.LabelRegion, "us-east-1"))
				if svc.project != "" {
					b.Set(series.LabelProject, svc.project)
				}
				if _, err := app.Append(0, b.Labels(), ts, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	u := NewUnmappedMetrics(nil, set, UnmappedDeps{Series: db, Projects: st, Prices: query.NewPrices(config.PricingConfig{}),
		Now: func() time.Time { return now }}, 0)
	expose := func() string {
		var buf bytes.Buffer
		set.WritePrometheus(&buf)
		return buf.String()
	}
	want := func(lines ...string) {
		t.Helper()
		got := expose()
		for _, l := range lines {
			if !strings.Contains(got, l+"\n") {
				t.Errorf("want %q in\n%s", l, got)
			}
		}
	}
	want("cygni_unmapped_estimated_cost_usd 0", "cygni_unmapped_services 0", "cygni_unmapped_last_refresh_success 0",
		"cygni_unmapped_window_seconds 86400")
	if err := u.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want("cygni_unmapped_estimated_cost_usd 0.26", "cygni_unmapped_services 2", "cygni_unmapped_last_refresh_success 1")
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_404", TeamID: "team_a"}); err != nil {
		t.Fatal(err)
	}
	if err := u.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want("cygni_unmapped_estimated_cost_usd 0.13", "cygni_unmapped_services 1")
	// A day later the usage has left the window.
	now = now.Add(24 * time.Hour)
	if err := u.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want("cygni_unmapped_estimated_cost_usd 0", "cygni_unmapped_services 0")
}
