package billing

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
)

// TestMemoryBilledToTheUnitOverAWeek writes a simulated week of 1-minute memory and CPU samples
// for several projects exactly as the collector stores them (MiB Sum / 1024 / 60 GB-hours, not
// representable in a float; CPU units × 60 / 1024) and checks every hour's billed quantity
// against the simulator's integer truth: floor(running total / unit) minus what was billed
// before, to the unit — also in the hours where the running total lands exactly on a unit
// boundary, where a float sum falls one unit short.
func TestMemoryBilledToTheUnitOverAWeek(t *testing.T) {
	e := newEnv(t)
	const days = 7
	end := t0.Add(days * 24 * time.Hour)
	sim := simaws.New(simaws.Options{Seed: 11, Projects: 3, ServicesPerProject: 2, Untagged: -1, Now: func() time.Time { return end }})
	svcs := sim.Services()
	projects := map[string]bool{}
	for _, s := range svcs {
		projects[s.Project] = true
	}
	var ids []string
	for p := range projects {
		ids = append(ids, p)
	}
	sort.Strings(ids)
	e.team(t, "team_sim", "cus_sim", ids...)

	// The collector's write: one sample per service, series and minute, stamped at its end.
	names := []string{series.MemoryGBHours, series.CPUSeconds}
	for day := t0; day.Before(end); day = day.Add(24 * time.Hour) {
		app := e.db.Appender(context.Background())
		for _, svc := range svcs {
			for _, name := range names {
				l := labels.FromStrings(labels.MetricName, name, series.LabelProject, svc.Project, series.LabelDeployment, svc.Deployment, series.LabelCluster, svc.Cluster)
				for m := day; m.Before(day.Add(24 * time.Hour)); m = m.Add(time.Minute) {
					v := sim.Truth(svc, name, m, m.Add(time.Minute))
					if v == 0 {
						continue
					}
					if _, err := app.Append(0, l, m.Add(time.Minute).UnixMilli(), v); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Set(end.Add(20 * time.Minute))
	b := e.biller(t, func(o *Options) { o.Window = (days + 1) * 24 * time.Hour; o.Backfill = days * 24 * time.Hour })
	cycle(t, b)

	// Billed units: 0.001 GB-hour = 61.44 MiB-minutes, 0.001 vCPU-hour = 61.44 CPU-unit-minutes:
	// floor(raw × 1000 / 61440) for both.
	boundaries := 0
	for _, metric := range []struct{ name, series, event string }{
		{"memory", series.MemoryGBHours, "cygni_memory_gb_hours"},
		{"cpu", series.CPUSeconds, "cygni_vcpu_hours"},
	} {
		var total int64
		for _, p := range ids {
			rows := map[int64]store.BillingReport{}
			for _, r := range reports(t, e.st, store.BillingReportFilter{Metric: metric.name}) {
				if r.ProjectID == p {
					if r.Revision != 0 {
						t.Fatalf("%s %s: correction row %s without late data", p, metric.name, r.Identifier)
					}
					rows[r.Hour.Unix()] = r
				}
			}
			var cum, billed int64
			for h := t0; h.Before(end); h = h.Add(time.Hour) {
				var raw int64
				for _, svc := range svcs {
					if svc.Project == p {
						raw += sim.RawTruth(svc, metric.series, h, h.Add(time.Hour))
					}
				}
				cum += raw
				want := cum*1000/61440 - billed
				billed += want
				if metric.name == "memory" && cum*1000%61440 == 0 {
					boundaries++
				}
				r, ok := rows[h.Unix()]
				if raw == 0 {
					if ok && r.Quantity != 0 {
						t.Errorf("%s %s %s: %d billed for an hour without usage", p, metric.name, h, r.Quantity)
					}
					continue
				}
				if !ok {
					t.Fatalf("%s %s %s: no outbox row", p, metric.name, h)
				}
				if r.Quantity != want {
					t.Errorf("%s %s %s: billed %d, truth %d (running total %d raw units)", p, metric.name, h.Format(time.RFC3339), r.Quantity, want, cum)
				}
			}
			total += billed
		}
		if got := e.stripe.Total(metric.event, "cus_sim"); got != total {
			t.Errorf("%s: Stripe received %d, truth %d", metric.name, got, total)
		}
	}
	if boundaries == 0 {
		t.Fatal("no hour ends on a memory unit boundary: the test would not catch a float sum")
	}
	t.Logf("%d project-hours end exactly on a memory unit boundary", boundaries)
}
