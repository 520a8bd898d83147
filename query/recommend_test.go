package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

func openTestDB(tb testing.TB) *tsdb.DB {
	tb.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: tb.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func TestRecommendations(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2024, 5, 20, 0, 0, 0, 0, time.UTC)
	l := func(name, dep string) labels.Labels {
		return labels.FromStrings(labels.MetricName, name, series.LabelProject, "proj_a", series.LabelDeployment, dep)
	}
	app := db.Appender(ctx)
	// "web": 2 tasks of 1 vCPU / 2 GB using 0.1 vCPU and 0.3 GB; "busy": using most of it.
	for h := now.Add(-RecommendationWindow); h.Before(now); h = h.Add(time.Hour) {
		for _, s := range []struct {
			name, dep string
			v         float64
		}{
			{series.CPUSeconds, "web", 2 * 3600}, {series.CPUUsedSeconds, "web", 2 * 360},
			{series.MemoryGBHours, "web", 2 * 2}, {series.MemoryUsedGBHours, "web", 2 * 0.3},
			{series.RunningTasks, "web", 2 * 60},
			{series.CPUSeconds, "busy", 3600}, {series.CPUUsedSeconds, "busy", 3000},
			{series.MemoryGBHours, "busy", 2}, {series.MemoryUsedGBHours, "busy", 1.8},
			{series.RunningTasks, "busy", 60},
		} {
			// One sample per hour at its end stands for the hour's sixty minutes.
			if _, err := app.Append(0, l(s.name, s.dep), h.Add(time.Hour).UnixMilli(), s.v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	e, _ := New(nil, nil, Options{Storage: db})
	recs, err := e.Recommendations(ctx, []string{"proj_a"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Deployment != "web" {
		t.Fatalf("recommendations %+v, want one for web", recs)
	}
	r := recs[0]
	if r.Current.VCPU.String() != "1" || r.Current.MemoryGB.String() != "2" || r.Recommended.VCPU.String() != "0.25" || r.Recommended.MemoryGB.String() != "0.5" {
		t.Errorf("current %v → recommended %v, want 1 vCPU/2 GB → 0.25 vCPU/0.5 GB", r.Current, r.Recommended)
	}
	// (0.75 vCPU × $0.05 + 1.5 GB × $0.005) × 2 tasks × 730 h = $65.70 a month.
	if got := r.MonthlySaving.StringFixed(2); got != "65.70" {
		t.Errorf("monthly saving %s, want 65.70", got)
	}
}

// With CollectedUntil the Deriver derives only the hours the collector has read past: hours of
// a gap still being backfilled are derived once the data is there, never frozen as empty.
