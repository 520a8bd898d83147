package tsdb

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// BenchmarkAppend measures committed appends with cached series references: each iteration
// appends one sample to each of 1,000 series and commits.
//
//	go test -run '^$' -bench BenchmarkAppend -cpu 1 ./tsdb/
func BenchmarkAppend(b *testing.B) {
	db, err := Open(nil, nil, Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const series = 1000
	sets := make([]labels.Labels, series)
	for i := range sets {
		sets[i] = labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "project", "proj_"+strconv.Itoa(i%100),
			"deployment", "svc"+strconv.Itoa(i), "cluster", "cygni-prod", "region", "us-east-1")
	}
	refs := make([]storage.SeriesRef, series)
	ts := int64(1_700_000_000_000)
	b.ReportAllocs()
	for b.Loop() {
		app := db.Appender(context.Background())
		for i := range sets {
			ref, err := app.Append(refs[i], sets[i], ts, float64(i))
			if err != nil {
				b.Fatal(err)
			}
			refs[i] = ref
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		ts += 60_000
	}
	b.ReportMetric(float64(series*b.N)/b.Elapsed().Seconds(), "samples/s")
}
