package api

// Helpers of the usage benchmarks (usage_month_bench_test.go, on the shared fixture of
// internal/fixture) and of tests that serve a fixed team: an in-memory project store, a token
// verifier that admits everyone, a response sink that counts rows and watches the heap, and
// latency percentiles. The benchmarks that read 1,000 projects × 30 days of hourly points
// written straight into the TSDB (BenchmarkUsage*) are gone: the Month benchmarks answer the
// same endpoints on 1-minute samples read by the collector and derived by the Deriver.

import (
	"bytes"
	"context"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/store"
)

// bulkStore is a tiny in-memory UsageStore for the bulk tests: the store is not their subject.
type bulkStore struct{ projects []store.Project }

func (b bulkStore) GetProject(_ context.Context, teamID, id string) (store.Project, error) {
	for _, p := range b.projects {
		if p.ID == id && p.TeamID == teamID {
			return p, nil
		}
	}
	return store.Project{}, store.ErrNotFound
}
func (b bulkStore) ListProjects(_ context.Context, teamID string) ([]store.Project, error) {
	return append([]store.Project(nil), b.projects...), nil
}
func (b bulkStore) GetTeam(_ context.Context, id string) (store.Team, error) {
	return store.Team{ID: id, BillingAnchorDay: 1}, nil
}
func (b bulkStore) SetBudgetLimit(context.Context, string, string, decimal.Decimal) error { return nil }

// fixedTokens accepts any token as an admin of team_bulk.
type fixedTokens struct{}

func (fixedTokens) VerifyToken(context.Context, string) (Principal, error) {
	return Principal{TeamID: "team_bulk", Role: RoleAdmin}, nil
}

// heapWatcher is the response body's sink: it discards bytes and, when gc is set, measures the
// live heap (after a collection) every 8 MiB, keeping the peak.
type heapWatcher struct {
	n, next int
	peak    uint64
	rows    int
	gc      bool
}

var newline = []byte{'\n'}

func (h *heapWatcher) Write(p []byte) (int, error) {
	h.n += len(p)
	h.rows += bytes.Count(p, newline) // the benchmark's client: as little of the 2 cores as it can
	if h.gc && h.n >= h.next {
		h.next = h.n + 8<<20
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// latencies runs op once per benchmark iteration and returns how long each run took, by the
// benchmark's own timer (b.Elapsed): the product's clock in the benchmarks is pinned (the
// engines' Now), so no figure depends on the hour the benchmark runs at.
func latencies(b *testing.B, op func()) []time.Duration {
	var d []time.Duration
	for b.Loop() {
		t0 := b.Elapsed()
		op()
		d = append(d, b.Elapsed()-t0)
	}
	return d
}

func reportP50(b *testing.B, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50-ms")
}
