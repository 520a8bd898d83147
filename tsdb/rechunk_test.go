package tsdb

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
)

// Compaction into larger blocks joins the small chunks the heads cut (an hourly point and a
// backfill's 2-hour out-of-order chunks): an hourly series written as the Deriver writes it, one
// point per hour flushed a day at a time, ends with chunks of ~120 samples instead of 1–2, a
// daily series with one chunk per block, 1-minute samples written behind the head (a backfill)
// with full chunks; every sample the same.
func TestCompactionJoinsSmallChunks(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(nil, nil, Options{Dir: dir, OutOfOrderWindow: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hourly := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds:sum1h", "deployment", "web", "project", "proj_001")
	daily := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds:sum1d", "deployment", "web", "project", "proj_001")
	raw := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "deployment", "web", "project", "proj_001")
	const days = 20
	rng := rand.New(rand.NewPCG(3, 4))
	appendAt := func(l labels.Labels, ts time.Time) {
		t.Helper()
		app := db.Appender(ctx)
		if _, err := app.Append(0, l, ts.UnixMilli(), float64(rng.IntN(1000))*0.25); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// The newest minute first, so that the backfill below lands behind the head.
	appendAt(raw, start.Add(days*24*time.Hour))
	for day := range days {
		d := start.Add(time.Duration(day) * 24 * time.Hour)
		for h := range 24 {
			appendAt(hourly, d.Add(time.Duration(h+1)*time.Hour))
		}
		appendAt(daily, d.Add(24*time.Hour))
		if day >= days-3 { // a backfill of 1-minute samples, out of order
			app := db.Appender(ctx)
			for m := range 24 * 60 {
				if _, err := app.Append(0, raw, d.Add(time.Duration(m)*time.Minute).UnixMilli(), float64(m%17)); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := blockSamples(t, dir)
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	after := blockSamples(t, dir)
	for k, s := range before {
		if len(after[k]) != len(s) {
			t.Fatalf("%s: %d samples after compaction, %d before", k, len(after[k]), len(s))
		}
		for ts, v := range s {
			if after[k][ts] != v {
				t.Fatalf("%s at %d: %v after compaction, %v before", k, ts, after[k][ts], v)
			}
		}
	}
	// Chunk fill in the blocks of the largest level (the first 162 h window is full).
	fill := map[string][2]int{} // series → samples, chunks
	for _, m := range blockMetas(t, dir) {
		if m.MaxTime-m.MinTime < int64(100*time.Hour/time.Millisecond) {
			continue
		}
		b, err := promtsdb.OpenBlock(nil, dir+"/"+m.ULID.String(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := promtsdb.NewBlockChunkQuerier(b, m.MinTime, m.MaxTime)
		if err != nil {
			t.Fatal(err)
		}
		ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
		for ss.Next() {
			it := ss.At().Iterator(nil)
			k := ss.At().Labels().Get(labels.MetricName)
			for it.Next() {
				f := fill[k]
				f[0] += it.At().Chunk.NumSamples()
				f[1]++
				fill[k] = f
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(q.Close(), b.Close()); err != nil {
			t.Fatal(err)
		}
	}
	if f := fill[hourly.Get(labels.MetricName)]; f[1] == 0 || f[0]/f[1] < 80 {
		t.Errorf("hourly series: %d samples in %d chunks in the large blocks, want ≥ 80 a chunk", f[0], f[1])
	}
	if f := fill[daily.Get(labels.MetricName)]; f[1] == 0 || f[0]/f[1] < 5 {
		t.Errorf("daily series: %d samples in %d chunks in the large blocks, want ≥ 5 a chunk", f[0], f[1])
	}
	t.Logf("chunk fill in the large blocks: %v", fill)
}
