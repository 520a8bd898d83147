package api

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

// An untagged service and one of an unknown project show what they used in the period and what
// it would cost; a known project's service is not listed. Written: two hours of one-minute
// samples as the collector stores them (1 vCPU reserved = 1,024 CPU units, 2,048 MiB, 100
// requests and 1,000,000 bytes a minute, one task), plus a minute before the period that must
// not count.
func TestFindUnmappedAmounts(t *testing.T) {
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := time.Date(2026, 11, 18, 6, 0, 0, 0, time.UTC)
	to := from.Add(2 * time.Hour)
	app := db.Appender(context.Background())
	for _, svc := range []struct{ project, deployment string }{{"", "legacy"}, {"proj_404", "api"}, {"proj_001", "web"}} {
		for m := 0; m <= 120; m++ { // m = 0 is the minute (from − 1m, from]: before the period
			ts := from.Add(time.Duration(m) * time.Minute).UnixMilli()
			for name, v := range map[string]float64{
				series.CPUSeconds: 1024 * 60.0 / 1024, series.MemoryGBHours: 2048.0 / 1024 / 60,
				series.Requests: 100, series.EgressBytes: 1e6, series.RunningTasks: 1,
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
	list, err := FindUnmapped(context.Background(), db, map[string]bool{"proj_001": true}, from, to, query.NewPrices(config.PricingConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Reason != ReasonUnknownProject || list[0].Project != "proj_404" || list[1].Reason != ReasonUntagged || list[1].Deployment != "legacy" {
		t.Fatalf("unmapped = %+v", list)
	}
	// 120 minutes: 7,200 vCPU-s = 2 vCPU-h ($0.10), 4 GB-h ($0.02), 12,000 requests ($0.0048 →
	// $0.00), 120,000,000 bytes = 0.111758709 GB ($0.01005828 → $0.01).
	for _, u := range list {
		if u.Usage.CPUSeconds != "7200.000000" || u.Usage.CPUHours != "2.000000" || u.Usage.MemoryGBHours != "4.000000" ||
			u.Usage.Requests != "12000" || u.Usage.EgressGB != "0.111758709" || u.Usage.ContainerInstances != "1.0000" {
			t.Errorf("%s usage %+v", u.Deployment, u.Usage)
		}
		want := costJSON{Compute: "0.10", Memory: "0.02", Bandwidth: "0.01", Requests: "0.00", Storage: "0.00", Total: "0.13"}
		if u.EstimatedCost != want {
			t.Errorf("%s estimated cost %+v, want %+v", u.Deployment, u.EstimatedCost, want)
		}
		if !u.LastSeen.Equal(to) {
			t.Errorf("%s last seen %s, want %s", u.Deployment, u.LastSeen, to)
		}
	}
	if got := UnmappedTotal(list).StringFixed(2); got != "0.26" {
		t.Errorf("unattributed total %s, want 0.26", got)
	}
}
