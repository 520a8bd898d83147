package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCollectorConfigFiles loads testdata/collector*.yml: *.good.yml must load, *.bad.yml must
// fail with an error naming the key.
func TestCollectorConfigFiles(t *testing.T) {
	for _, tc := range []struct {
		file, wantErr string
	}{
		{"collector.good.yml", ""},
		{"collector-unknown-key.bad.yml", `unknown key collector.intervall (did you mean collector.interval?)`},
		{"collector-interval.bad.yml", `'collector.interval' is 0s; it must be positive`},
		{"collector-duration.bad.yml", `collector.lookback: "soon" is not a duration (e.g. "90s", "5m", "400d")`},
		{"collector-queries.bad.yml", `'collector.max_queries_per_call' is 501; want 1..500`},
		{"collector-concurrency.bad.yml", `'collector.concurrency' is 0; want 1..64`},
		{"collector-chunk.bad.yml", `'collector.chunk' is 1m30s; it must be a whole number of minutes`},
		{"collector-discovery.bad.yml", `'collector.discovery_interval' is 30m0s, longer than 'collector.lookback' (15m0s)`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := parseTestdata(t, tc.file, tc.wantErr)
			if c == nil {
				return
			}
			got := c.Collector
			if got.Interval.D() != time.Minute || got.Lookback.D() != 30*time.Minute || got.Backfill.D() != 14*24*time.Hour ||
				got.Chunk.D() != 2*time.Hour || got.Concurrency != 8 || got.MaxQueriesPerCall != 250 || got.RetryMaxElapsed.D() != 30*time.Second {
				t.Errorf("collector = %+v", got)
			}
		})
	}
}

// The documented example file loads, and its collector section holds the defaults.
func TestExampleFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "cygni-usage.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatalf("cygni-usage.example.yml: %v", err)
	}
	if got, want := c.Collector, Default().Collector; got != want {
		t.Errorf("example collector section = %+v, defaults %+v", got, want)
	}
}
