package rollup_test

// Benchmarks on the shared production-shaped fixture (internal/fixture.Month: 1-minute samples
// of all 7 usage series for 1,000 projects × 2 deployments × 31 days, read from the simulated
// fleet by the product's collector, derived by the Deriver into the hourly and daily tiers, in
// persisted blocks; CYGNI_BENCH_PROJECTS / CYGNI_BENCH_DAYS shrink it), compared in the same run
// with Prometheus' own promql.Engine over the same TSDB:
//
//	go test -run '^$' -bench 'Fixture' -benchtime 3x -timeout 3h ./rollup/
//
// These call query.Engine in process; the HTTP figures are api's BenchmarkMonth*.

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/cygni/usage/internal/fixture"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
)

var (
	benchOnce sync.Once
	benchFix  *fixture.Fixture
	benchErr  error
)

func benchFixture(b *testing.B) *fixture.Fixture {
	b.Helper()
	benchOnce.Do(func() {
		benchFix, benchErr = fixture.Cached(context.Background(), fixture.BenchShape(), func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFix
}

func span(f *fixture.Fixture) (time.Time, time.Time) {
	return f.From(), f.From().AddDate(0, 0, f.Days)
}

// BenchmarkFixtureRollupDay is groupBy=day over the fixture's days for all projects, every
// series and cost (query.Engine.Rollup, in process), from the daily tier, the hourly tier and
// the 1-minute samples.
func BenchmarkFixtureRollupDay(b *testing.B) {
	f := benchFixture(b)
	from, to := span(f)
	tier := func() (time.Time, time.Time) { return from, to }
	bounds, err := query.Buckets(from, to, query.Day, time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	projects := f.Projects()
	for _, tc := range []struct {
		name          string
		hourly, daily func() (time.Time, time.Time)
	}{{"daily-tier", tier, tier}, {"hourly-tier", tier, nil}, {"raw-minutes", nil, nil}} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := query.New(nil, nil, query.Options{Storage: f.DB, HourlyRange: tc.hourly, DailyRange: tc.daily})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := e.Rollup(context.Background(), projects, bounds, query.ByProject)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Total(); err != nil || len(r.Rows) != len(projects) {
					b.Fatalf("%d rows, %v", len(r.Rows), err)
				}
			}
		})
	}
}

// BenchmarkFixturePromQL is the peer: Prometheus' promql.Engine over the same TSDB, one daily
// range query per usage series, `sum by (project) (sum_over_time(<series>[1d]))`, over the raw
// series and over the hourly tier. Compare its ns/op with BenchmarkFixtureRollupDay's.
func BenchmarkFixturePromQL(b *testing.B) {
	f := benchFixture(b)
	from, to := span(f)
	ng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000_000, Timeout: time.Hour, LookbackDelta: 5 * time.Minute})
	for _, suffix := range []string{"", query.HourlySuffix} {
		name := "raw-minutes"
		if suffix != "" {
			name = "hourly-tier"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, s := range series.Usage {
					q, err := ng.NewRangeQuery(context.Background(), f.DB, nil,
						fmt.Sprintf("sum by (project) (sum_over_time(%s[1d]))", s+suffix), from.Add(24*time.Hour), to, 24*time.Hour)
					if err != nil {
						b.Fatal(err)
					}
					res := q.Exec(context.Background())
					if res.Err != nil {
						b.Fatal(res.Err)
					}
					q.Close()
				}
			}
		})
	}
}
