package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/tsdb"
)

// `cygni-usage derive` rebuilds the hourly tier of a span older than the TSDB's out-of-order
// window (as blocks), prints its progress, and writes nothing when run again; bad flags name
// the flag.
func TestDeriveCommandRebuildsOldHours(t *testing.T) {
	now := Clock(t)().UTC()
	dataDir := t.TempDir()
	end := now.Truncate(time.Hour)
	start := end.Add(-20 * 24 * time.Hour) // older than the default 15-day out-of-order window
	cpu := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "project", "proj_a", "deployment", "web")
	hourly := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds:sum1h", "project", "proj_a", "deployment", "web")
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: filepath.Join(dataDir, "tsdb")})
	if err != nil {
		t.Fatal(err)
	}
	app := db.Appender(context.Background())
	var units int64 // CPU-unit-minutes written
	for m, i := start, int64(0); m.Before(end); m, i = m.Add(time.Minute), i+1 {
		u := 256 + i%9*128
		if _, err := app.Append(0, cpu, m.Add(time.Minute).UnixMilli(), float64(u)*60/1024); err != nil {
			t.Fatal(err)
		}
		units += u
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	args := []string{"--data-dir", dataDir, "derive", "--from", start.Format(time.RFC3339), "--to", end.Format(time.RFC3339)}
	out, err := Run(t, 3*time.Minute, nil, args...)
	if err != nil {
		t.Fatalf("derive: %v\n%s", err, out)
	}
	if !strings.Contains(out, "480/480 hours") || !strings.Contains(out, "derive done:") {
		t.Errorf("no progress line:\n%s", out)
	}
	count := func() (int, float64) {
		db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: filepath.Join(dataDir, "tsdb")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		q, err := db.Querier(start.UnixMilli(), end.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, hourly.Get(labels.MetricName)))
		n, sum := 0, 0.0
		var it chunkenc.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				_, v := it.At()
				n++
				sum += v
			}
		}
		return n, sum
	}
	n, sum := count()
	if want := float64(units) * 60 / 1024; n != 480 || sum != want {
		t.Fatalf("%d hourly points summing to %v vCPU-seconds, want 480 summing to %v", n, sum, want)
	}
	if out, err := Run(t, 3*time.Minute, nil, args...); err != nil {
		t.Fatalf("derive again: %v\n%s", err, out)
	}
	if n2, sum2 := count(); n2 != n || sum2 != sum {
		t.Errorf("derive again changed the tier: %d points (%v), before %d (%v)", n2, sum2, n, sum)
	}
	out, err = Run(t, 30*time.Second, nil, "--data-dir", dataDir, "derive", "--from", "soon", "--to", "2024-01-01")
	if err == nil || !strings.Contains(out, `--from "soon": want an RFC 3339 time`) {
		t.Errorf("bad --from: %v\n%s", err, out)
	}
}
