package tsdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/internal/storetest"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
)

// BenchmarkRemoteAnalytics compares the usage analytics over the embedded TSDB with the same
// analytics through remote mode (VictoriaMetrics' /api/v1/export, Prometheus' remote read),
// on one fixture written identically to all three through the storage.Appender the collector
// writes with (in remote mode: the durable queue, then remote-write):
//
//	CYGNI_BENCH_PROJECTS=100 CYGNI_BENCH_DAYS=1 go test -run '^$' -bench BenchmarkRemoteAnalytics -benchtime 3x ./tsdb/
//
// Fixture: 1-minute samples of the 7 usage series for CYGNI_BENCH_PROJECTS projects (default
// 100) × 2 deployments over CYGNI_BENCH_DAYS days (default 1); the query is the analytics
// endpoint's: query.Engine.Rollup of every project by project and day, from 1-minute samples
// (no hourly tier). Every store's answer must equal the embedded one exactly. The write phase
// reports samples/s delivered and the queue's peak heap growth per pending sample.
func BenchmarkRemoteAnalytics(b *testing.B) {
	projects, days := 100, 1
	if n, err := strconv.Atoi(os.Getenv("CYGNI_BENCH_PROJECTS")); err == nil && n > 0 {
		projects = n
	}
	if n, err := strconv.Atoi(os.Getenv("CYGNI_BENCH_DAYS")); err == nil && n > 0 {
		days = n
	}
	to := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	var sets []labels.Labels
	var ids []string
	for p := range projects {
		id := fmt.Sprintf("proj_%04d", p)
		ids = append(ids, id)
		for _, dep := range []string{"web", "worker"} {
			for _, name := range series.Usage {
				sets = append(sets, labels.FromStrings(labels.MetricName, name, series.LabelProject, id,
					series.LabelDeployment, dep, series.LabelCluster, "c1", series.LabelRegion, "us-east-1"))
			}
		}
	}
	// write appends the fixture, one commit per minute, with whole values (CloudWatch-shaped
	// integers) so that sums are exact in every store.
	write := func(b *testing.B, db storage.Appendable) int {
		n := 0
		ctx := context.Background()
		for m := from; m.Before(to); m = m.Add(time.Minute) {
			app := db.Appender(ctx)
			ts := m.Add(time.Minute).UnixMilli()
			for i, l := range sets {
				if _, err := app.Append(0, l, ts, float64((int(ts/60_000)+i)%1000)); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		return n
	}
	bounds := []time.Time{}
	for t := from; !t.After(to); t = t.Add(24 * time.Hour) {
		bounds = append(bounds, t)
	}
	now := func() time.Time { return to.Add(time.Hour) }
	rollup := func(b *testing.B, q storage.Queryable) *query.Rollup {
		e, err := query.New(nil, nil, query.Options{Storage: q, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.Rollup(context.Background(), ids, bounds, query.ByProject)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}

	embedded, err := Open(nil, nil, Options{Dir: filepath.Join(b.TempDir(), "tsdb"), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer embedded.Close()
	samples := write(b, embedded)
	want := rollup(b, embedded)
	wantTotal := fmt.Sprint(want.Rows)

	b.Run("embedded", func(b *testing.B) {
		for b.Loop() {
			rollup(b, embedded)
		}
		b.ReportMetric(float64(samples), "samples-read")
	})
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s := storetest.Start(b, kind)
			dir := b.TempDir()
			r := openRemoteTest(b, s, dir)
			defer r.Close()
			// Write with the store stopped: everything waits in the queue, whose heap and disk
			// are then measured; then start the store and time the delivery.
			s.Stop()
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			write(b, r)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			queued := dirSize(b, dir)
			s.Start()
			start := time.Now()
			if err := r.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			sent := time.Since(start)
			if got := fmt.Sprint(rollup(b, r).Rows); got != wantTotal {
				b.Fatalf("%s: the rollup differs from the embedded one:\n%.2000s\nembedded:\n%.2000s", kind, got, wantTotal)
			}
			b.ResetTimer()
			for b.Loop() {
				rollup(b, r)
			}
			b.ReportMetric(float64(samples), "samples-read")
			b.ReportMetric(float64(samples)/sent.Seconds(), "delivered-samples/s")
			b.ReportMetric(float64(queued)/float64(samples), "queue-disk-bytes/sample")
			b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(samples), "queue-heap-bytes/sample")
		})
	}
}
