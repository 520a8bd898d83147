package collector

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/cygni/usage/simaws"
)

// A backfill of 100 services is several batches of 500 queries each appending six hours at once
// while the TSDB compacts the head behind the newest samples already committed. Every service's
// every hour must still equal the simulator's truth: compaction over a range an appender is
// still writing into lost the first hours of whole services (committed, then never in a block).
// The loss depended on timing, so the test repeats the backfill and two day-long cycles.
func TestBackfillWhileCompactingExact(t *testing.T) {
	if testing.Short() {
		t.Skip("100 services, three runs")
	}
	for run := 0; run < 3; run++ {
		e := newEnv(t, simaws.Options{Seed: 7, Projects: 100, ServicesPerProject: 1, Untagged: 1})
		c := e.collector(t, nil)
		from := testNow.Add(-24 * time.Hour)
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			e.clock.Add(24*time.Hour - 7*time.Minute)
			if err := c.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		to := e.clock.Now().Add(-20 * time.Minute).Truncate(time.Hour)
		bad := 0
		for _, s := range e.sim.Services() {
			for h := from; h.Before(to); h = h.Add(time.Hour) {
				want := e.sim.RawTruth(s, simaws.SeriesCPUSeconds, h, h.Add(time.Hour))
				got := stored(t, e.db, simaws.SeriesCPUSeconds, h, h.Add(time.Hour), eq("deployment", deploymentOf(s)), eq("project", s.Project))
				if int64(math.Round(got*1024/60)) != want && bad < 10 {
					t.Errorf("run %d: %s %s: stored %v vCPU-s, truth %d CPU-unit-minutes", run, s.Name, h.Format(time.RFC3339), got, want)
					bad++
				}
			}
		}
		if bad > 0 {
			t.FailNow()
		}
	}
}
