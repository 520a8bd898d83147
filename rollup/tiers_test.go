package rollup_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/internal/fixture"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
)

// rawFactor converts simaws.RawTruth (whole CloudWatch units) to quanta (query.PerUnit).
var rawFactor = map[string]int64{
	series.CPUSeconds: 15, series.CPUUsedSeconds: 15, series.MemoryGBHours: 1, series.MemoryUsedGBHours: 1,
	series.RunningTasks: 1_000_000, series.EgressBytes: 60, series.Requests: 1,
}

func truth(sim *simaws.Sim, project, name string, from, to time.Time) query.Int128 {
	var total query.Int128
	for _, svc := range sim.Services() {
		if svc.Project == "" || (project != "" && svc.Project != project) {
			continue
		}
		total, _ = total.Add64(sim.RawTruth(svc, name, from, to) * rawFactor[name])
	}
	return total
}

// selects records the series names every Select asked for.
type selects struct {
	storage.Queryable
	mu    sync.Mutex
	names []string
}

type recQuerier struct {
	storage.Querier
	s *selects
}

func (s *selects) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.Queryable.Querier(mint, maxt)
	return recQuerier{q, s}, err
}

func (q recQuerier) Select(ctx context.Context, sorted bool, h *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	for _, m := range ms {
		if m.Name == labels.MetricName {
			q.s.mu.Lock()
			q.s.names = append(q.s.names, m.Value)
			q.s.mu.Unlock()
		}
	}
	return q.Querier.Select(ctx, sorted, h, ms...)
}

// TestTiersExactAgainstTruth: on a fixture written by the collector and derived by the Deriver
// (17 days, so the oldest days' tiers are persisted blocks older than the out-of-order window),
// every groupBy in UTC and in time zones whose days are not UTC days gives, from the 1-minute
// samples alone, with the hourly tier, and with the hourly and daily tiers: per-project values
// equal to the simulator's truth, and team totals equal to their sum.
func TestTiersExactAgainstTruth(t *testing.T) {
	t.Setenv("CYGNI_BENCH_FIXTURE_DIR", t.TempDir())
	ctx := context.Background()
	shape := fixture.Shape{Projects: 3, Deployments: 2, Days: 17}
	f, err := fixture.Cached(ctx, shape, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	from, to := shape.From(), shape.From().AddDate(0, 0, shape.Days)
	d, err := rollup.NewDeriver(nil, nil, rollup.DeriverOptions{Storage: f.DB, Now: func() time.Time { return to }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	// The span starts where the TSDB says its data starts (its oldest block's start, aligned to
	// the block range), so it may begin an hour or two before the fixture's first sample.
	if hf, ht := d.Range(); hf.After(from) || from.Sub(hf) > 2*time.Hour || !ht.Equal(to) {
		t.Fatalf("hourly span %s..%s, want %s..%s (or from up to 2 hours earlier)", hf, ht, from, to)
	}
	if df, dt := d.DailyRange(); !df.Equal(from) || !dt.Equal(to) {
		t.Fatalf("daily span %s..%s, want %s..%s", df, dt, from, to)
	}
	rec := &selects{Queryable: f.DB}
	engines := []struct {
		name string
		e    *query.Engine
	}{}
	for _, c := range []struct {
		name          string
		hourly, daily func() (time.Time, time.Time)
	}{{"minutes", nil, nil}, {"hourly", d.Range, nil}, {"daily", d.Range, d.DailyRange}} {
		e, err := query.New(nil, nil, query.Options{Storage: rec, HourlyRange: c.hourly, DailyRange: c.daily})
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, struct {
			name string
			e    *query.Engine
		}{c.name, e})
	}
	projects := f.Projects()
	// A range that starts and ends inside days, so every bucket kind has edges.
	qFrom, qTo := from.Add(5*time.Hour+30*time.Minute), to.Add(-7*time.Hour)
	for _, tz := range []string{"UTC", "America/New_York", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []query.GroupBy{query.Hour, query.Day, query.Week, query.Month} {
			bounds, err := query.Buckets(qFrom, qTo, g, loc)
			if err != nil {
				t.Fatal(err)
			}
			var first *query.Rollup
			for _, en := range engines {
				r, err := en.e.Rollup(ctx, projects, bounds, query.ByProject)
				if err != nil {
					t.Fatal(err)
				}
				total, err := r.Total()
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Rows) != len(projects) {
					t.Fatalf("%s %s %s: %d rows", tz, g, en.name, len(r.Rows))
				}
				for i := range len(bounds) - 1 {
					for _, name := range series.Usage {
						m, _ := query.MetricOf(name)
						var sum query.Int128
						for _, p := range projects {
							got := r.Rows[query.Key{Project: p}][i].Usage.Quanta(m)
							if want := truth(f.Sim, p, name, bounds[i], bounds[i+1]); got != want {
								t.Fatalf("%s %s %s bucket %s %s %s: %s quanta, truth %s", tz, g, en.name, bounds[i], p, name, got, want)
							}
							sum, _ = sum.Add(got)
						}
						if got := total[i].Usage.Quanta(m); got != sum {
							t.Fatalf("%s %s %s bucket %s %s: total %s ≠ sum of projects %s", tz, g, en.name, bounds[i], name, got, sum)
						}
					}
				}
				if first == nil {
					first = r
				} else {
					for k, row := range r.Rows {
						for i := range row {
							if !row[i].Cost.Total().Equal(first.Rows[k][i].Cost.Total()) {
								t.Fatalf("%s %s %s: cost %s ≠ minutes' %s", tz, g, en.name, row[i].Cost.Total(), first.Rows[k][i].Cost.Total())
							}
						}
					}
				}
			}
		}
	}
	// In UTC, groupBy=day over whole days reads the daily series only (no hourly points, no
	// 1-minute samples).
	rec.names = nil
	bounds, _ := query.Buckets(from, to, query.Day, time.UTC)
	if _, err := engines[2].e.Rollup(ctx, projects, bounds, query.ByProject); err != nil {
		t.Fatal(err)
	}
	for _, n := range rec.names {
		if !strings.Contains(n, query.DailySuffix) {
			t.Errorf("groupBy=day over whole UTC days selected %q", n)
		}
	}
	if len(rec.names) == 0 {
		t.Error("no select")
	}
}
