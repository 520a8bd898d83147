package rollup

// Benchmarks on a production-shaped fixture, compared in the same run with Prometheus' own
// promql.Engine over the same TSDB:
//
//	CYGNI_BENCH_DAYS=2 go test -run '^$' -bench 'Fixture' -benchtime 3x -timeout 60m ./rollup/
//
// Fixture: 1-minute samples of all 7 usage series for 1,000 projects × 2 deployments
// (14,000 series) over CYGNI_BENCH_DAYS days (default 2; the month is 31), values
// CloudWatch-shaped (CPU units × 60 / 1024, MiB / 1024 / 60, bytes/s × 60, whole requests and
// tasks), appended through the product's TSDB (tsdb.DB, not the collector's CloudWatch path),
// compacted into persisted blocks, then derived by the product's own Deriver (Rebuild) and
// compacted again. Build time, derive speed and disk per raw sample are reported as metrics of
// BenchmarkFixtureDerive.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

type benchFixture struct {
	dir            string
	db             *tsdb.DB
	d              *Deriver
	from, to       time.Time
	projects       []string
	samples        int
	build, derive  time.Duration
	bytesPerSample float64
}

var (
	benchOnce sync.Once
	benchFix  *benchFixture
	benchErr  error
)

func benchDays() int {
	if n, err := strconv.Atoi(os.Getenv("CYGNI_BENCH_DAYS")); err == nil && n > 0 {
		return n
	}
	return 2
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func fixture(b *testing.B) *benchFixture {
	b.Helper()
	benchOnce.Do(func() { benchFix, benchErr = buildFixture() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFix
}

func buildFixture() (*benchFixture, error) {
	dir, err := os.MkdirTemp("", "cygni-rollup-bench-")
	if err != nil {
		return nil, err
	}
	days := benchDays()
	f := &benchFixture{dir: dir, to: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	f.from = f.to.Add(-time.Duration(days) * 24 * time.Hour)
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: filepath.Join(dir, "tsdb"), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	f.db = db
	type ser struct {
		l    labels.Labels
		ref  uint64
		kind int
	}
	var all []*ser
	for p := range 1000 {
		id := fmt.Sprintf("proj_%04d", p)
		f.projects = append(f.projects, id)
		for _, dep := range []string{"web", "worker"} {
			for k, name := range series.Usage {
				all = append(all, &ser{l: labels.FromStrings(labels.MetricName, name, series.LabelProject, id,
					series.LabelDeployment, dep, series.LabelCluster, "c1", series.LabelRegion, "us-east-1"), kind: k})
			}
		}
	}
	start := time.Now()
	ctx := context.Background()
	i := int64(0)
	for m := f.from; m.Before(f.to); m = m.Add(time.Hour) {
		app := db.Appender(ctx)
		for min := range 60 {
			ts := m.Add(time.Duration(min+1) * time.Minute).UnixMilli()
			for _, s := range all {
				i++
				tasks := int64(1 + i%3)
				var v float64
				switch series.Usage[s.kind] {
				case series.CPUSeconds:
					v = float64(tasks*512) * 60 / 1024
				case series.CPUUsedSeconds:
					v = float64(tasks*(100+i%300)) * 60 / 1024
				case series.MemoryGBHours:
					v = float64(tasks*1024) / 1024 / 60
				case series.MemoryUsedGBHours:
					v = float64(tasks*(300+i%600)) / 1024 / 60
				case series.RunningTasks:
					v = float64(tasks)
				case series.EgressBytes:
					v = float64(tasks*(1000+i%5000)) * 60
				default:
					v = float64(i % 200)
				}
				ref, err := app.Append(0, s.l, ts, v)
				if err != nil {
					return nil, err
				}
				_ = ref
				f.samples++
			}
		}
		if err := app.Commit(); err != nil {
			return nil, err
		}
	}
	if err := db.Compact(ctx); err != nil {
		return nil, err
	}
	f.build = time.Since(start)
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return f.to.Add(time.Minute) }})
	if err != nil {
		return nil, err
	}
	f.d = d
	start = time.Now()
	if err := d.Rebuild(ctx, f.from, f.to, nil); err != nil {
		return nil, err
	}
	f.derive = time.Since(start)
	if err := db.Compact(ctx); err != nil {
		return nil, err
	}
	f.bytesPerSample = float64(dirSize(filepath.Join(dir, "tsdb"))) / float64(f.samples)
	return f, nil
}

// BenchmarkFixtureDerive reports how the fixture was built (one build per process).
func BenchmarkFixtureDerive(b *testing.B) {
	f := fixture(b)
	for b.Loop() {
	}
	b.ReportMetric(float64(f.samples), "raw-samples")
	b.ReportMetric(f.build.Seconds(), "build-s")
	b.ReportMetric(f.derive.Seconds(), "derive-s")
	b.ReportMetric(float64(f.samples)/f.derive.Seconds(), "derive-samples/s")
	b.ReportMetric(f.bytesPerSample, "disk-B/raw-sample")
}

// BenchmarkFixtureRollupDay is groupBy=day over the fixture's days for all 1,000 projects, every
// series and cost (query.Engine.Rollup, in process, not through HTTP), from the hourly tier and
// from the 1-minute samples.
func BenchmarkFixtureRollupDay(b *testing.B) {
	f := fixture(b)
	bounds, err := query.Buckets(f.from, f.to, query.Day, time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tier func() (time.Time, time.Time)
	}{{"hourly-tier", f.d.Range}, {"raw-minutes", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := query.New(nil, nil, query.Options{Storage: f.db, HourlyRange: tc.tier})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := e.Rollup(context.Background(), f.projects, bounds, query.ByProject)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.Total(); err != nil || len(r.Rows) != len(f.projects) {
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
	f := fixture(b)
	ng := promql.NewEngine(promql.EngineOpts{MaxSamples: 500_000_000, Timeout: 30 * time.Minute, LookbackDelta: 5 * time.Minute})
	for _, suffix := range []string{"", query.HourlySuffix} {
		name := "raw-minutes"
		if suffix != "" {
			name = "hourly-tier"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, s := range series.Usage {
					q, err := ng.NewRangeQuery(context.Background(), f.db, nil,
						fmt.Sprintf("sum by (project) (sum_over_time(%s[1d]))", s+suffix), f.from.Add(24*time.Hour), f.to, 24*time.Hour)
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
