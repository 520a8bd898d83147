package collector

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/oklog/ulid/v2"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// BenchmarkDiskBytesPerSample collects 3 days of the simulated fleet (100 services, every
// series at 1-minute periods) with a one-shot backfill plus a day of re-reads behind it
// (corrections in the out-of-order head), closes the TSDB (everything into blocks), reopens it
// so that the blocks compact to larger ones, and reports the bytes of the block directories
// (chunks, index, metadata) per stored sample.
//
//	go test -run '^$' -bench BenchmarkDiskBytesPerSample -benchtime 1x ./collector/
func BenchmarkDiskBytesPerSample(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		clk := &clock{t: testNow}
		sim := simaws.New(simaws.Options{Projects: 50, ServicesPerProject: 2, Untagged: -1, Now: clk.Now})
		cfg := aws.Config{
			Region:      "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKIDSIMULATED", "simulated-secret", ""),
			HTTPClient:  &http.Client{Transport: &inProcess{h: sim.Handler()}},
		}
		cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String("http://sim.invalid") })
		ec := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String("http://sim.invalid") })
		db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		c, err := New(nil, nil, Options{CloudWatch: cw, ECS: ec, Storage: db, Region: "us-east-1", DataDir: b.TempDir(), Now: clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := c.Collect(ctx, testNow.Add(-24*time.Hour), testNow); err != nil {
			b.Fatal(err)
		}
		if err := c.Collect(ctx, testNow.Add(-72*time.Hour), testNow.Add(-24*time.Hour)); err != nil {
			b.Fatal(err)
		}
		samples := counter(c.opts.Metrics, "cygni_collector_samples_appended_total")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		closed, _ := blockBytes(b, dir)
		// Reopen and compact twice: the WAL's last segment replays into a small block that
		// overlaps, and the leveled compactor merges it and grows the blocks.
		for range 2 {
			db, err = tsdb.Open(nil, nil, tsdb.Options{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Compact(ctx); err != nil {
				b.Fatal(err)
			}
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
		bytes, blocks := blockBytes(b, dir)
		b.ReportMetric(float64(closed)/float64(samples), "B/sample-at-close")
		b.ReportMetric(float64(bytes)/float64(samples), "B/sample")
		b.ReportMetric(float64(samples), "samples")
		b.ReportMetric(float64(blocks), "blocks")
	}
}

// blockBytes sums the sizes of the files of the block directories under dir.
func blockBytes(b *testing.B, dir string) (bytes int64, blocks int) {
	b.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if _, err := ulid.Parse(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		blocks++
		if os.Getenv("DEBUG_BLOCKS") != "" {
			m, _ := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
			fmt.Fprintf(os.Stderr, "%s\n", m)
		}
		_ = filepath.Walk(filepath.Join(dir, e.Name()), func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				bytes += fi.Size()
			}
			return nil
		})
	}
	return bytes, blocks
}
