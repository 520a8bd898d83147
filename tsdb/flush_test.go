package tsdb

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// blockSamples reads every block directory under dir directly (no head, no WAL, no WBL), as a
// backup of the blocks or a read-only tool sees them: the samples by series and timestamp.
func blockSamples(t *testing.T, dir string) map[string]map[int64]float64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int64]float64{}
	for _, e := range entries {
		if _, err := ulid.Parse(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		b, err := promtsdb.OpenBlock(nil, filepath.Join(dir, e.Name()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := promtsdb.NewBlockQuerier(b, b.MinTime(), b.MaxTime())
		if err != nil {
			t.Fatal(err)
		}
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
		var it chunkenc.Iterator
		for ss.Next() {
			key := ss.At().Labels().String()
			if out[key] == nil {
				out[key] = map[int64]float64{}
			}
			it = ss.At().Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				if old, dup := out[key][ts]; dup && old != v {
					t.Errorf("%s at %d: %v in one block, %v in another", key, ts, old, v)
				}
				out[key][ts] = v
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatal(err)
		}
		_ = q.Close()
		_ = b.Close()
	}
	return out
}

// After a backfill behind the head (out-of-order samples, as the collector's late-data
// corrections and `collect --from` write them) and a clean shutdown, the blocks alone hold
// every sample, in-order and out-of-order, with its value.
func TestCloseLeavesEverythingInBlocks(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	want := map[string]map[int64]float64{}
	appendAt := func(series string, from, to time.Time, value func(i int) float64) {
		t.Helper()
		app := db.Appender(ctx)
		l := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "deployment", series, "project", "proj_001")
		if want[l.String()] == nil {
			want[l.String()] = map[int64]float64{}
		}
		i := 0
		for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
			v := value(i)
			if _, err := app.Append(0, l, ts.UnixMilli(), v); err != nil {
				t.Fatalf("append %s at %s: %v", series, ts, err)
			}
			want[l.String()][ts.UnixMilli()] = v
			i++
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// Live collection: the last 5 hours, in order.
	appendAt("web", now.Add(-5*time.Hour), now, func(i int) float64 { return float64(i%7) * 0.25 })
	// A backfill of the day before and corrections inside the live hours, behind the head.
	appendAt("web", now.Add(-29*time.Hour), now.Add(-5*time.Hour), func(i int) float64 { return float64(i) })
	appendAt("worker", now.Add(-26*time.Hour), now.Add(-time.Hour), func(i int) float64 { return 3 })
	// Corrections at end − k ms inside periods already stored (the collector's rule).
	app := db.Appender(ctx)
	l := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "deployment", "web", "project", "proj_001")
	for m := 1; m <= 30; m++ {
		ts := now.Add(-time.Duration(m)*time.Minute).UnixMilli() - 1
		if _, err := app.Append(0, l, ts, 0.5); err != nil {
			t.Fatal(err)
		}
		want[l.String()][ts] = 0.5
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got := blockSamples(t, dir)
	total := 0
	for key, w := range want {
		total += len(w)
		if len(got[key]) != len(w) {
			t.Errorf("%s: %d samples in the blocks, want %d", key, len(got[key]), len(w))
		}
		for ts, v := range w {
			if gv, ok := got[key][ts]; !ok || gv != v {
				t.Errorf("%s at %s: blocks hold %v (present %v), want %v", key, time.UnixMilli(ts).UTC(), gv, ok, v)
				break
			}
		}
	}
	if total != 5*60+24*60+25*60+30 {
		t.Fatalf("wrote %d samples", total)
	}
	// And the TSDB opens again with the same samples, none doubled.
	db = openTest(t, dir)
	defer db.Close()
	if n, _ := count(t, db, "cygni_cpu_seconds"); n != total {
		t.Errorf("reopened: %d samples, want %d", n, total)
	}
}

// Blocks grow by the leveled compactor's ranges (2 h × 3^k) up to the largest one within the
// maximum block duration (min(retention / 10, 31 d)): here 8 days of data, written in order and
// flushed at shutdown, end in blocks of the 162 h level once compacted (a window the data only
// partly covers gives a shorter one; the newest hours stay in small blocks until a larger range
// fills), each inside one aligned 162 h window: not 96 blocks of 2 hours.
func TestBlocksGrow(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	l := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "deployment", "web", "project", "proj_001")
	for day := range 8 {
		app := db.Appender(ctx)
		for m := range 24 * 60 {
			ts := start.Add(time.Duration(day*24*60+m) * time.Minute)
			if _, err := app.Append(0, l, ts.UnixMilli(), float64(m%13)); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	longest := time.Duration(0)
	const level = int64(162 * time.Hour / time.Millisecond)
	metas := blockMetas(t, dir)
	for _, b := range metas {
		longest = max(longest, time.Duration(b.MaxTime-b.MinTime)*time.Millisecond)
		if b.MinTime/level != (b.MaxTime-1)/level {
			t.Errorf("block [%d, %d) straddles a 162 h window", b.MinTime, b.MaxTime)
		}
	}
	if longest <= 54*time.Hour || len(metas) > 8 {
		t.Errorf("%d blocks, the longest %s; want at most 8 (not 96 of 2 h), one longer than 54h", len(metas), longest)
	}
	if got := blockSamples(t, dir); len(got[l.String()]) != 8*24*60 {
		t.Errorf("%d samples in the blocks, want %d", len(got[l.String()]), 8*24*60)
	}
}

func blockMetas(t *testing.T, dir string) []promtsdb.BlockMeta {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []promtsdb.BlockMeta
	for _, e := range entries {
		if _, err := ulid.Parse(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		b, err := promtsdb.OpenBlock(nil, filepath.Join(dir, e.Name()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Meta())
		_ = b.Close()
	}
	return out
}
